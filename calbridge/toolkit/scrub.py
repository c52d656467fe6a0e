"""Secrets out of text: :func:`scrub` removes every secret calbridge holds, and credential-shaped
values, from text that came from a server (or an error built on it) before it is printed, logged
or stored.

Two rules. **By value**: :func:`register_secret` puts a value (a configured client secret, app
secret, refresh token or key, an access token obtained, a rotated refresh token) in a process-wide
registry; values shorter than :data:`MIN_LENGTH` are not kept (they would erase ordinary words).
Each value is also matched in its URL-encoded and JSON-escaped forms, the ways a server echoes a
posted form. **By pattern**: ``Bearer …``, ``Basic …``, and the values of ``client_secret``,
``refresh_token``, ``access_token``, ``code`` (and a few more credential names) in form/query
(``key=value``) and JSON or repr (``"key": "value"``) form. calbridge's own ids and cursors match
neither rule and stay.

Plugins register what their auth config holds with :func:`register_secrets_of` (every string field
declared ``repr=False``) and call :func:`scrub` (or :func:`scrub_error`) on any server text they
put into a message; :class:`ScrubFilter` guards a logging handler.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

import attrs

__all__ = [
    "MAX_SHORT_LIVED",
    "MIN_LENGTH",
    "REDACTED",
    "ScrubFilter",
    "register_secret",
    "register_secrets_of",
    "scrub",
    "scrub_error",
]

MIN_LENGTH = 6
MAX_SHORT_LIVED = 2048  # forms of short-lived values (4 or so per token) kept at once
REDACTED = "<redacted>"
_NAMES = (
    "client_secret|app_secret|refresh_token|access_token|id_token|tenant_access_token|user_access_token"
    "|client_assertion|assertion|password|code|private_key"
)
_PATTERNS = (
    # RFC 6750 bearer tokens and RFC 7617 basic credentials, as an echoed Authorization header shows them.
    (re.compile(r"\b(Bearer|Basic)(\s+|%20|\+)[^\s\"',;&)\]}]+", re.IGNORECASE), rf"\1\2{REDACTED}"),
    # "client_secret": "…" (JSON) or 'client_secret': '…' (a Python repr); escaped quotes stay inside.
    (
        re.compile(rf"""(["'])({_NAMES})\1(\s*:\s*)(["'])(?:\\.|(?!\4).)*\4""", re.IGNORECASE),
        rf"\1\2\1\3\4{REDACTED}\4",
    ),
    # The same inside a JSON string that quotes JSON: \"client_secret\": \"…\".
    (
        re.compile(rf"""(\\["'])({_NAMES})\1(\s*:\s*)(\\["'])(?:(?!\4).)*\4""", re.IGNORECASE),
        rf"\1\2\1\3\4{REDACTED}\4",
    ),
    # client_secret=… in a form body or query string; the look-behind keeps error_code= and the like out.
    (re.compile(rf"(?<![\w-])({_NAMES})(=)[^&\s\"',;)\]}}]+", re.IGNORECASE), rf"\1\2{REDACTED}"),
)

E = TypeVar("E", bound=BaseException)


class _Registry:
    """The secret values known to this process, and the one regex that finds any of them.

    Configured secrets stay for the process's life; short-lived ones (access tokens, fetched every
    hour or so by a long-running service) only the newest :data:`MAX_SHORT_LIVED`, so the regex
    does not grow without bound.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lasting: set[str] = set()
        self._short: OrderedDict[str, None] = OrderedDict()
        self._regex: re.Pattern[str] | None = None

    def add(self, value: str, *, lasting: bool) -> None:
        forms = {value, quote_plus(value), quote(value, safe=""), json.dumps(value)[1:-1]}
        forms.update(line.strip() for line in value.splitlines())  # a PEM key echoed line by line
        forms = {f for f in forms if len(f) >= MIN_LENGTH}
        with self._lock:
            if lasting:
                new = not forms <= self._lasting
                self._lasting |= forms
            else:
                new = not all(f in self._short or f in self._lasting for f in forms)
                for form in forms:
                    self._short[form] = None
                    self._short.move_to_end(form)
                while len(self._short) > MAX_SHORT_LIVED:
                    self._short.popitem(last=False)
            if new:
                self._regex = None

    def regex(self) -> re.Pattern[str] | None:
        with self._lock:
            values = self._lasting | self._short.keys()
            if self._regex is None and values:
                # Longest first: a secret that contains another is removed whole.
                alternatives = sorted(values, key=len, reverse=True)
                self._regex = re.compile("|".join(map(re.escape, alternatives)))
            return self._regex


_registry = _Registry()


def register_secret(value: str | None, *, lasting: bool = True) -> None:
    """Remember ``value`` as a secret for :func:`scrub` (None, empty or shorter than :data:`MIN_LENGTH`:
    ignored); ``lasting=False`` for a short-lived one (an access token), of which the newest are kept."""
    if isinstance(value, str) and len(value) >= MIN_LENGTH:
        _registry.add(value, lasting=lasting)


def register_secrets_of(config: object) -> None:
    """Register every string field of an attrs ``config`` declared ``repr=False`` (an auth config's secrets)."""
    cls: Any = type(config)
    if not attrs.has(cls):
        return
    for field in attrs.fields(cls):
        if not field.repr:
            value = getattr(config, field.name, None)
            values: Iterable[object] = value if isinstance(value, tuple | list) else (value,)
            for item in values:
                if isinstance(item, str):
                    register_secret(item)


def scrub(text: str) -> str:
    """``text`` with every registered secret and every credential-shaped value replaced by ``<redacted>``."""
    if not text:
        return text
    regex = _registry.regex()
    if regex is not None:
        text = regex.sub(REDACTED, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_error(exc: E) -> E:
    """``exc`` with its message arguments scrubbed in place (the same object, so it can be re-raised)."""
    args = tuple(scrub(a) if isinstance(a, str) else a for a in exc.args)
    if args != exc.args:
        exc.args = args
    return exc


class ScrubFilter(logging.Filter):
    """A handler filter: the formatted message, traceback and stack of every record, scrubbed."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True
