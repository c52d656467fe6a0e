"""The google account's token sources, on the toolkit's :class:`~calbridge.toolkit.TokenSource`.

google-auth is blocking: refreshes run in ``asyncio.to_thread`` through its ``requests`` transport
on a session that trusts the account's ``ca_file``; :class:`~calbridge.toolkit.CachedToken` makes
callers share one refresh and refreshes ahead of expiry. Only the access token leaves this module;
no repr, log line or error message carries a token or secret.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
import google.oauth2.service_account

from calbridge.errors import AuthError, TransientError
from calbridge.toolkit import CachedToken, StaticTokenSource, Token, TokenSource, ca_requests_session

from ._config import AuthorizedUserAuth, ServiceAccountAuth, TokenAuth

SCOPES = ("https://www.googleapis.com/auth/calendar.readonly",)
# google-auth's own refresh threshold (``credentials.valid``): refresh this long before expiry.
REFRESH_MARGIN = dt.timedelta(minutes=3, seconds=45)


class GoogleCredentials:
    """google-auth credentials (authorized user or service account) refreshed off the event loop."""

    def __init__(self, auth: AuthorizedUserAuth | ServiceAccountAuth, *, ca_file: Path | None) -> None:
        self._auth = auth
        self._session = ca_requests_session(ca_file)
        self._creds: Any = None
        self._cache = CachedToken(self._fetch, margin=REFRESH_MARGIN, name=type(auth).__name__)

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
        return google.oauth2.service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(SCOPES), subject=auth.subject
        )

    def _refresh(self) -> Token:
        if self._creds is None:
            self._creds = self._build()
        self._creds.refresh(google.auth.transport.requests.Request(session=self._session))
        expiry = self._creds.expiry  # naive UTC, as google-auth keeps it; None: no expiry given
        return Token(value=self._creds.token, expires_at=None if expiry is None else expiry.replace(tzinfo=dt.UTC))

    async def _fetch(self) -> Token:
        try:
            return await asyncio.to_thread(self._refresh)
        except google.auth.exceptions.RefreshError as exc:
            # args[0] is "error_code: description" from the endpoint; never the request.
            code = str(exc.args[0]).split(":", 1)[0] if exc.args else "refresh failed"
            if getattr(exc, "retryable", False):
                raise TransientError(f"token refresh failed: {code}", provider="google") from None
            raise AuthError(f"token refresh refused: {code}", provider="google", code=code) from None
        except google.auth.exceptions.TransportError as exc:
            raise TransientError(f"token endpoint unreachable: {type(exc).__name__}", provider="google") from None
        except (OSError, ValueError, KeyError) as exc:
            raise AuthError(f"unusable credentials: {type(exc).__name__}", provider="google") from None


def token_source(auth: object, *, ca_file: Path | None) -> TokenSource:
    """The token source for a parsed google auth config.

    Raises:
        AuthError: ``auth`` is not a google auth config.
    """
    if isinstance(auth, TokenAuth):
        return StaticTokenSource(auth.token)
    if isinstance(auth, AuthorizedUserAuth | ServiceAccountAuth):
        return GoogleCredentials(auth, ca_file=ca_file)
    raise AuthError(f"unsupported google auth config {type(auth).__name__}", provider="google")
