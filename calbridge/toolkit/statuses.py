"""The typed error an HTTP status means when the provider's own codes said nothing more.

Every error table ends the same way (408 and 5xx may pass, 401 is a rejected token, 403 a refusal,
404 a missing resource, another 4xx or a 3xx, never followed, a bad request); :func:`error_by_status`
is that ending, so a table only spells out what is its provider's own (cursor codes, rate-limit
reasons, envelopes).
"""

from __future__ import annotations

from ..errors import (
    InvalidRequest,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    ProviderError,
    TokenExpired,
    TransientError,
)  # fmt: skip

__all__ = ["error_by_status"]


def error_by_status(
    status: int,
    text: str,
    *,
    provider: str,
    code: str | None = None,
    unauthorized: type[ProviderError] = TokenExpired,
) -> ProviderError:
    """The error for ``status``; ``unauthorized`` is what a 401 is (``TokenExpired``: refresh once).

    A 2xx (a success the body says failed) is an :class:`InvalidResponse`.
    """
    kind: type[ProviderError]
    if status == 408 or status >= 500:
        kind = TransientError
    elif status == 401:
        kind = unauthorized
    elif status == 403:
        kind = PermissionDenied
    elif status == 404:
        kind = NotFound
    elif status >= 300:  # a redirect is never followed: the request must change
        kind = InvalidRequest
    else:
        kind = InvalidResponse
    return kind(text, provider=provider, status=status, code=code)
