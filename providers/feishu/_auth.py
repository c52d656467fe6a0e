"""The feishu account's token sources, on the toolkit's :class:`~calbridge.toolkit.TokenSource`:
tenant (app identity) and user (rotating refresh tokens) tokens on
:class:`~calbridge.toolkit.CachedToken` (callers share one fetch; a rejected token is fetched anew
once), a fixed bearer on :class:`~calbridge.toolkit.StaticTokenSource`.

- tenant: ``POST /open-apis/auth/v3/tenant_access_token/internal`` with app_id/app_secret; the
  token is reused until less than 30 minutes remain (the endpoint itself hands back the same
  token until then, apis.md 1.E.1), kept in the secret store so that every process of those
  two hours reuses it (a CLI run is one process).
- user: ``POST /open-apis/authen/v2/oauth/token`` with ``grant_type=refresh_token`` (apis.md
  1.E.3). Refresh tokens are single-use and rotate, so the newest one is written to the secret
  store *before* the access token is used, together with a hash of the configured one: a changed
  configured token means the user re-authorised and wins. When the stored token is refused the
  configured one is tried once. The exchange runs inside :class:`CachedToken`'s fetch, so under
  the store's account lock when it has one (many workers on PostgreSQL): a second worker reads the
  rotated token, or finds the first one's access token and does not refresh at all. The access
  token is kept there too (a :class:`TokenSlot` bound to
  the configured refresh token), so a new process reuses it.

Tokens never reach logs, reprs or error messages: errors are built from codes and provider text only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from calbridge.errors import AuthError, InvalidResponse
from calbridge.provider import ProviderContext
from calbridge.toolkit import CachedToken, StaticTokenSource, Token, TokenSlot, TokenSource, binding
from calbridge.toolkit.scrub import register_secret, register_secrets_of

from ._client import TokenEndpoints
from ._config import TenantAuth, TokenAuth, UserAuth

logger = logging.getLogger(__name__)

TENANT_MARGIN = dt.timedelta(minutes=30)
USER_MARGIN = dt.timedelta(minutes=5)
SECRET_REFRESH = "feishu.refresh_token"
SECRET_SOURCE = "feishu.refresh_token.configured_sha256"
SECRET_ACCESS = "feishu.user_access_token"
SECRET_TENANT = "feishu.tenant_access_token"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class TenantTokens(CachedToken):
    """tenant_access_token for app_id/app_secret, cached until 30 minutes before it expires."""

    def __init__(self, ctx: ProviderContext, auth: TenantAuth, endpoints: TokenEndpoints) -> None:
        # Bound to the host too: a Feishu token is no Lark token.
        slot = TokenSlot(secrets=ctx.secrets, account=ctx.account.name, name=SECRET_TENANT,
                         binding=binding(endpoints.http.base_url, auth.app_id, auth.app_secret))  # fmt: skip
        super().__init__(self._fetch_tenant, margin=TENANT_MARGIN, clock=ctx.clock, name="feishu tenant_access_token",
                         slot=slot)  # fmt: skip
        self._ctx = ctx
        self._auth = auth
        self._endpoints = endpoints

    def __repr__(self) -> str:
        return f"TenantTokens(account={self._ctx.account.name!r})"

    async def _fetch_tenant(self) -> Token:
        out = await self._endpoints.tenant(self._auth.app_id, self._auth.app_secret)
        token, expire = out.get("tenant_access_token"), out.get("expire")
        if not isinstance(token, str) or not token or not isinstance(expire, int | float):
            raise InvalidResponse("feishu tenant_access_token: answer without a token", provider="feishu")
        return Token(value=token, expires_at=self._ctx.clock() + dt.timedelta(seconds=float(expire)))


class UserTokens(CachedToken):
    """user_access_token from a rotating refresh token persisted in ``ctx.secrets``; ``refreshes``
    counts the refresh-token exchanges that succeeded."""

    def __init__(self, ctx: ProviderContext, auth: UserAuth, endpoints: TokenEndpoints) -> None:
        # An earlier run's access token saves a refresh, and a rotation; a changed configured refresh
        # token (the user re-authorised) changes the binding, so its old access token is not used.
        slot = TokenSlot(secrets=ctx.secrets, account=ctx.account.name, name=SECRET_ACCESS,
                         binding=binding(auth.refresh_token))  # fmt: skip
        super().__init__(self._refresh, margin=USER_MARGIN, clock=ctx.clock, name="feishu user_access_token",
                         slot=slot)  # fmt: skip
        self._ctx = ctx
        self._auth = auth
        self._endpoints = endpoints
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"UserTokens(account={self._ctx.account.name!r})"

    @property
    def _account(self) -> str:
        return self._ctx.account.name

    async def _refresh(self) -> Token:
        secrets = self._ctx.secrets
        configured = self._auth.refresh_token
        source = _digest(configured)
        stored = await secrets.get_secret(self._account, SECRET_REFRESH)
        register_secret(stored)
        stored_source = await secrets.get_secret(self._account, SECRET_SOURCE)
        candidates = [configured]
        if stored and stored_source == source and stored != configured:
            candidates = [stored, configured]  # the configured one only if the newest is refused
        failure: AuthError | None = None
        for refresh_token in candidates:
            try:
                out = await self._endpoints.user(self._auth.app_id, self._auth.app_secret, refresh_token)
            except AuthError as exc:
                failure = exc
                logger.info("feishu %s: a refresh token was refused (%s)", self._account, exc.code)
                continue
            token, expires_in = out.get("access_token"), out.get("expires_in")
            if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
                raise InvalidResponse("feishu user_access_token: answer without a token", provider="feishu")
            rotated = out.get("refresh_token")
            if isinstance(rotated, str) and rotated:
                register_secret(rotated)
                # The old refresh token is dead from now on: persist the new one before anything else.
                await secrets.set_secret(self._account, SECRET_REFRESH, rotated)
                await secrets.set_secret(self._account, SECRET_SOURCE, source)
            expires = self._ctx.clock() + dt.timedelta(seconds=float(expires_in))
            self.refreshes += 1
            return Token(value=token, expires_at=expires)  # CachedToken stores it in its slot
        assert failure is not None
        raise AuthError(
            f"feishu: cannot refresh the user_access_token ({failure}); re-authorise and configure a new refresh_token",
            provider="feishu",
            status=failure.status,
            code=failure.code,
        ) from failure


def token_source(ctx: ProviderContext, endpoints: TokenEndpoints) -> TokenSource:
    """The token source for the account's parsed ``auth``.

    Raises:
        AuthError: the account's auth was not parsed by the feishu plugin.
    """
    auth = ctx.account.auth
    register_secrets_of(auth)
    if isinstance(auth, TenantAuth):
        return TenantTokens(ctx, auth, endpoints)
    if isinstance(auth, UserAuth):
        return UserTokens(ctx, auth, endpoints)
    if isinstance(auth, TokenAuth):
        return StaticTokenSource(auth.token)
    raise AuthError("feishu: the account's auth was not parsed by the feishu plugin", provider="feishu")
