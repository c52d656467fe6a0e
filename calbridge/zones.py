"""Canonical IANA zone names from whatever a provider sends.

- ``UTC``, ``Etc/UTC``, ``GMT``, ``Z`` ... → ``UTC``;
- backward links resolved from the tz database's own link table (``tzdata.zi`` shipped by the
  ``tzdata`` package), e.g. ``Asia/Calcutta`` → ``Asia/Kolkata``;
- Windows names (Graph) mapped through CLDR's windowsZones table as shipped by ``tzlocal``,
  e.g. ``Pacific Standard Time`` → ``America/Los_Angeles``;
- anything else unknown → ``None`` (the caller falls back to UTC instants and says so).
"""

from __future__ import annotations

import functools
import importlib.resources
import zoneinfo

from tzlocal.windows_tz import win_tz

_UTC_NAMES = frozenset(
    name.lower()
    for name in (
        "UTC", "Etc/UTC", "Etc/UCT", "UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu", "Z",
        "GMT", "Etc/GMT", "GMT0", "Etc/GMT0", "GMT+0", "Etc/GMT+0", "GMT-0", "Etc/GMT-0",
        "Greenwich", "Etc/Greenwich", "tzone://Microsoft/Utc",
        "Coordinated Universal Time", "UTC+00:00", "GMT Standard Time (UTC)",
    )
)  # fmt: skip


@functools.cache
def _links() -> dict[str, str]:
    """link name → target, from tzdata.zi (``L TARGET LINK`` lines)."""
    text = importlib.resources.files("tzdata").joinpath("zoneinfo", "tzdata.zi").read_text("utf-8")
    links: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("L "):
            _, target, link = line.split()[:3]
            links[link] = target
    return links


@functools.cache
def _lower_index() -> dict[str, str]:
    names = {n.lower(): n for n in zoneinfo.available_timezones()}
    names.update({k.lower(): v for k, v in win_tz.items()})
    return names


@functools.cache
def canonical_zone(name: str | None) -> str | None:
    """The canonical IANA name for ``name`` or ``None`` when it is unknown or only an offset."""
    if not name:
        return None
    name = name.strip()
    if name.lower() in _UTC_NAMES:
        return "UTC"
    if name in win_tz:
        target = win_tz[name]
    elif name in zoneinfo.available_timezones():
        target = name
    else:
        found = _lower_index().get(name.lower())
        if found is None:
            return None
        target = win_tz.get(found, found)
    seen = 0
    links = _links()
    while target in links and seen < 8:
        target = links[target]
        seen += 1
    if target.lower() in _UTC_NAMES:
        return "UTC"
    return target


@functools.cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    """A cached ZoneInfo (loading one reads a file: do it once, not per event)."""
    return zoneinfo.ZoneInfo(name)
