"""A typed async adapter around msal: access tokens for Microsoft Graph.

msal is blocking and its constructor already talks to the authority (OIDC discovery), so the
application is built lazily, inside :func:`asyncio.to_thread`, on the first token request — never
while the config is checked. Its :class:`msal.SerializableTokenCache` lives in the store's secret
slot, so a token is fetched once per lifetime and a refresh token Microsoft rotates survives the
process. A configured refresh token wins once it differs from the one the stored cache grew from
(a hash of it is stored beside the cache).

HTTP goes through a ``requests.Session`` that keeps proxy settings from the environment but puts
the account's ``ca_file`` in ``verify`` *after* the environment merge: ``REQUESTS_CA_BUNDLE`` would
otherwise silently override it. Tokens never reach logs or exception messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from calbridge.errors import AuthError, TransientError
from calbridge.provider import ProviderContext

from ._config import ClientCredentials, GraphAuth, RefreshTokenAuth, StaticToken

logger = logging.getLogger(__name__)

CACHE_SECRET = "graph.msal_cache"
RT_HASH_SECRET = "graph.refresh_token_sha256"
_MICROSOFT_HOSTS = frozenset(
    {
        "login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net",
        "login.chinacloudapi.cn", "login-us.microsoftonline.com", "login.microsoftonline.us",
    }
)  # fmt: skip
_DEFAULT_TIMEOUT = 30.0


class TokenSource(Protocol):
    """Where a provider's bearer tokens come from."""

    async def token(self) -> str: ...

    async def invalidate(self) -> None:
        """Forget the current access token (the API refused it); the next call fetches another."""
        ...


class StaticTokenSource:
    """A bearer token the caller keeps fresh; nothing to refresh."""

    def __init__(self, auth: StaticToken) -> None:
        self._token = auth.token

    async def token(self) -> str:
        return self._token

    async def invalidate(self) -> None:
        return None


class _CaSession(requests.Session):
    """requests with the account's CA in ``verify`` and everything else (proxies) from the environment."""

    def __init__(self, ca_file: str | None, timeout: float) -> None:
        super().__init__()
        self._ca_file = ca_file
        self._timeout = timeout

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self._ca_file:
            settings["verify"] = self._ca_file
        return settings

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


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


class MsalTokenSource:
    """Access tokens through msal for ``client_credentials`` and ``refresh_token`` auth."""

    def __init__(self, auth: ClientCredentials | RefreshTokenAuth, ctx: ProviderContext) -> None:
        self._auth = auth
        self._ctx = ctx
        self._account = ctx.account.name
        self._app: Any = None
        self._cache: Any = None
        self._lock: asyncio.Lock | None = None
        self._token: str | None = None
        self._expires = 0.0
        self.token_requests = 0  # tokens msal fetched from the identity provider (not its cache)
        if isinstance(auth, ClientCredentials):
            self._scopes = [auth.scope or _graph_scope(ctx.account.base_url)]
        else:
            root = _graph_scope(ctx.account.base_url)[: -len(".default")]
            self._scopes = list(auth.scopes) or [f"{root}Calendars.Read"]

    async def token(self) -> str:
        """A valid access token, from msal's cache when it holds one.

        Raises:
            AuthError: the identity provider refused the credentials.
            TransientError: it could not be reached or failed (5xx).
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._token is not None and time.monotonic() < self._expires:
                return self._token
            if self._app is None:
                stored = await self._load_cache()
                await asyncio.to_thread(self._build, stored)
            result = await asyncio.to_thread(self._acquire)
            if self._cache.has_state_changed:
                self._cache.has_state_changed = False
                await self._ctx.secrets.set_secret(self._account, CACHE_SECRET, self._cache.serialize())
            token = result.get("access_token")
            if not token:
                raise AuthError(_describe(result), provider="graph", code=str(result.get("error") or "auth"))
            if result.get("token_source") == "identity_provider":
                self.token_requests += 1
            self._token = str(token)
            # msal's own cache treats less than 5 minutes left as expired; do the same here.
            self._expires = time.monotonic() + max(float(result.get("expires_in") or 0) - 300.0, 0.0)
            return self._token

    async def invalidate(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            self._token = None
            if self._cache is not None:
                for item in list(self._cache.search(self._cache.CredentialType.ACCESS_TOKEN)):
                    self._cache.remove_at(item)

    async def _load_cache(self) -> str | None:
        secrets = self._ctx.secrets
        if isinstance(self._auth, RefreshTokenAuth):
            configured = _hash(self._auth.refresh_token)
            if await secrets.get_secret(self._account, RT_HASH_SECRET) != configured:
                # The configured refresh token changed since the cache was stored: it wins.
                await secrets.set_secret(self._account, RT_HASH_SECRET, configured)
                return None
        return await secrets.get_secret(self._account, CACHE_SECRET)

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
        ca = str(self._ctx.account.ca_file) if self._ctx.account.ca_file else None
        kwargs: dict[str, Any] = {
            "authority": authority,
            "token_cache": cache,
            "http_client": _CaSession(ca, _DEFAULT_TIMEOUT),
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
            raise AuthError(f"identity provider refused the authority: {exc}", provider="graph") from None
        self._cache = cache

    def _acquire(self) -> Mapping[str, Any]:
        import msal

        app = self._app
        try:
            if isinstance(self._auth, ClientCredentials):
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
            raise TransientError(f"identity provider error: {exc.error}", provider="graph") from None

    def _newest_refresh_token(self) -> str | None:
        items = list(self._cache.search(self._cache.CredentialType.REFRESH_TOKEN))
        if not items:
            return None
        items.sort(key=lambda i: int(i.get("last_modification_time") or 0), reverse=True)
        secret = items[0].get("secret")
        return str(secret) if secret else None


def _describe(result: Mapping[str, Any]) -> str:
    """An error line from a msal error dict: the error code and the first line of its description."""
    code = result.get("error") or "no access token"
    desc = str(result.get("error_description") or "").splitlines()
    return f"token request refused: {code}" + (f": {desc[0][:200]}" if desc else "")


def token_source(auth: GraphAuth, ctx: ProviderContext) -> TokenSource:
    """The token source for a structured graph ``auth``."""
    if isinstance(auth, StaticToken):
        return StaticTokenSource(auth)
    return MsalTokenSource(auth, ctx)
