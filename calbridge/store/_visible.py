"""What the change stream publishes: the visible rows a write touched, before and after it.

A consumer keeps one row per key (account, calendar, id). The visible rows are every row of
``events`` (singles, series, exceptions, and the occurrences a sync stream carries) and every
expanded row of ``occurrences`` that ``events`` does not shadow: not by its id, and not by an
exception or occurrence of its slot (series id, original start). The series view is the visible rows
of kind single, series and exception; the instance view those of kind single, exception and
occurrence. A write publishes the difference of the visible rows it touched, so each key changes at
most once per transaction and an exception that takes an occurrence's place (and often its id) is
one ``Upsert``, never a delete of the id it now holds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Mapping

from ..model import Change, Event
from ._decide import Seen, Slot, diff_views, published
from ._schema import IN_IDS, UNSHADOWED, decode_event

Written = tuple[int, str | None, int | None]  # an events row a write left: (hash, series_id, orig_utc)

# CROSS JOIN keeps the slots the outer loop: SQLite otherwise scans the calendar's occurrences and
# re-reads the JSON array for each one (a page's cost then grew with the mirror).
_BY_SLOT = (
    "SELECT o.id, o.hash FROM json_each(?) AS j CROSS JOIN occurrences AS o ON o.account = ? AND o.calendar_id = ?"
    " AND o.series_id = json_extract(j.value, '$[0]') AND o.orig_utc = json_extract(j.value, '$[1]')"
    f" WHERE {UNSHADOWED}"
)


def cascade_ids(conn: sqlite3.Connection, account: str, calendar_id: str, ids: Collection[str]) -> set[str]:
    """The rows deleting ``ids`` takes with it: the exceptions and occurrences of those series."""
    if not ids:
        return set()
    args = (account, calendar_id, json.dumps(list(ids)))
    out: set[str] = set()
    for table in ("events", "occurrences"):
        out.update(
            r[0]
            for r in conn.execute(
                f"SELECT id FROM {table} WHERE account = ? AND calendar_id = ?"
                " AND series_id IN (SELECT value FROM json_each(?))",
                args,
            )
        )
    return out


def visible(
    conn: sqlite3.Connection,
    account: str,
    calendar_id: str,
    ids: Collection[str],
    slots: Collection[Slot] = (),
    *,
    expanded: bool = True,
    written: Mapping[str, Written] | None = None,
) -> tuple[Seen, set[Slot]]:
    """The visible rows among ``ids``, and the expanded rows at ``slots`` and at the slots the events
    rows among ``ids`` hold (what their change may take or give back); with every slot looked at.
    ``expanded=False``: the calendar holds no expanded occurrences, so only ``events`` is read.
    ``written``: events rows the write is known to have left, not read again (an events row hides
    an expanded one of its id, so neither table is asked about them)."""
    out: Seen = {}
    looked = set(slots)
    if written:
        for i, (h, series_id, orig) in written.items():
            out[i] = (h, "events")
            if series_id is not None and orig is not None:
                looked.add((series_id, orig))
        ids = [i for i in ids if i not in written]
    if ids:
        args = (account, calendar_id, json.dumps(list(ids)))
        sql = f"SELECT id, hash, series_id, orig_utc FROM events WHERE account = ? AND calendar_id = ? AND {IN_IDS}"
        for i, h, series_id, orig in conn.execute(sql, args):
            out[i] = (h, "events")
            if series_id is not None and orig is not None:
                looked.add((series_id, orig))
        if expanded:
            for i, h in conn.execute(
                f"SELECT o.id, o.hash FROM occurrences AS o WHERE o.account = ? AND o.calendar_id = ?"
                f" AND o.{IN_IDS} AND {UNSHADOWED}",
                args,
            ):
                out[i] = (h, "occurrences")
    if expanded and looked:
        for i, h in conn.execute(_BY_SLOT, (json.dumps(sorted(looked)), account, calendar_id)):
            out.setdefault(i, (h, "occurrences"))
    return out, looked


def texts(
    conn: sqlite3.Connection, account: str, calendar_id: str, seen: Mapping[str, tuple[int, str]]
) -> dict[str, str]:
    """The stored JSON of the rows in ``seen``."""
    out: dict[str, str] = {}
    for table in ("events", "occurrences"):
        ids = [i for i, (_, t) in seen.items() if t == table]
        if ids:
            out.update(
                conn.execute(
                    f"SELECT id, json FROM {table} WHERE account = ? AND calendar_id = ? AND {IN_IDS}",
                    (account, calendar_id, json.dumps(ids)),
                ).fetchall()
            )
    return out


class Diff:
    """Before/after bookkeeping of one transaction's visible rows.

    ``known`` holds the events the write put into ``table`` (their published form, so a page's
    upserts are not decoded again); a key whose final write was not an upsert may disappear, so its
    stored JSON is read before the write, for the ``Delete``'s ``previous``.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        account: str,
        calendar_id: str,
        ids: Collection[str],
        slots: Collection[Slot],
        *,
        known: Mapping[str, Event],
        table: str,
    ) -> None:
        self._conn, self._account, self._calendar = conn, account, calendar_id
        self._known, self._table = known, table
        # Only an expansion adds expanded rows, so a calendar without any keeps none through other writes.
        self._expanded = table == "occurrences" or (
            conn.execute(
                "SELECT 1 FROM occurrences WHERE account = ? AND calendar_id = ? LIMIT 1", (account, calendar_id)
            ).fetchone()
            is not None
        )
        self._before, self._slots = visible(conn, account, calendar_id, ids, slots, expanded=self._expanded)
        self._ids = set(ids) | self._before.keys()
        at_risk = {i: v for i, v in self._before.items() if not (v[1] == table and i in known)}
        self._before_json = texts(conn, account, calendar_id, at_risk)

    def changes(self, order: Iterable[str] = (), written: Mapping[str, Written] | None = None) -> list[Change]:
        """The published changes, after the write: page order first, then the rest by id (``written``:
        the events rows the write is known to have left, see :func:`visible`)."""
        acct, cal = self._account, self._calendar
        after, _ = visible(self._conn, acct, cal, self._ids, self._slots, expanded=self._expanded, written=written)
        diff = diff_views(self._before, after, self._known, self._table)
        after_json = texts(self._conn, acct, cal, diff.unknown)
        return published(acct, cal, diff, order=order, before=self._before, known=self._known,
                         after_events={i: decode_event(after_json[i]) for i in diff.unknown},
                         before_events={i: decode_event(self._before_json[i]) for i in diff.gone})  # fmt: skip
