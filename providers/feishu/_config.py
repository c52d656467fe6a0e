"""The feishu account's ``auth`` block and ``options`` → frozen attrs values (no network, no token).

``base_url`` picks the product: ``https://open.feishu.cn`` (Feishu, the default) or
``https://open.larksuite.com`` (Lark); every path below ``/open-apis`` is the same on both. Auth kinds:

- ``tenant``: ``app_id`` + ``app_secret`` → a tenant_access_token (the app's own identity);
- ``user``: ``app_id`` + ``app_secret`` + ``refresh_token`` → a user_access_token kept fresh; the
  refresh token rotates on every use and the newest one is kept in the store's secret slot;
- ``token``: a bearer ``token`` the caller keeps fresh.

Options: ``request_timeout`` (seconds per HTTP attempt, default 60; ``timeout`` is its deprecated
alias), ``page_size`` (events per list page, 50–1000, default 1000; for tests and slow links), and
for the attendee calls (the list carries no attendees, so a new or changed event costs one):
``attendees`` (``all``, the default, or ``window``: only for events that touch the sync window, the
others are stored with ``attendees_omitted``), ``attendee_concurrency`` (requests in flight, default
10), ``attendee_qps`` and ``attendee_qpm`` (starts per second and per minute, default 50 and 1000:
Feishu's tier 4, which the calendar event APIs are in, per app and tenant; apis.md 1.D.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from calbridge.config import auth_fields
from calbridge.errors import ConfigError
from calbridge.toolkit import request_timeout

FEISHU_BASE_URL = "https://open.feishu.cn"
LARK_BASE_URL = "https://open.larksuite.com"
PAGE_SIZE = 1000  # the list API's maximum
MIN_PAGE_SIZE = 50  # the list API's minimum
ATTENDEE_CONCURRENCY = 10
TIER4_QPS = 50  # Feishu tier 4 (calendar event APIs), per API, app and tenant (apis.md 1.D.3)
TIER4_QPM = 1000
ATTENDEE_SCOPES = ("all", "window")


@attrs.frozen(kw_only=True)
class TenantAuth:
    """``kind: tenant`` — app identity: the tenant_access_token of a self-built app."""

    app_id: str
    app_secret: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class UserAuth:
    """``kind: user`` — user identity: a user_access_token refreshed from a (rotating, single-use) refresh token."""

    app_id: str
    app_secret: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class TokenAuth:
    """``kind: token`` — a bearer token (tenant or user access token) that the caller keeps fresh."""

    token: str = attrs.field(repr=False)


FeishuAuth: TypeAlias = TenantAuth | UserAuth | TokenAuth

_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # kind -> (required, optional)
    "tenant": (("app_id", "app_secret"), ()),
    "user": (("app_id", "app_secret", "refresh_token"), ()),
    "token": (("token",), ()),
}


def parse_auth(raw: Mapping[str, Any], *, where: str) -> FeishuAuth:
    """Structure an account's ``auth`` mapping (no network).

    Raises:
        ConfigError: naming the key, e.g. ``accounts[2].auth.app_secret: required``.
    """
    kind, values = auth_fields(raw, where=where, provider="feishu", kinds=_KINDS)
    if kind == "tenant":
        return TenantAuth(**values)
    if kind == "user":
        return UserAuth(**values)
    return TokenAuth(**values)


@attrs.frozen(kw_only=True)
class FeishuOptions:
    """The feishu account's ``options`` (read once, when the provider is built)."""

    request_timeout: float
    page_size: int = PAGE_SIZE
    attendees: str = "all"  # or "window"
    attendee_concurrency: int = ATTENDEE_CONCURRENCY
    attendee_qps: int = TIER4_QPS
    attendee_qpm: int = TIER4_QPM


def _positive(options: Mapping[str, Any], key: str, default: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        number = 0
    else:
        try:
            number = int(value)
        except ValueError:
            number = 0
    if number < 1:
        raise ConfigError(f"expected a positive whole number, got {value!r}", where=f"options.{key}")
    return number


def parse_options(options: Mapping[str, Any], *, account: str | None = None) -> FeishuOptions:
    """Raises: ConfigError: ``request_timeout`` (or ``timeout``) not a positive number, ``attendees``
    not ``all`` or ``window``, an attendee quota not a positive whole number. ValueError:
    ``page_size`` not a whole number (out of range is clamped to 50–1000)."""
    page_size = min(max(int(options.get("page_size", PAGE_SIZE)), MIN_PAGE_SIZE), PAGE_SIZE)
    scope = options.get("attendees", "all")
    if scope not in ATTENDEE_SCOPES:
        raise ConfigError(f"expected one of {', '.join(ATTENDEE_SCOPES)}, got {scope!r}", where="options.attendees")
    return FeishuOptions(
        request_timeout=request_timeout(options, provider="feishu", account=account),
        page_size=page_size,
        attendees=scope,
        attendee_concurrency=_positive(options, "attendee_concurrency", ATTENDEE_CONCURRENCY),
        attendee_qps=_positive(options, "attendee_qps", TIER4_QPS),
        attendee_qpm=_positive(options, "attendee_qpm", TIER4_QPM),
    )
