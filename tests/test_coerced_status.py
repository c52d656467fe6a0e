"""``calendar_status.coerced``: each round's counts of values read as the neutral value, added up by
field and shown by ``status`` (issue 12, item 11); a store of the schema before keeps working."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from calbridge._run import CalendarResult
from calbridge.store import _schema
from calbridge.store.sqlite import SqliteStore
from calbridge.testing._store_build import T0, state

from ._postgres import AnyStore

A, CAL = "acct", "cal"


async def test_rounds_add_their_counts_by_field(any_store: AnyStore) -> None:
    async with any_store.open() as store:
        await store.record_result(A, CAL, at=T0, error=None, state=state(), coerced={"visibility": 2})
        await store.record_result(A, CAL, at=T0 + dt.timedelta(hours=1), error="TransientError: 503",
                                  coerced={"visibility": 1, "title": 1})  # fmt: skip
        await store.record_result(A, CAL, at=T0 + dt.timedelta(hours=2), error=None)  # a quiet round
        await store.record_result(A, "other", at=T0, error=None)
        rows = {r.calendar_id: r for r in await store.status()}
    assert rows[CAL].coerced == {"visibility": 3, "title": 1} and rows[CAL].coerced_total == 4
    assert rows[CAL].last_success == T0 + dt.timedelta(hours=2) and rows[CAL].last_error == "TransientError: 503"
    assert rows["other"].coerced == {}


async def test_a_store_of_the_schema_before_migrates_with_nothing_counted(tmp_path: Path) -> None:
    # SQLite-only: it builds a file of SQLite's previous schema version by hand.
    path = tmp_path / "m.db"
    conn = sqlite3.connect(path, isolation_level=None)
    _schema.migrate(conn, "m", _schema.MIGRATIONS[:-1])
    conn.execute("INSERT INTO calendar_status (account, calendar_id, last_success) VALUES (?, ?, ?)",
                 (A, CAL, T0.isoformat()))  # fmt: skip
    conn.close()
    async with SqliteStore(path) as store:
        (row,) = await store.status()
        assert row.coerced == {} and row.last_success == T0
        await store.record_result(A, CAL, at=T0, error=None, coerced={"show_as": 1})
        (row,) = await store.status()
    assert row.coerced == {"show_as": 1}


def test_a_result_says_which_fields_are_new_in_its_round() -> None:
    result = CalendarResult(account=A, calendar_id=CAL)
    assert result.add_coerced({"title": 1, "visibility": 2}) == ["title", "visibility"]
    assert result.add_coerced({"visibility": 1, "response": 1}) == ["response"]  # logged once per field
    assert result.coerced == {"title": 1, "visibility": 3, "response": 1} and result.coerced_total == 5
