"""Feishu access tokens: tenant (app identity), user (rotating refresh tokens) and fixed bearer.

- tenant: ``POST /open-apis/auth/v3/tenant_access_token/internal`` with app_id/app_secret; the
  token is reused until less than 30 minutes remain (the endpoint itself hands back the same
  token until then, apis.md 1.E.1).
- user: ``POST /open-apis/authen/v2/oauth/token`` with ``grant_type=refresh_token`` (apis.md
  1.E.3). Refresh tokens are single-use and rotate, so the newest one is written to the secret
  store *before* the access token is used, together with a hash of the configured one: a changed
  configured token means the user re-authorised and wins. When the stored token is refused the
  configured one is tried once.

Tokens never reach logs or error messages: errors are built from codes and provider text only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from typing import TYPE_CHECKING

from calbridge.errors import AuthError, InvalidResponse

from ._client import send

if TYPE_CHECKING:
    from calbridge.provider import ProviderContext

    from . import TenantAuth, TokenAuth, UserAuth

logger = logging.getLogger(__name__)

TENANT_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
USER_PATH = "/open-apis/authen/v2/oauth/token"
TENANT_MARGIN = dt.timedelta(minutes=30)
USER_MARGIN = dt.timedelta(minutes=5)
SECRET_REFRESH = "feishu.refresh_token"
SECRET_SOURCE = "feishu.refresh_token.configured_sha256"
SECRET_ACCESS = "feishu.user_access_token"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class StaticTokens:
    """``kind: token``: the caller keeps it fresh, so a rejection is final."""

    def __init__(self, auth: TokenAuth) -> None:
        self._token = auth.token

    async def token(self) -> str:
        return self._token

    async def refresh(self, rejected: str) -> str:
        raise AuthError("feishu: the configured bearer token was rejected; supply a fresh one", provider="feishu")


class TenantTokens:
    """tenant_access_token for app_id/app_secret, cached until 30 minutes before it expires."""

    def __init__(self, ctx: ProviderContext, auth: TenantAuth, base_url: str) -> None:
        self._ctx = ctx
        self._auth = auth
        self._url = base_url.rstrip("/") + TENANT_PATH
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires = dt.datetime.min.replace(tzinfo=dt.UTC)

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self._expires - self._ctx.clock() < TENANT_MARGIN:
                await self._fetch()
            assert self._token is not None
            return self._token

    async def refresh(self, rejected: str) -> str:
        async with self._lock:
            if self._token is None or self._token == rejected:
                await self._fetch()
            assert self._token is not None
            return self._token

    async def _fetch(self) -> None:
        body = {"app_id": self._auth.app_id, "app_secret": self._auth.app_secret}

        async def once() -> dict[str, object]:
            return await send(self._ctx, "POST", self._url, what="tenant_access_token", body=body, flat=True)

        out = await self._ctx.retry.call(once, what="feishu tenant_access_token")
        token, expire = out.get("tenant_access_token"), out.get("expire")
        if not isinstance(token, str) or not token or not isinstance(expire, int | float):
            raise InvalidResponse("feishu tenant_access_token: answer without a token", provider="feishu")
        self._token = token
        self._expires = self._ctx.clock() + dt.timedelta(seconds=float(expire))


class UserTokens:
    """user_access_token from a rotating refresh token persisted in ``ctx.secrets``."""

    def __init__(self, ctx: ProviderContext, auth: UserAuth, base_url: str) -> None:
        self._ctx = ctx
        self._auth = auth
        self._url = base_url.rstrip("/") + USER_PATH
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._loaded = False
        self.refreshes = 0

    @property
    def _account(self) -> str:
        return self._ctx.account.name

    async def token(self) -> str:
        async with self._lock:
            if not self._loaded:
                await self._load_cached()
            if self._token is None or self._expires - self._ctx.clock() < USER_MARGIN:
                await self._refresh()
            assert self._token is not None
            return self._token

    async def refresh(self, rejected: str) -> str:
        async with self._lock:
            if self._token is None or self._token == rejected:
                await self._refresh()
            assert self._token is not None
            return self._token

    async def _load_cached(self) -> None:
        """A still-valid access token from an earlier run saves a refresh (and a rotation)."""
        self._loaded = True
        secrets = self._ctx.secrets
        cached = await secrets.get_secret(self._account, SECRET_ACCESS)
        if not cached:
            return
        try:
            data = json.loads(cached)
            source, token, expires = data["source"], data["token"], dt.datetime.fromisoformat(data["expires"])
        except (ValueError, KeyError, TypeError):
            return
        if source == _digest(self._auth.refresh_token) and isinstance(token, str):
            self._token, self._expires = token, expires

    async def _refresh(self) -> None:
        secrets = self._ctx.secrets
        configured = self._auth.refresh_token
        source = _digest(configured)
        stored = await secrets.get_secret(self._account, SECRET_REFRESH)
        stored_source = await secrets.get_secret(self._account, SECRET_SOURCE)
        candidates = [configured]
        if stored and stored_source == source and stored != configured:
            candidates = [stored, configured]  # the configured one only if the newest is refused
        failure: AuthError | None = None
        for refresh_token in candidates:
            try:
                out = await self._exchange(refresh_token)
            except AuthError as exc:
                failure = exc
                logger.info("feishu %s: a refresh token was refused (%s)", self._account, exc.code)
                continue
            token, expires_in = out.get("access_token"), out.get("expires_in")
            if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
                raise InvalidResponse("feishu user_access_token: answer without a token", provider="feishu")
            rotated = out.get("refresh_token")
            if isinstance(rotated, str) and rotated:
                # The old refresh token is dead from now on: persist the new one before anything else.
                await secrets.set_secret(self._account, SECRET_REFRESH, rotated)
                await secrets.set_secret(self._account, SECRET_SOURCE, source)
            self._token = token
            self._expires = self._ctx.clock() + dt.timedelta(seconds=float(expires_in))
            self.refreshes += 1
            cache = {"source": source, "token": token, "expires": self._expires.isoformat()}
            await secrets.set_secret(self._account, SECRET_ACCESS, json.dumps(cache))
            return
        assert failure is not None
        raise AuthError(
            f"feishu: cannot refresh the user_access_token ({failure}); re-authorise and configure a new refresh_token",
            provider="feishu",
            status=failure.status,
            code=failure.code,
        ) from failure

    async def _exchange(self, refresh_token: str) -> dict[str, object]:
        body = {
            "grant_type": "refresh_token",
            "client_id": self._auth.app_id,
            "client_secret": self._auth.app_secret,
            "refresh_token": refresh_token,
        }

        async def once() -> dict[str, object]:
            return await send(self._ctx, "POST", self._url, what="user_access_token refresh", body=body, flat=True)

        return await self._ctx.retry.call(once, what="feishu user_access_token refresh")


def token_source(ctx: ProviderContext, base_url: str) -> StaticTokens | TenantTokens | UserTokens:
    """The token source for the account's parsed ``auth``."""
    from . import TenantAuth, TokenAuth, UserAuth

    auth = ctx.account.auth
    if isinstance(auth, TenantAuth):
        return TenantTokens(ctx, auth, base_url)
    if isinstance(auth, UserAuth):
        return UserTokens(ctx, auth, base_url)
    if isinstance(auth, TokenAuth):
        return StaticTokens(auth)
    raise AuthError("feishu: the account's auth was not parsed by the feishu plugin", provider="feishu")
