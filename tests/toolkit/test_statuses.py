"""The status fallback every error table ends with."""

from __future__ import annotations

import pytest

from calbridge.errors import (
    AuthError,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    ProviderError,
    TokenExpired,
    TransientError,
)  # fmt: skip
from calbridge.toolkit import error_by_status


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, InvalidResponse), (204, InvalidResponse), (302, InvalidRequest), (400, InvalidRequest),
        (401, TokenExpired), (403, PermissionDenied), (404, NotFound), (408, TransientError),
        (409, InvalidRequest), (500, TransientError), (503, TransientError),
    ],
)  # fmt: skip
def test_each_status_has_one_meaning(status: int, kind: type[ProviderError]) -> None:
    error = error_by_status(status, "x call: failed", provider="x", code="c1")
    assert type(error) is kind
    assert (error.provider, error.status, error.code, str(error)) == ("x", status, "c1", "x call: failed")


def test_a_provider_says_what_its_401_is() -> None:
    assert type(error_by_status(401, "t", provider="x", unauthorized=AuthError)) is AuthError
