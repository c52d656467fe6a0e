"""calbridge's one error tree. Every error the library raises derives from :class:`CalbridgeError`.

::

    CalbridgeError
    ├── ConfigError(CalbridgeError, ValueError)   where: str (e.g. "accounts[1].auth.client_secret")
    ├── PluginError                               entry_point, hint
    ├── MissingDependency                         module, extra: an optional package is not installed
    ├── StoreError
    │   ├── StoreBusy                             another sync holds the store
    │   └── SecretKeyError                        CALBRIDGE_SECRET_KEY missing, wrong or malformed
    ├── ProviderError                             provider, status, code
    │   ├── AuthError                             credentials refused (not retried)
    │   │   └── TokenExpired                      refresh once and retry
    │   ├── PermissionDenied
    │   ├── NotFound
    │   ├── CursorExpired                         sync token / delta link gone → full resync
    │   ├── RateLimited                           retry_after: float | None, retry_at: datetime | None
    │   ├── TransientError                        5xx, reset connections
    │   │   └── ProviderTimeout(TransientError, TimeoutError)
    │   ├── InvalidRequest                        the provider rejected the request itself
    │   ├── InvalidResponse                       a page or link that cannot be used
    │   └── RunawayPaging                         a round over its page limit or deadline, or repeating
    └── MalformedEvent                            one payload that cannot be normalized (quarantined)

Messages never carry tokens or secrets: providers build them from status codes, error codes and
provider messages, scrubbed of secrets (:func:`calbridge.toolkit.scrub.scrub`).
"""

from __future__ import annotations

import datetime as dt


class CalbridgeError(Exception):
    """Root of every calbridge error."""


class ConfigError(CalbridgeError, ValueError):
    """The configuration is invalid at ``where`` (a path like ``accounts[0].auth.kind``)."""

    def __init__(self, message: str, *, where: str = "") -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class PluginError(CalbridgeError):
    """A provider plugin could not be found or loaded."""

    def __init__(self, message: str, *, entry_point: str | None = None, hint: str | None = None) -> None:
        self.entry_point = entry_point
        self.hint = hint
        super().__init__(message + (f" ({hint})" if hint else ""))


class MissingDependency(CalbridgeError):
    """A feature needs ``module``, which is not installed; ``extra`` names the calbridge extra that
    brings it (None: a core dependency, so the install itself is broken)."""

    def __init__(self, feature: str, *, module: str, extra: str | None = None) -> None:
        self.module = module
        self.extra = extra
        fix = f"pip install 'calbridge[{extra}]'" if extra else "reinstall: pip install --force-reinstall calbridge"
        super().__init__(f"{feature}: {module} is not installed ({fix})")


class StoreError(CalbridgeError):
    """The store cannot be opened, migrated or written."""


class StoreBusy(StoreError):
    """Another process is syncing into the same store."""


class LeaseLost(StoreError):
    """A write for a calendar whose lease another worker has taken: nothing of it was written."""


class FeedBehind(StoreError):
    """A change-feed read starts below what retention kept: reading on would skip changes silently."""

    def __init__(self, *, after: int, oldest: int) -> None:
        self.after, self.oldest = after, oldest
        super().__init__(
            f"changes after {after} are no longer kept (the oldest kept is {oldest});"
            " start again with --after 0 and rebuild from a full read"
        )


class SecretKeyError(StoreError):
    """The secret slot cannot be used with the key in the environment: encrypted and no key (or a key
    that does not open it), or a malformed key."""


class ProviderError(CalbridgeError):
    """A provider call failed; ``status`` is the HTTP status and ``code`` the provider's error code."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.code = code
        super().__init__(message)


class AuthError(ProviderError):
    """Credentials were refused; retrying will not help."""


class TokenExpired(AuthError):
    """The access token was rejected as expired or invalid: refresh once and retry."""


class PermissionDenied(ProviderError):
    """The account may not read this calendar."""


class NotFound(ProviderError):
    """The calendar or event does not exist (or was deleted)."""


class CursorExpired(ProviderError):
    """The stored cursor is no longer accepted: run a full listing and sweep."""


class RateLimited(ProviderError):
    """The provider asked us to slow down; ``retry_after`` is its wait in seconds when it gave one.

    ``retry_at`` (an aware UTC datetime) is set when the retry policy gave up on a wait longer than its
    budget: the calendar may be tried again from then (``CalendarResult.retry_at``).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        retry_at: dt.datetime | None = None,
        provider: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        self.retry_at = retry_at
        super().__init__(message, provider=provider, status=status, code=code)


class TransientError(ProviderError):
    """A failure that may pass: 5xx, a dropped connection."""


class ProviderTimeout(TransientError, TimeoutError):
    """A provider call took longer than its deadline."""


class InvalidRequest(ProviderError):
    """The provider rejected the request as malformed (a bug or an unsupported option)."""


class InvalidResponse(ProviderError):
    """The provider answered something calbridge cannot use (a malformed page or link)."""


class RunawayPaging(ProviderError):
    """A round that does not end: over its page limit, past its deadline, or a page link or token seen
    before in the round. ``reason`` is ``"pages"``, ``"deadline"`` or ``"repeat"``."""

    def __init__(self, message: str, *, reason: str, provider: str | None = None) -> None:
        self.reason = reason
        super().__init__(message, provider=provider, code=reason)


class MalformedEvent(CalbridgeError):
    """One event payload that cannot be normalized; it is quarantined and the page goes on."""

    def __init__(self, message: str, *, event_id: str | None = None) -> None:
        self.event_id = event_id
        super().__init__(message)
