"""What the CLI prints: jsonl and tables for people, sync progress and summaries (rich)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .._run import CalendarResult, SyncReport
from ..export import event_to_dict
from ..lease import Worker
from ..model import Calendar, Event, When
from ..store.base import CalendarStatus
from ..toolkit.scrub import scrub

logger = logging.getLogger(__name__)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit 1 itself; main() ends a closed pipe the same way for every format.
        raise BrokenPipeError


def _console() -> Console:
    # Piped output is read by programs and grep: no folding at 80 columns.
    return _Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else 400)


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
        """The engine's progress hook: ``wait`` (a retry), ``page``, ``expand`` (series done/total), ``done``."""
        if kind == "wait":
            if self._bar is not None:
                self._bar.console.print(f"{account}: {info['error']}, waiting {info['delay']:.1f}s")
            return
        result: CalendarResult = info["result"]
        key = (account, info["calendar"])
        # The summary's words (print_report), so the last progress line and the summary agree.
        text = f"{account}/{info['calendar']}: {result.pages} pages, {result.upserts} upserted"
        text += f", {result.deletes} deleted"
        if kind == "expand":
            text += f", expanding {info['done']}/{info['total']} series, {result.occurrences} occurrences refreshed"
        if kind in ("page", "expand"):
            logger.debug("%s", text)  # `sync -v`: one line per committed page and expansion step
        if self._bar is None:
            return
        if key not in self._tasks:
            self._tasks[key] = self._bar.add_task(text, total=None)
        self._bar.update(self._tasks[key], description=text)


def print_report(report: SyncReport) -> None:
    out = _console()
    for r in sorted(report.calendars, key=lambda c: (c.account, c.calendar_id)):
        if r.held_by is not None:  # a store shared by workers: a live worker syncs it
            out.print(f"{r.account}/{r.calendar_id}: held by {r.held_by}; skipped", markup=False)
            continue
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
        if r.coerced:
            line += f", {r.coerced_total} coerced (see `calbridge status`)"
        if r.sweep_held is not None:
            cand, total = r.sweep_held
            line += (
                f"; SWEEP HELD: it would remove {cand} of {total} events — check the account's access, then "
                "rerun with --allow-mass-delete if that is right"
            )
        if r.lease_lost:
            line += "; lease lost to another worker mid-round (it goes on from what was committed)"
        if r.error:
            line += f"; FAILED: {scrub(r.error)}"
        out.print(line, markup=False)
    failures = report.failures
    if failures:
        names = ", ".join(f"{f.account}/{f.calendar_id}" for f in failures)
        out.print(f"{len(failures)} of {len(report.calendars)} calendars did not sync cleanly: {names}", markup=False)
    else:
        held = sum(1 for r in report.calendars if r.held_by is not None)
        synced = f"{len(report.calendars) - held} calendars synced"
        out.print(synced + (f", {held} held by other workers" if held else ""), markup=False)


def when_text(w: When, tz: dt.tzinfo = dt.UTC) -> str:
    """A time for people: the date of an all-day time; an instant in ``tz`` to the minute (``Z`` in UTC)."""
    if w.date is not None:
        return w.date.isoformat()
    assert w.instant is not None
    if tz is dt.UTC:
        return w.instant.strftime("%Y-%m-%d %H:%M") + "Z"
    return w.instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")


# The table's columns, and which go first as the terminal narrows: the start and the title stay
# (the title shortened with an ellipsis); no cell is ever folded mid-word.
_COLUMNS = ("start", "end", "title", "kind", "status", "calendar", "id")
_DROP_FIRST = ("id", "calendar", "status", "end", "kind")
_TITLE_MIN = 12


def _fit(widths: dict[str, int], room: int) -> dict[str, int]:
    """The columns that fit in ``room`` characters, with their widths (a rich table spends 3 per column + 1)."""
    kept = list(_COLUMNS)

    def need(cols: list[str]) -> int:
        return sum(min(widths[c], _TITLE_MIN) if c == "title" else widths[c] for c in cols) + 3 * len(cols) + 1

    for victim in _DROP_FIRST:
        if need(kept) <= room:
            break
        kept.remove(victim)
    fixed = sum(widths[c] for c in kept if c != "title") + 3 * len(kept) + 1
    out = {c: widths[c] for c in kept}
    out["title"] = max(1, min(widths["title"], room - fixed))
    return out


_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Zulu", "Zulu", "Universal", "Etc/Universal"})


def local_zone() -> dt.tzinfo:
    """This machine's zone (tzlocal: ``TZ``, /etc/localtime, ...); UTC when it is UTC or unreadable."""
    import tzlocal

    try:
        zone: dt.tzinfo = tzlocal.get_localzone()
    except Exception:  # a broken local setting is no reason to fail a listing
        return dt.UTC
    return dt.UTC if str(getattr(zone, "key", zone)) in _UTC_NAMES else zone


def _zone_name(tz: dt.tzinfo) -> str:
    return "UTC" if tz is dt.UTC else str(getattr(tz, "key", None) or tz)


