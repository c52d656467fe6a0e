"""A decoded Graph delta page (see ``_wire``) → changes and quarantined items (pure; no I/O).

The provider fetches the series masters :func:`master_ids` names between the two calls.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from msgspec import UNSET

from calbridge.errors import MalformedEvent
from calbridge.model import Change, Delete, Event, EventKey, Upsert
from calbridge.provider import Quarantined

from ._convert import convert_event
from ._wire import DecodedPage

logger = logging.getLogger("calbridge_providers.graph._convert")


def master_ids(page: DecodedPage) -> list[str]:
    """The series masters a delta page's occurrences and exceptions need, in order, once each."""
    wanted = [ev.series_master_id for ev in page.events or () if ev.removed is UNSET and ev.series_master_id]
    return list(dict.fromkeys(wanted))


def changes_from(
    page: DecodedPage,
    *,
    account: str,
    calendar_id: str,
    masters: Mapping[str, Event | None],
    errors: Mapping[str, str],
    me: str | None = None,
    zones: Mapping[str, str | None] | None = None,
) -> tuple[list[Change], list[Quarantined]]:
    """A delta page's items as changes; what cannot be normalized is quarantined with its JSON text.

    ``masters`` holds the normalized series master (None: unavailable, see ``errors``) of every id
    :func:`master_ids` named; ``me`` is the mailbox's address lowercased and ``zones`` each
    master's own zone (see ``convert_event``).
    """
    changes: list[Change] = []
    quarantined = list(page.quarantined)
    for k, ev in enumerate(page.events or ()):
        event_id = ev.id
        if not event_id:
            quarantined.append(Quarantined(event_id=None, error="item without an id", payload=page.payload(k)))
            continue
        if ev.removed is not UNSET:
            changes.append(Delete(key=EventKey(account=account, calendar_id=calendar_id, id=event_id)))
            continue
        master_id = ev.series_master_id
        master = None
        if master_id:
            master = masters.get(master_id)
            if master is None:
                reason = errors.get(master_id, "series master unavailable")
                quarantined.append(Quarantined(event_id=event_id, error=f"series master {master_id}: {reason}",
                                               payload=page.payload(k)))  # fmt: skip
                continue
        try:
            zone = zones.get(master_id) if zones is not None and master_id else None
            event = convert_event(ev, account=account, calendar_id=calendar_id, master=master, me=me, series_zone=zone)
            changes.append(Upsert(event=event))
        except MalformedEvent as exc:
            logger.warning("graph account %s: quarantined event %s: %s", account, event_id, exc)
            quarantined.append(Quarantined(event_id=event_id, error=str(exc), payload=page.payload(k)))
    return changes, quarantined
