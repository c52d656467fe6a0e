"""What the change stream publishes, for the PostgreSQL store: the visible rows a write touched,
before and after it (the rules are ``calbridge.store._visible``'s; this is their asyncpg form)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from ...model import Change, Event
from .._decide import Seen, Slot, diff_views, published
from .._schema import decode_event
from .._visible import Written
from ._schema import Conn, by_ids

# An occurrences row (as ``o``) no events row hides: not one of its id, not an exception or a synced
# occurrence of its slot ($1, $2: account and calendar).
UNSHADOWED = (
    "NOT EXISTS (SELECT 1 FROM events AS e WHERE e.account = o.account AND e.calendar_id = o.calendar_id"
    " AND e.id = o.id)"
    " AND NOT EXISTS (SELECT 1 FROM events AS e WHERE e.account = o.account AND e.calendar_id = o.calendar_id"
    " AND e.series_id = o.series_id AND e.orig_utc = o.orig_utc AND e.kind IN ('exception', 'occurrence'))"
)
_BY_SLOT = (
    "SELECT o.id, o.hash FROM unnest($3::text[], $4::bigint[]) AS j(sid, orig) JOIN occurrences AS o"
    " ON o.account = $1 AND o.calendar_id = $2 AND o.series_id = j.sid AND o.orig_utc = j.orig"
    f" WHERE {UNSHADOWED}"
)


async def cascade_ids(conn: Conn, account: str, calendar_id: str, ids: Collection[str]) -> set[str]:
    """The rows deleting ``ids`` takes with it: the exceptions and occurrences of those series."""
    if not ids:
        return set()
    out: set[str] = set()
    for table in ("events", "occurrences"):
        rows = await conn.fetch(
            f"SELECT id FROM {table} WHERE account = $1 AND calendar_id = $2 AND series_id = ANY($3::text[])",
            account,
            calendar_id,
            list(ids),
        )
        out.update(r[0] for r in rows)
    return out


async def visible(
    conn: Conn,
    account: str,
    calendar_id: str,
    ids: Collection[str],
    slots: Collection[Slot] = (),
    *,
    expanded: bool = True,
    written: Mapping[str, Written] | None = None,
) -> tuple[Seen, set[Slot]]:
    """See ``calbridge.store._visible.visible``."""
    out: Seen = {}
    looked = set(slots)
    if written:
        for i, (h, series_id, orig) in written.items():
            out[i] = (h, "events")
            if series_id is not None and orig is not None:
                looked.add((series_id, orig))
        ids = [i for i in ids if i not in written]
    if ids:
        args = (account, calendar_id, list(ids))
        for i, h, series_id, orig in await conn.fetch(by_ids("events", "o.id, o.hash, o.series_id, o.orig_utc"), *args):
            out[i] = (h, "events")
            if series_id is not None and orig is not None:
                looked.add((series_id, orig))
        if expanded:
            for i, h in await conn.fetch(by_ids("occurrences", "o.id, o.hash", f" AND {UNSHADOWED}"), *args):
                out[i] = (h, "occurrences")
    if expanded and looked:
        ordered = sorted(looked)
        rows = await conn.fetch(_BY_SLOT, account, calendar_id, [s for s, _ in ordered], [o for _, o in ordered])
        for i, h in rows:
            out.setdefault(i, (h, "occurrences"))
    return out, looked


async def texts(conn: Conn, account: str, calendar_id: str, seen: Mapping[str, tuple[int, str]]) -> dict[str, str]:
    """The stored JSON of the rows in ``seen``."""
    out: dict[str, str] = {}
    for table in ("events", "occurrences"):
        ids = [i for i, (_, t) in seen.items() if t == table]
        if ids:
            rows = await conn.fetch(by_ids(table, "o.id, o.json"), account, calendar_id, ids)
            out.update((r[0], r[1]) for r in rows)
    return out


class Diff:
    """Before/after bookkeeping of one transaction's visible rows (``calbridge.store._visible.Diff``);
    built by :meth:`start` before the write, read by :meth:`changes` after it."""

    def __init__(self, conn: Conn, account: str, calendar_id: str, known: Mapping[str, Event], table: str) -> None:
        self._conn, self._account, self._calendar = conn, account, calendar_id
        self._known, self._table = known, table
        self._expanded = True
        self._before: Seen = {}
        self._slots: set[Slot] = set()
        self._ids: set[str] = set()
        self._before_json: dict[str, str] = {}

    @classmethod
    async def start(
        cls,
        conn: Conn,
        account: str,
        calendar_id: str,
        ids: Collection[str],
        slots: Collection[Slot],
        *,
        known: Mapping[str, Event],
        table: str,
    ) -> Diff:
        self = cls(conn, account, calendar_id, known, table)
        # Only an expansion adds expanded rows, so a calendar without any keeps none through other writes.
        self._expanded = table == "occurrences" or (
            await conn.fetchval(
                "SELECT 1 FROM occurrences WHERE account = $1 AND calendar_id = $2 LIMIT 1", account, calendar_id
            )
            is not None
        )
        self._before, self._slots = await visible(conn, account, calendar_id, ids, slots, expanded=self._expanded)
        self._ids = set(ids) | self._before.keys()
        at_risk = {i: v for i, v in self._before.items() if not (v[1] == table and i in known)}
        self._before_json = await texts(conn, account, calendar_id, at_risk)
        return self

    async def changes(self, order: Iterable[str] = (), written: Mapping[str, Written] | None = None) -> list[Change]:
        """The published changes, after the write: page order first, then the rest by id."""
        acct, cal = self._account, self._calendar
        after, _ = await visible(
            self._conn, acct, cal, self._ids, self._slots, expanded=self._expanded, written=written
        )
        diff = diff_views(self._before, after, self._known, self._table)
        after_json = await texts(self._conn, acct, cal, diff.unknown)
        return published(acct, cal, diff, order=order, before=self._before, known=self._known,
                         after_events={i: decode_event(after_json[i]) for i in diff.unknown},
                         before_events={i: decode_event(self._before_json[i]) for i in diff.gone})  # fmt: skip
