"""What the CLI prints: jsonl and tables for people, sync progress and summaries (rich)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .._run import CalendarResult, SyncReport
from ..export import event_to_dict
from ..model import Calendar, Event, When
from ..store.base import CalendarStatus


def _console() -> Console:
    # Piped output is read by programs and grep: no folding at 80 columns.
    return Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else 400)


class Progress:
    """A live line per calendar on a terminal; silent when stdout is not one."""

    def __init__(self, *, enabled: bool) -> None:
        self._enabled = enabled
        self._bar: RichProgress | None = None
        self._tasks: dict[tuple[str, str], Any] = {}

    def __enter__(self) -> Progress:
        if self._enabled:
            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=_console(),
                transient=True,
            )
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self._tasks.clear()

    def hook(self, account: str, kind: str, info: dict[str, Any]) -> None:
        if self._bar is None:
            return
        if kind == "wait":
            self._bar.console.print(f"{account}: {info['error']}, waiting {info['delay']:.1f}s")
            return
        result: CalendarResult = info["result"]
        key = (account, info["calendar"])
        text = f"{account}/{info['calendar']}: {result.pages} pages, {result.upserts} changed, {result.deletes} deleted"
        if key not in self._tasks:
            self._tasks[key] = self._bar.add_task(text, total=None)
        self._bar.update(self._tasks[key], description=text)


def print_report(report: SyncReport) -> None:
    out = _console()
    for r in sorted(report.calendars, key=lambda c: (c.account, c.calendar_id)):
        what = "full" if r.full else "incremental"
        # Exactly what was published: events are singles, series and exceptions; occurrences are the
        # expanded ones, whoever produced them (Graph's sync stream or an expansion).
        line = (
            f"{r.account}/{r.calendar_id}: {what}, {r.pages} pages; events {r.upserts} upserted, {r.deletes} deleted;"
            f" occurrences {r.occurrences} upserted, {r.occurrences_deleted} deleted"
        )
        if r.expired:
            line += " (cursor expired: full listing and sweep)"
        if r.quarantined:
            line += f", {r.quarantined} quarantined (see `calbridge status`)"
        if r.sweep_held is not None:
            cand, total = r.sweep_held
            line += (
                f"; SWEEP HELD: it would remove {cand} of {total} events — check the account's access, then "
                "rerun with --allow-mass-delete if that is right"
            )
        if r.error:
            line += f"; FAILED: {r.error}"
        out.print(line, markup=False)
    failures = report.failures
    if failures:
        names = ", ".join(f"{f.account}/{f.calendar_id}" for f in failures)
        out.print(f"{len(failures)} of {len(report.calendars)} calendars did not sync cleanly: {names}", markup=False)
    else:
        out.print(f"{len(report.calendars)} calendars synced", markup=False)


def when_text(w: When) -> str:
    if w.date is not None:
        return w.date.isoformat()
    assert w.instant is not None
    return w.instant.strftime("%Y-%m-%d %H:%M") + "Z"


def print_events(events: Sequence[Event], fmt: str) -> None:
    if fmt == "jsonl":
        write = sys.stdout.write
        for e in events:
            write(json.dumps(event_to_dict(e), ensure_ascii=False) + "\n")
        return
    table = Table(show_lines=False, header_style="bold")
    for col in ("start", "end", "title", "kind", "status", "calendar", "id"):
        table.add_column(col, overflow="fold")
    for e in events:
        table.add_row(
            when_text(e.start),
            when_text(e.end),
            e.title or "",
            e.kind.value,
            e.status.value,
            f"{e.account}/{e.calendar_id}",
            e.id,
        )
    out = _console()
    out.print(table)
    out.print(f"{len(events)} events", markup=False)


def print_status(rows: Sequence[CalendarStatus]) -> None:
    table = Table(header_style="bold")
    for col in ("calendar", "last success", "last error", "events", "occurrences", "quarantined"):
        table.add_column(col, overflow="fold")
    for r in rows:
        err = r.last_error or ""
        if err and r.last_success and r.last_error_at and r.last_error_at < r.last_success:
            err = ""  # an older failure, since recovered
        if r.sweep_held:
            err = (err + "; " if err else "") + "sweep held (sync --allow-mass-delete)"
        table.add_row(
            f"{r.account}/{r.calendar_id}",
            r.last_success.strftime("%Y-%m-%d %H:%M:%SZ") if r.last_success else "never",
            err,
            str(r.events),
            str(r.occurrences),
            str(r.quarantined),
        )
    _console().print(table)


def print_calendars(account: str, calendars: Sequence[Calendar]) -> None:
    table = Table(title=account, header_style="bold")
    for col in ("id", "name", "primary", "timezone", "access"):
        table.add_column(col, overflow="fold")
    for c in calendars:
        table.add_row(c.id, c.name or "", "yes" if c.primary else "", c.timezone or "", c.access or "")
    _console().print(table)
