"""The google error table and the HTTP behaviour around it: statuses and reasons → typed errors,
rate limits and server errors retried (Retry-After honoured), slow answers waited for."""

from __future__ import annotations

import time

import pytest

from calbridge.errors import (
    CursorExpired,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TokenExpired,
    TransientError,
)
from calbridge.provider import Provider
from calbridge.toolkit import Response
from calbridge_providers.google._client import error_for
from calbridge_providers.google.emulator import GoogleEmulator

from .support import Mirror
from .test_sync import LIST, seed


def _error(status: int, reason: str | None = None, *, cursor: bool = True, **headers: str) -> ProviderError | None:
    body = b'{"error": {"code": %d, "message": "m", "errors": [{"reason": "%s"}]}}' % (status, (reason or "").encode())
    return error_for(Response(status=status, headers=headers, body=body), "google x", cursor=cursor)


def test_the_error_table() -> None:
    assert error_for(Response(status=200, body=b"{}"), "google x") is None
    expired = _error(410, "fullSyncRequired")
    assert isinstance(expired, CursorExpired) and expired.code == "fullSyncRequired" and expired.status == 410
    assert type(_error(410, "deleted", cursor=False)) is NotFound and type(_error(404, "notFound")) is NotFound
    limited = _error(429, None, **{"Retry-After": "3"})
    assert isinstance(limited, RateLimited) and limited.retry_after == 3.0
    for reason in ("rateLimitExceeded", "userRateLimitExceeded"):
        assert type(_error(403, reason)) is RateLimited
    assert type(_error(403, "forbidden")) is PermissionDenied
    assert type(_error(401, "authError")) is TokenExpired
    assert type(_error(503, "backendError")) is TransientError and type(_error(408)) is TransientError
    assert type(_error(400, "invalid")) is InvalidRequest
    plain = error_for(Response(status=502, body=b"<html>bad gateway</html>"), "google x")
    assert isinstance(plain, TransientError) and str(plain) == "google: HTTP 502"


async def test_429_with_retry_after_is_honoured(emu: GoogleEmulator, provider: Provider) -> None:
    seed(emu, 3)
    emu.state.inject(429, retry_after=1)
    emu.state.clear_log()
    await Mirror().round(provider, None)
    first, second = emu.state.requests_to(LIST)
    assert first.status == 429 and second.status == 200
    assert second.time - first.time >= 1.0


@pytest.mark.parametrize(
    ("status", "reason"), [(403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (503, None)]
)
async def test_rate_limits_and_server_errors_are_retried(
    emu: GoogleEmulator, provider: Provider, status: int, reason: str | None
) -> None:
    seed(emu, 3)
    emu.state.inject(status, reason=reason, times=2)
    mirror = Mirror()
    await mirror.round(provider, None)
    assert len(mirror.live()) == 3
    assert [r.status for r in emu.state.requests_to(LIST)] == [status, status, 200]


async def test_rate_limit_that_outlasts_the_policy_surfaces_as_rate_limited(
    emu: GoogleEmulator, provider: Provider
) -> None:
    emu.state.inject(403, reason="rateLimitExceeded", times=10)
    with pytest.raises(RateLimited):
        await Mirror().round(provider, None)


async def test_slow_responses_are_waited_for(emu: GoogleEmulator, provider: Provider) -> None:
    seed(emu, 2)
    emu.state.inject(0, delay=0.3)
    t0 = time.monotonic()
    mirror = Mirror()
    await mirror.round(provider, None)
    assert time.monotonic() - t0 >= 0.3 and len(mirror.live()) == 2