def print_events(events: Sequence[Event], fmt: str, *, tz: dt.tzinfo | None = None) -> None:
    """jsonl (the exported form, always UTC) or a table for people, in ``tz`` (default: the local zone)."""
    if fmt == "jsonl":
        write = sys.stdout.write
        for e in events:
            write(json.dumps(event_to_dict(e), ensure_ascii=False) + "\n")
        return
    if tz is None:
        tz = local_zone()
    rows = [
        {
            "start": when_text(e.start, tz),
            "end": when_text(e.end, tz),
            "title": e.title or "",
            "kind": e.kind.value,
            "status": e.status.value,
            "calendar": f"{e.account}/{e.calendar_id}",
            "id": e.id,
        }
        for e in events
    ]
    out = _console()
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in _COLUMNS}
    fit = _fit(widths, out.width)
    table = Table(show_lines=False, header_style="bold")
    for col in _COLUMNS:
        if col in fit:
            table.add_column(col, width=fit[col], no_wrap=True, overflow="ellipsis")
    for r in rows:
        table.add_row(*(r[c] for c in _COLUMNS if c in fit))
    out.print(table)
    out.print(f"{len(events)} events, times in {_zone_name(tz)}", markup=False)


def _last_success(r: CalendarStatus, syncing: str | None) -> str:
    """A round with committed pages and no end is running now (a sync holds the store, or a worker
    the calendar) or was killed."""
    if r.round is not None or r.sweep_pending:
        what = f"{r.round.value} round" if r.round is not None else "sweep"
        if r.holder is not None and r.lease_expires is not None and r.lease_expires > dt.datetime.now(dt.UTC):
            return f"{what} in progress (worker {r.holder})"
        if syncing:
            return f"{what} in progress (pid {syncing})"
        return f"{what} unfinished (interrupted); the next sync resumes it"
    return r.last_success.strftime("%Y-%m-%d %H:%M:%SZ") if r.last_success else "never"


def _backoff(r: CalendarStatus) -> str:
    """The service's backoff of a failing calendar: failures in a row and the next attempt."""
    if not r.failures:
        return ""
    text = f"{r.failures} failure{'s' if r.failures != 1 else ''}"
    if r.next_attempt is not None:
        text += ", next attempt " + r.next_attempt.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return text


def print_status(
    rows: Sequence[CalendarStatus],
    *,
    syncing: str | None = None,
    polled: str | None = None,
    workers: Sequence[Worker] | None = None,
) -> None:
    """The status table; ``syncing`` is the pid of a sync holding the store now, if any; ``polled`` is
    what the push column says of a calendar the service recorded nothing for (no ``public_url``);
    ``workers`` (a store shared by workers) the workers alive, with a ``held by`` column."""
    table = Table(header_style="bold")
    columns = ["calendar", "last success", "last error", "backoff", "push", "events", "occurrences", "coerced",
               "quarantined"]  # fmt: skip
    fleet = workers is not None
    if fleet:
        columns.insert(1, "held by")
    for col in columns:
        table.add_column(col, overflow="fold")
    for r in rows:
        err = scrub(r.last_error or "")  # stored scrubbed; a store written by an older calbridge may not be
        if err and r.last_success and r.last_error_at and r.last_error_at < r.last_success:
            err = ""  # an older failure, since recovered
        if r.sweep_held:
            err = (err + "; " if err else "") + "sweep held (sync --allow-mass-delete)"
        cells = [
            f"{r.account}/{r.calendar_id}",
            _last_success(r, syncing),
            err,
            _backoff(r),
            r.push or polled or "",
            str(r.events),
            str(r.occurrences),
            _coerced(r.coerced),
            str(r.quarantined),
        ]
        if fleet:
            cells.insert(1, _held_by(r))
        table.add_row(*cells)
    _console().print(table)
    if workers is not None:
        names = ", ".join(f"{w.name} (until {_utc(w.expires)})" for w in workers)
        alive = f"{len(workers)} worker{'s' if len(workers) != 1 else ''} alive"
        _console().print(f"{alive}: {names}" if workers else "no worker alive", markup=False)


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _held_by(r: CalendarStatus) -> str:
    """``w1 until 2026-12-03 08:15:02Z``; an expired lease is one the next claim takes."""
    if r.holder is None or r.lease_expires is None:
        return ""
    lapsed = " (lapsed)" if r.lease_expires <= dt.datetime.now(dt.UTC) else ""
    return f"{r.holder} until {_utc(r.lease_expires)}{lapsed}"


def _coerced(counts: Mapping[str, int]) -> str:
    """``3 (title 1, visibility 2)``: values read as the schema's neutral value, by field."""
    total = sum(counts.values())
    if not total:
        return "0"
    return f"{total} ({', '.join(f'{field} {n}' for field, n in sorted(counts.items()))})"


def print_calendars(account: str, calendars: Sequence[Calendar]) -> None:
    table = Table(title=account, header_style="bold")
    for col in ("id", "name", "primary", "timezone", "access"):
        table.add_column(col, overflow="fold")
    for c in calendars:
        table.add_row(c.id, c.name or "", "yes" if c.primary else "", c.timezone or "", c.access or "")
    _console().print(table)
