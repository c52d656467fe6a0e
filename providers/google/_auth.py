"""The google account's token sources, on the toolkit's :class:`~calbridge.toolkit.TokenSource`.

google-auth is blocking: refreshes run in ``asyncio.to_thread`` through its ``requests`` transport
on a session that trusts the account's ``ca_file``; :class:`~calbridge.toolkit.CachedToken` makes
callers share one refresh and refreshes ahead of expiry, and keeps the access token in the store's
secret slot until then (a :class:`~calbridge.toolkit.TokenSlot` bound to the credentials), so the
next process reuses it instead of asking the token endpoint again; on a store shared by many
workers the refresh runs under its account lock, so they share one access token. Only the access token leaves
this module; no repr, log line or error message carries a token or secret.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
import google.oauth2.service_account

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

from ._config import AuthorizedUserAuth, ServiceAccountAuth, TokenAuth

SCOPES = ("https://www.googleapis.com/auth/calendar.readonly",)
# google-auth's own refresh threshold (``credentials.valid``): refresh this long before expiry.
REFRESH_MARGIN = dt.timedelta(minutes=3, seconds=45)
SECRET_ACCESS = "google.access_token"


def _bound_to(auth: AuthorizedUserAuth | ServiceAccountAuth) -> str:
    """What a stored token must have been fetched with: the client and refresh token, or the key
    file's content (a digest; an unreadable file binds to its path only and fails at the fetch)."""
    if isinstance(auth, AuthorizedUserAuth):
        return binding(auth.token_uri, auth.client_id, auth.client_secret, auth.refresh_token)
    try:
        key = hashlib.sha256(auth.key_file.read_bytes()).hexdigest()
    except OSError:
        key = ""
    return binding(str(auth.key_file), key, auth.subject or "")


class GoogleCredentials:
    """google-auth credentials (authorized user or service account) refreshed off the event loop."""

    def __init__(
        self, auth: AuthorizedUserAuth | ServiceAccountAuth, *, ca_file: Path | None, ctx: ProviderContext | None = None
    ) -> None:
        self._auth = auth
        register_secrets_of(auth)
        self._session = ca_requests_session(ca_file)
        self._creds: Any = None
        self._clock = ctx.clock if ctx is not None else _utcnow
        slot = None
        if ctx is not None:
            slot = TokenSlot(secrets=ctx.secrets, account=ctx.account.name, name=SECRET_ACCESS, binding=_bound_to(auth))
        self._cache = CachedToken(self._fetch, margin=REFRESH_MARGIN, clock=self._clock, name=type(auth).__name__,
                                  slot=slot)  # fmt: skip

    refreshable = True

    def __repr__(self) -> str:
        return f"GoogleCredentials({type(self._auth).__name__})"

    async def token(self) -> str:
        """The access token, refreshed first when there is none, it is expiring, or it was refused.

        Raises:
            AuthError: the token endpoint refused the credentials (or the key file is unusable).
            TransientError: the token endpoint could not be reached or failed with 5xx.
        """
        return await self._cache.token()

    async def invalidate(self, rejected: str) -> None:
        await self._cache.invalidate(rejected)

    def _build(self) -> Any:
        auth = self._auth
        if isinstance(auth, AuthorizedUserAuth):
            # Built directly: from_authorized_user_info would replace token_uri with Google's own.
            return google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
                token=None, refresh_token=auth.refresh_token, client_id=auth.client_id,
                client_secret=auth.client_secret, token_uri=auth.token_uri, scopes=list(SCOPES),
            )  # fmt: skip
        info = json.loads(auth.key_file.read_text(encoding="utf-8"))
        register_secret(info.get("private_key"))
        return google.oauth2.service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(SCOPES), subject=auth.subject
        )

    def _refresh(self) -> Token:
        if self._creds is None:
            self._creds = self._build()
        self._creds.refresh(google.auth.transport.requests.Request(session=self._session))
        register_secret(getattr(self._creds, "refresh_token", None))  # a rotated one, when Google sends it
        expiry = self._creds.expiry  # naive UTC, as google-auth keeps it; None: no expiry given
        if expiry is None:
            return Token(value=self._creds.token)
        # google-auth reckons in real time; the cache in the provider's clock (a pinned one in tests).
        left = expiry.replace(tzinfo=dt.UTC) - _utcnow()
        return Token(value=self._creds.token, expires_at=self._clock() + left)

    async def _fetch(self) -> Token:
        try:
            return await asyncio.to_thread(self._refresh)
        except google.auth.exceptions.RefreshError as exc:
            # args[0] is "error_code: description" from the endpoint, whose description may echo the
            # posted form (client_secret, refresh_token): its first line is kept, scrubbed.
            text = (str(exc.args[0]).splitlines() or [""])[0] if exc.args else "refresh failed"
            code, said = scrub(text.split(":", 1)[0])[:100], scrub(text)[:200]
            if getattr(exc, "retryable", False):
                raise TransientError(f"token refresh failed: {said}", provider="google") from None
            raise AuthError(f"token refresh refused: {said}", provider="google", code=code) from None
        except google.auth.exceptions.TransportError as exc:
            raise TransientError(f"token endpoint unreachable: {type(exc).__name__}", provider="google") from None
        except (OSError, ValueError, KeyError) as exc:
            raise AuthError(f"unusable credentials: {type(exc).__name__}", provider="google") from None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def token_source(auth: object, *, ca_file: Path | None, ctx: ProviderContext | None = None) -> TokenSource:
    """The token source for a parsed google auth config (with ``ctx``: its token kept in
    ``ctx.secrets`` across processes).

    Raises:
        AuthError: ``auth`` is not a google auth config.
    """
    if isinstance(auth, TokenAuth):
        return StaticTokenSource(auth.token)
    if isinstance(auth, AuthorizedUserAuth | ServiceAccountAuth):
        return GoogleCredentials(auth, ca_file=ca_file, ctx=ctx)
    raise AuthError(f"unsupported google auth config {type(auth).__name__}", provider="google")
