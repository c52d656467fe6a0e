"""Auth configs for the google plugin and small typed adapters around google-auth.

google-auth is blocking: refreshes run in ``asyncio.to_thread`` through its ``requests`` transport
with a session that trusts the account's ``ca_file``. Only the access token leaves this module, as
an ``Authorization`` header value; no repr, log line or error message carries a token or secret.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Protocol

import attrs
import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
import google.oauth2.service_account
import requests

from calbridge.errors import AuthError, TransientError

SCOPES = ("https://www.googleapis.com/auth/calendar.readonly",)
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"


@attrs.frozen(kw_only=True)
class AuthorizedUserAuth:
    """``kind: authorized_user`` — an OAuth client plus a user's refresh token."""

    client_id: str
    client_secret: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)
    token_uri: str = DEFAULT_TOKEN_URI


@attrs.frozen(kw_only=True)
class ServiceAccountAuth:
    """``kind: service_account`` — a JSON key file (its token_uri is honoured), optionally acting as ``subject``."""

    key_file: Path
    subject: str | None = None


@attrs.frozen(kw_only=True)
class TokenAuth:
    """``kind: token`` — a bearer token the caller keeps fresh."""

    token: str = attrs.field(repr=False)


GoogleAuth = AuthorizedUserAuth | ServiceAccountAuth | TokenAuth


class TokenSource(Protocol):
    """Hands out an ``Authorization`` header value; ``invalidate`` forces a refresh on the next call."""

    async def authorization(self) -> str: ...

    def invalidate(self) -> None: ...

    @property
    def refreshable(self) -> bool: ...


class _CASession(requests.Session):
    """A requests session that trusts ``ca_file`` even when REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE are set
    (requests lets those override ``verify``), while keeping HTTPS_PROXY / NO_PROXY from the environment."""

    def __init__(self, ca_file: Path | None) -> None:
        super().__init__()
        self._ca_file = str(ca_file) if ca_file is not None else None

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self._ca_file is not None:
            settings["verify"] = self._ca_file
        return settings


class StaticToken:
    """``kind: token``: nothing to refresh."""

    refreshable = False

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    async def authorization(self) -> str:
        return self._header

    def invalidate(self) -> None:
        pass

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class GoogleCredentials:
    """google-auth credentials refreshed off the event loop, one refresh at a time."""

    refreshable = True

    def __init__(self, auth: AuthorizedUserAuth | ServiceAccountAuth, *, ca_file: Path | None) -> None:
        self._auth = auth
        self._session = _CASession(ca_file)
        self._creds: Any = None
        self._lock = asyncio.Lock()
        self._stale = False

    def __repr__(self) -> str:
        return f"GoogleCredentials({type(self._auth).__name__})"

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

    def _refresh(self) -> None:
        if self._creds is None:
            self._creds = self._build()
        self._creds.refresh(google.auth.transport.requests.Request(session=self._session))

    def invalidate(self) -> None:
        self._stale = True

    async def authorization(self) -> str:
        """``Bearer <token>``, refreshing first when there is none, it is expiring, or it was refused.

        Raises:
            AuthError: the token endpoint refused the credentials (or the key file is unusable).
            TransientError: the token endpoint could not be reached or failed with 5xx.
        """
        async with self._lock:
            creds = self._creds
            if creds is None or self._stale or not creds.valid:
                try:
                    await asyncio.to_thread(self._refresh)
                except google.auth.exceptions.RefreshError as exc:
                    # args[0] is "error_code: description" from the endpoint; never the request.
                    code = str(exc.args[0]).split(":", 1)[0] if exc.args else "refresh failed"
                    if getattr(exc, "retryable", False):
                        raise TransientError(f"token refresh failed: {code}", provider="google") from None
                    raise AuthError(f"token refresh refused: {code}", provider="google", code=code) from None
                except google.auth.exceptions.TransportError as exc:
                    raise TransientError(
                        f"token endpoint unreachable: {type(exc).__name__}", provider="google"
                    ) from None
                except (OSError, ValueError, KeyError) as exc:
                    raise AuthError(f"unusable credentials: {type(exc).__name__}", provider="google") from None
                self._stale = False
            return f"Bearer {self._creds.token}"


def token_source(auth: object, *, ca_file: Path | None) -> TokenSource:
    if isinstance(auth, TokenAuth):
        return StaticToken(auth.token)
    if isinstance(auth, AuthorizedUserAuth | ServiceAccountAuth):
        return GoogleCredentials(auth, ca_file=ca_file)
    raise AuthError(f"unsupported google auth config {type(auth).__name__}", provider="google")
