"""toolkit.scrub: registered secrets go by value (raw, URL-encoded, JSON-escaped, a PEM key's lines),
credential-shaped values by pattern; calbridge's own ids, cursors and codes stay."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import attrs
import pytest

from calbridge.errors import TransientError
from calbridge.store.sqlite import SqliteStore
from calbridge.toolkit.scrub import (
    MAX_SHORT_LIVED,
    REDACTED,
    ScrubFilter,
    register_secret,
    register_secrets_of,
    scrub,
    scrub_error,
)

SECRET = 'value-3f9+a/b=c&d"e'


def test_a_registered_secret_goes_in_every_echoed_form() -> None:
    register_secret(SECRET)
    for form in (SECRET, quote_plus(SECRET), quote(SECRET, safe=""), json.dumps(SECRET)[1:-1]):
        text = scrub(f"server said: {form}!")
        assert text == f"server said: {REDACTED}!", form
        assert "3f9" not in text


def test_pem_key_lines_and_short_values() -> None:
    pem = "\n".join(("-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "BKcwggSjAgEAAoIBAQC7", ""))
    register_secret(pem)
    assert "MIIEvQ" not in scrub("the key line MIIEvQIBADANBgkqhkiG9w0BAQEFAASC was refused")
    register_secret("abc12")  # shorter than MIN_LENGTH: would erase ordinary words
    register_secret(None)
    assert scrub("abc12 stays") == "abc12 stays"


def test_credential_patterns() -> None:
    form = urlencode({"client_id": "app-1", "client_secret": "s1", "refresh_token": "r1", "code": "c1"})
    assert scrub(form) == f"client_id=app-1&client_secret={REDACTED}&refresh_token={REDACTED}&code={REDACTED}"
    assert scrub('{"client_secret": "s\\"1", "access_token":"a1", "code": 190008}') == (
        f'{{"client_secret": "{REDACTED}", "access_token":"{REDACTED}", "code": 190008}}'
    )
    assert scrub("{'app_secret': 'x1'}") == f"{{'app_secret': '{REDACTED}'}}"
    quoted = json.dumps({"error": json.dumps({"client_secret": "s2", "n": 1})})  # JSON inside a JSON string
    assert "s2" not in scrub(quoted) and '\\"n\\": 1' in scrub(quoted)
    assert scrub("Authorization: Bearer ya29.a0-b_c; then") == f"Authorization: Bearer {REDACTED}; then"
    assert scrub("authorization: basic dXNlcjpwYXNz") == f"authorization: basic {REDACTED}"
    assert scrub("url?access_token=t0k&x=1") == f"url?access_token={REDACTED}&x=1"


@pytest.mark.parametrize(
    "text",
    [
        "feishu event list: page_token or sync_token expired (code 190008, HTTP 400: expired)",
        "graph calendarView delta of AAMkAGI2TG93AAA=: HTTP 410 syncStateNotFound",
        "google events.list primary: invalid syncToken CPDAlvWDx70CEPDAlvWDx70CGAU= (error_code=3)",
        "https://graph.example/v1.0/me/calendarView/delta?$deltatoken=R0usmci39OQxqJrxK4&$skiptoken=abc",
        "event 6b8f2e1c_1741017600 (ou_alice) of cal 'feishu.cn_xxx@group.calendar.feishu.cn'",
    ],
)
def test_ids_cursors_and_codes_stay(text: str) -> None:
    assert scrub(text) == text


def test_register_secrets_of_takes_the_repr_false_fields() -> None:
    @attrs.frozen
    class Auth:
        client_id: str
        client_secret: str = attrs.field(repr=False)
        scopes: tuple[str, ...] = attrs.field(default=("calendar-scope-1",), repr=False)

    register_secrets_of(Auth(client_id="client-public-id", client_secret="cs-hidden-1"))
    assert scrub("client-public-id cs-hidden-1 calendar-scope-1") == f"client-public-id {REDACTED} {REDACTED}"
    register_secrets_of(object())  # not attrs: nothing


def test_scrub_error_rewrites_the_message_of_the_same_error() -> None:
    register_secret("tok-in-a-message")
    exc = TransientError("google: 500 tok-in-a-message", provider="google", status=500, code="backendError")
    assert scrub_error(exc) is exc
    assert str(exc) == f"google: 500 {REDACTED}" and (exc.status, exc.code) == (500, "backendError")


def test_scrub_filter_cleans_message_args_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("logged-secret-9")
    logger = logging.getLogger("calbridge.test_scrub")
    caplog.handler.addFilter(ScrubFilter())
    try:
        try:
            raise RuntimeError("boom logged-secret-9")
        except RuntimeError:
            logger.exception("failed with %s and Bearer %s", "logged-secret-9", "zzz-bearer")
    finally:
        caplog.handler.filters.clear()
    assert "logged-secret-9" not in caplog.text and "zzz-bearer" not in caplog.text
    assert "RuntimeError: boom" in caplog.text and REDACTED in caplog.text


async def test_the_store_keeps_last_error_scrubbed(tmp_path: Path) -> None:
    register_secret("stored-secret-77")
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    async with SqliteStore(tmp_path / "m.db") as store:
        await store.record_result("a", "c", at=at, error="AuthError: echo stored-secret-77, Bearer at-1234567")
        (row,) = await store.status()
    assert row.last_error == f"AuthError: echo {REDACTED}, Bearer {REDACTED}"
    for path in tmp_path.glob("m.db*"):
        assert b"stored-secret-77" not in path.read_bytes(), path


def test_short_lived_values_are_bounded_configured_ones_stay() -> None:
    register_secret("configured-secret-kept")
    register_secret("at-oldest-token-0", lasting=False)
    for i in range(MAX_SHORT_LIVED):
        register_secret(f"at-newer-token-{i:05d}", lasting=False)
    text = scrub("configured-secret-kept at-oldest-token-0 at-newer-token-00007")
    assert text == f"{REDACTED} at-oldest-token-0 {REDACTED}"
