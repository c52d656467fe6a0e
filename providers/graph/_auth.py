"""The graph account's token sources, on the toolkit's :class:`~calbridge.toolkit.TokenSource`: msal
for ``client_credentials`` and ``refresh_token``, :class:`~calbridge.toolkit.StaticTokenSource` for
``token``.

msal is blocking and its constructor already talks to the authority (OIDC discovery), so the
application is built lazily, inside :func:`asyncio.to_thread`, on the first token request — never
while the config is checked. Its :class:`msal.SerializableTokenCache` lives in the store's secret
slot, so a token is fetched once per lifetime and a refresh token Microsoft rotates survives the
process; each acquisition starts from the stored cache, under the store's account lock (many
workers on one store never send a refresh token another already spent). A configured refresh
token wins once it differs from the one the stored cache grew from (a hash of it is stored
beside the cache). :class:`~calbridge.toolkit.CachedToken` makes callers share one acquisition
and keeps the token until 5 minutes before it expires, as msal's own cache does; its
:class:`~calbridge.toolkit.TokenSlot` keeps the access token across processes, so a process that
finds a valid one never builds msal at all (building it costs an OIDC discovery request every time).

msal's HTTP goes through the toolkit's :func:`~calbridge.toolkit.ca_requests_session`: proxy
settings from the environment, the account's ``ca_file`` in ``verify`` even when
``REQUESTS_CA_BUNDLE`` is set. Tokens never reach reprs, logs or exception messages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from calbridge.errors import AuthError, TransientError
from calbridge.provider import ProviderContext
from calbridge.toolkit import (
    CachedToken,
    StaticTokenSource,
    Token,
    TokenSlot,
    TokenSource,
    binding,
    ca_requests_session,
)
from calbridge.toolkit.scrub import register_secret, register_secrets_of, scrub

from ._config import ClientCredentialsAuth, GraphAuth, RefreshTokenAuth, TokenAuth

logger = logging.getLogger(__name__)

CACHE_SECRET = "graph.msal_cache"
RT_HASH_SECRET = "graph.refresh_token_sha256"
ACCESS_SECRET = "graph.access_token"
_MICROSOFT_HOSTS = frozenset(
    {
        "login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net",
        "login.chinacloudapi.cn", "login-us.microsoftonline.com", "login.microsoftonline.us",
    }
)  # fmt: skip
_IDP_TIMEOUT = 30.0  # seconds per request to the identity provider
# msal's own cache treats less than 5 minutes left as expired; so does ours.
REFRESH_MARGIN = dt.timedelta(minutes=5)


def _authority(base: str, tenant: str) -> str:
    parts = urlsplit(base)
    if parts.path.strip("/"):
        return base.rstrip("/")
    return f"{base.rstrip('/')}/{tenant}"


def _graph_scope(base_url: str | None) -> str:
    if not base_url:
        return "https://graph.microsoft.com/.default"
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MsalTokenSource:
    """Access tokens through msal for ``client_credentials`` and ``refresh_token`` auth."""

    refreshable = True

    def __init__(self, auth: ClientCredentialsAuth | RefreshTokenAuth, ctx: ProviderContext) -> None:
        self._auth = auth
        self._ctx = ctx
        self._account = ctx.account.name
        self._app: Any = None
        self._cache: Any = None
        self._rejected: set[str] = set()  # refused tokens, purged from msal's cache once it is loaded
        register_secrets_of(auth)
        self.token_requests = 0  # tokens msal fetched from the identity provider (not its cache)
        if isinstance(auth, ClientCredentialsAuth):
            self._scopes = [auth.scope or _graph_scope(ctx.account.base_url)]
            secret = auth.client_secret
        else:
            root = _graph_scope(ctx.account.base_url)[: -len(".default")]
            self._scopes = list(auth.scopes) or [f"{root}Calendars.Read"]
            secret = f"{auth.client_secret or ''}\x00{auth.refresh_token}"
        bound = binding(_authority(auth.authority, auth.tenant_id), auth.client_id, secret, *self._scopes)
        slot = TokenSlot(secrets=ctx.secrets, account=self._account, name=ACCESS_SECRET, binding=bound)
        self._tokens = CachedToken(self._fetch, margin=REFRESH_MARGIN, clock=_utcnow, name=type(auth).__name__,
                                   slot=slot)  # fmt: skip

    def __repr__(self) -> str:
        return f"MsalTokenSource({type(self._auth).__name__})"

    async def token(self) -> str:
        """A valid access token, from msal's cache when it holds one.

        Raises:
            AuthError: the identity provider refused the credentials.
            TransientError: it could not be reached or failed (5xx).
        """
        return await self._tokens.token()

    async def invalidate(self, rejected: str) -> None:
        """Forget ``rejected`` (Graph refused it), here and in msal's cache, so the next token is a new one."""
        await self._tokens.invalidate(rejected)
        # No await from here on: no acquisition can start (or be running) while msal's cache changes.
        self._rejected.add(rejected)
        self._purge_rejected()

    def _purge_rejected(self) -> None:
        """Drop refused access tokens from msal's cache (a token from the slot may be refused before
        msal was built; its stored cache still holds that token then)."""
        cache = self._cache
        if cache is not None and self._rejected:
            for item in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
                if item.get("secret") in self._rejected:
                    cache.remove_at(item)

    async def _fetch(self) -> Token:
        # CachedToken runs this under the store's account lock (toolkit.account_lock), so the cache
        # read here and written below is the newest any process holds: another worker may have
        # spent (and Microsoft rotated) the refresh token this process's msal cache still has.
        stored = await self._load_cache()
        if self._app is None:
            await asyncio.to_thread(self._build, stored)
        elif stored:
            self._reload(stored)
        self._purge_rejected()
        result = await asyncio.to_thread(self._acquire)
        if self._cache.has_state_changed:
            self._cache.has_state_changed = False
            await self._ctx.secrets.set_secret(self._account, CACHE_SECRET, self._cache.serialize())
        token = result.get("access_token")
        register_secret(result.get("refresh_token"))  # Microsoft may rotate it
        if not token:
            raise AuthError(_describe(result), provider="graph", code=scrub(str(result.get("error") or "auth"))[:100])
        if result.get("token_source") == "identity_provider":
            self.token_requests += 1
        expires_in = float(result.get("expires_in") or 0)
        return Token(value=str(token), expires_at=_utcnow() + dt.timedelta(seconds=expires_in))

    async def _load_cache(self) -> str | None:
        secrets = self._ctx.secrets
        if isinstance(self._auth, RefreshTokenAuth):
            configured = _hash(self._auth.refresh_token)
            if await secrets.get_secret(self._account, RT_HASH_SECRET) != configured:
                # The configured refresh token changed since the cache was stored: it wins.
                await secrets.set_secret(self._account, RT_HASH_SECRET, configured)
                return None
        return await secrets.get_secret(self._account, CACHE_SECRET)

    def _reload(self, stored: str) -> None:
        """Replace msal's in-memory cache with the stored one (an unreadable one is ignored)."""
        try:
            self._cache.deserialize(stored)
        except ValueError:
            logger.warning("graph account %s: stored token cache unreadable; keeping this process's", self._account)

    def _build(self, stored: str | None) -> None:
        import msal

        cache = msal.SerializableTokenCache()
        if stored:
            try:
                cache.deserialize(stored)
            except ValueError:
                logger.warning("graph account %s: stored token cache unreadable; starting afresh", self._account)
        auth = self._auth
        authority = _authority(auth.authority, auth.tenant_id)
        host = (urlsplit(authority).hostname or "").lower()
        kwargs: dict[str, Any] = {
            "authority": authority,
            "token_cache": cache,
            "http_client": ca_requests_session(self._ctx.account.ca_file, timeout=_IDP_TIMEOUT),
            "azure_region": None,
        }
        if host not in _MICROSOFT_HOSTS:
            kwargs["instance_discovery"] = False  # never ask login.microsoftonline.com about another host
        try:
            if auth.client_secret:
                self._app = msal.ConfidentialClientApplication(
                    auth.client_id, client_credential=auth.client_secret, **kwargs
                )
            else:
                self._app = msal.PublicClientApplication(auth.client_id, **kwargs)
        except requests.RequestException as exc:
            raise TransientError(f"identity provider unreachable: {type(exc).__name__}", provider="graph") from None
        except ValueError as exc:
            # msal's discovery failure message names the authority URL only, never a secret.
            raise AuthError(f"identity provider refused the authority: {scrub(str(exc))}", provider="graph") from None
        self._cache = cache

    def _acquire(self) -> Mapping[str, Any]:
        import msal

        app = self._app
        try:
            if isinstance(self._auth, ClientCredentialsAuth):
                result: Mapping[str, Any] | None = app.acquire_token_for_client(scopes=self._scopes)
                return result or {}
            for account in app.get_accounts():
                result = app.acquire_token_silent(self._scopes, account=account)
                if result and result.get("access_token"):
                    return result
            rt = self._newest_refresh_token() or self._auth.refresh_token
            result = app.acquire_token_by_refresh_token(rt, scopes=self._scopes)
            return result or {}
        except requests.RequestException as exc:
            raise TransientError(f"identity provider unreachable: {type(exc).__name__}", provider="graph") from None
        except msal.exceptions.MsalServiceError as exc:
            # msal raises this for a 5xx token answer ("HTTP Error: 500"); it has no `error` attribute.
            raise TransientError(f"identity provider error: {scrub(str(exc))[:200]}", provider="graph") from None

    def _newest_refresh_token(self) -> str | None:
        items = list(self._cache.search(self._cache.CredentialType.REFRESH_TOKEN))
        if not items:
            return None
        items.sort(key=lambda i: int(i.get("last_modification_time") or 0), reverse=True)
        secret = items[0].get("secret")
        register_secret(secret)
        return str(secret) if secret else None


def _describe(result: Mapping[str, Any]) -> str:
    """An error line from a msal error dict: the error code and the first line of its description."""
    code = scrub(str(result.get("error") or "no access token"))[:100]
    # The server's description may echo the posted form (client_secret, refresh_token): scrubbed.
    desc = scrub(str(result.get("error_description") or "")).splitlines()
    return f"token request refused: {code}" + (f": {desc[0][:200]}" if desc else "")


def token_source(auth: GraphAuth, ctx: ProviderContext) -> TokenSource:
    """The token source for a structured graph ``auth``."""
    if isinstance(auth, TokenAuth):
        return StaticTokenSource(auth.token)
    return MsalTokenSource(auth, ctx)
