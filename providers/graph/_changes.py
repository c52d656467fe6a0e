"""A decoded Graph delta page → changes and quarantined items (pure; no I/O).

The provider fetches the series masters :func:`master_ids` names before :func:`changes_from`
converts the page with :func:`~._convert.convert_event`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from msgspec import UNSET

from calbridge.errors import MalformedEvent
from calbridge.model import Change, Delete, Event, EventKey, Upsert
from calbridge.provider import Quarantined
from calbridge.toolkit import Coercions, DecodedPage

from ._convert import convert_event
from ._wire import EventsPage, GEvent

logger = logging.getLogger(__name__)


def master_ids(page: DecodedPage[EventsPage, GEvent]) -> list[str]:
    """The series masters a delta page's occurrences and exceptions need, in order, once each."""
    wanted = [ev.series_master_id for ev in page.items if ev.removed is UNSET and ev.series_master_id]
    return list(dict.fromkeys(wanted))


def changes_from(
    page: DecodedPage[EventsPage, GEvent],
    *,
    account: str,
    calendar_id: str,
    masters: Mapping[str, Event | None],
    errors: Mapping[str, str],
    me: str | None = None,
    zones: Mapping[str, str | None] | None = None,
    coerced: Coercions | None = None,
) -> tuple[list[Change], list[Quarantined]]:
    """A delta page's items as changes; what cannot be normalized is quarantined with its JSON text
    (after the items that did not decode at all, see :meth:`~calbridge.toolkit.DecodedPage.quarantine`).

    ``masters`` holds the normalized series master (None: unavailable, see ``errors``) of every id
    :func:`master_ids` named; ``me`` is the mailbox's address lowercased and ``zones`` each
    master's own zone (see :func:`convert_event`); ``coerced`` counts what was read as the neutral value.
    """
    changes: list[Change] = []
    quarantined = list(page.quarantined)
    for k, ev in enumerate(page.items):  # one loop, no call per item: this is the bench's hot path
        event_id = ev.id
        if not event_id:
            quarantined.append(page.quarantine(k, "item without an id"))
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
                quarantined.append(page.quarantine(k, f"series master {master_id}: {reason}", event_id=event_id))
                continue
        try:
            zone = zones.get(master_id) if zones is not None and master_id else None
            event = convert_event(ev, account=account, calendar_id=calendar_id, master=master, me=me, series_zone=zone,
                                  coerced=coerced)  # fmt: skip
            changes.append(Upsert(event=event))
        except MalformedEvent as exc:
            logger.warning("graph account %s: quarantined event %s: %s", account, event_id, exc)
            quarantined.append(page.quarantine(k, str(exc), event_id=event_id))
    return changes, quarantined
