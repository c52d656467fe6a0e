"""The decisions both stores take the same way, as pure functions over what they read: which upserted
rows to write, which only to re-mark; which slots a page takes; what a write publishes, from the
visible rows before and after it. SQLite and PostgreSQL only read and write around them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from .. import planner
from ..model import Change, Delete, Event, EventKey, Kind, Upsert
from ._schema import HASH, Row, ts

Slot = tuple[str, int]  # (series id, original start in Unix seconds)
Seen = dict[str, tuple[int, str]]  # id -> (content hash, table holding the visible row)

_SLOTTED = (Kind.EXCEPTION, Kind.OCCURRENCE)


@attrs.frozen
class UpsertPlan:
    """An upsert run against what ``events`` holds: rows to write (with the mark), ids whose row is
    unchanged but whose mark moves, and series whose occurrences went stale."""

    rows: list[tuple[object, ...]]
    remark: list[str]
    dirty: set[str]


def plan_upserts(
    run: Mapping[str, tuple[Upsert, Row]], stored: Mapping[str, tuple[int, int, str]], mark: int
) -> UpsertPlan:
    """``stored``: id → (hash, mark, kind) of the rows ``events`` holds among the run's ids."""
    rows: list[tuple[object, ...]] = []
    remark: list[str] = []
    dirty: set[str] = set()
    for event_id, (change, row) in run.items():
        old = stored.get(event_id)
        if old is None or old[0] != row[HASH]:
            rows.append((*row, mark))
            stale = planner.stale_after_upsert(change.event, None if old is None else Kind(old[2]))
            if stale is not None:
                dirty.add(stale)
        elif old[1] != mark:
            remark.append(event_id)
    return UpsertPlan(rows, remark, dirty)


def page_slots(changes: Sequence[Change]) -> set[Slot]:
    """The slots the page's exceptions (and synced occurrences) take."""
    out: set[Slot] = set()
    for change in changes:
        if isinstance(change, Upsert):
            ev = change.event
            if ev.series_id is not None and ev.original_start is not None and ev.kind in _SLOTTED:
                out.add((ev.series_id, ts(ev.original_start.utc())))
    return out


@attrs.frozen
class ViewDiff:
    """The visible rows a write changed: ``changed`` (now held, new or different), ``gone``, and
    ``unknown``, the changed ids whose event the write did not hand in (their JSON must be read)."""

    changed: Seen
    gone: set[str]
    unknown: Seen


def diff_views(before: Seen, after: Seen, known: Mapping[str, Event], table: str) -> ViewDiff:
    changed = {i: v for i, v in after.items() if before.get(i, (None,))[0] != v[0]}
    unknown = {i: v for i, v in changed.items() if not (v[1] == table and i in known)}
    return ViewDiff(changed, before.keys() - after.keys(), unknown)


def published(
    account: str,
    calendar_id: str,
    diff: ViewDiff,
    *,
    order: Iterable[str],
    before: Seen,
    known: Mapping[str, Event],
    after_events: Mapping[str, Event],
    before_events: Mapping[str, Event],
) -> list[Change]:
    """The changes a write publishes: page order first, then the rest by id. ``after_events`` are the
    decoded ``unknown`` rows; ``before_events`` what each gone key held."""
    changed, gone = diff.changed, diff.gone
    ranked = list(dict.fromkeys([*(i for i in order if i in changed or i in gone), *sorted(changed.keys() | gone)]))
    out: list[Change] = []
    for i in ranked:
        if i in changed:
            event = after_events[i] if i in diff.unknown else known[i]
            out.append(Upsert(event=event, created=i not in before))
        else:
            key = EventKey(account=account, calendar_id=calendar_id, id=i)
            out.append(Delete(key=key, previous=before_events[i]))
    return out
