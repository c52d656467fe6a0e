"""PostgreSQL DSNs as they may be shown: never with their password."""

from __future__ import annotations

import urllib.parse

SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url: str) -> bool:
    return url.startswith(SCHEMES)


def redact(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` query parameter) replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "postgresql://(unreadable DSN)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if sep else f"{user}@{host}"
    query = urllib.parse.urlencode(
        [(k, "***" if k.lower() == "password" else v) for k, v in urllib.parse.parse_qsl(parts.query)], safe="*/:"
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
