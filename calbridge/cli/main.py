"""``calbridge``: the command line (see the contract for commands and exit codes).

Exit codes: 0 success; 1 a calendar or account failed, no store yet, or a store that cannot be used;
2 bad config or arguments (or a missing dependency); 141 (128 + SIGPIPE) the reader of stdout left.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import sys
import zoneinfo
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..config import Config, load_config
from ..errors import CalbridgeError, ConfigError, MissingDependency, StoreBusy, StoreError
from ..export import parse_instant
from ..lease import LeaseStore
from ..model import Window
from ..registry import default_registry
from ..toolkit.scrub import ScrubFilter, scrub
from . import _changes, _output, _run

if TYPE_CHECKING:
    from ..store._open import StoreHandle
    from ..store.base import MirrorReader


_SCRUB = ScrubFilter()  # one instance: adding it again (main() run twice in a process) is a no-op


class UsageError(Exception):
    """Bad arguments: exit 2 with one line."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file (default ./calbridge.yaml)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log (never tokens)")
    p = argparse.ArgumentParser(prog="calbridge", description="Mirror Google, Graph and Feishu calendars.")
    p.add_argument("-c", "--config", default="calbridge.yaml", help="config file (default ./calbridge.yaml)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens (never tokens)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("sync", parents=[common], help="one sync round of every configured calendar")
    s.add_argument("--account", help="only this account")
    s.add_argument("--full", action="store_true", help="full listing even where a cursor is stored")
    s.add_argument("--allow-mass-delete", action="store_true", help="let a sweep remove more than half a mirror")
    s.add_argument("--no-wait", action="store_true", help="fail at once if another sync holds the store")

    e = sub.add_parser("events", parents=[common], help="print what the local mirror holds (no network)")
    e.add_argument("--account")
    e.add_argument("--calendar")
    e.add_argument("--from", dest="start", help="RFC 3339 instant, or a date (its midnight UTC)")
    e.add_argument(
        "--to", dest="end", help="RFC 3339 instant, or a date (exclusive: its midnight UTC, so the day itself is out)"
    )
    e.add_argument("--expand", action="store_true", help="the instance view: one line per happening")
    e.add_argument("--include-cancelled", action="store_true")
    e.add_argument("--format", choices=["jsonl", "table"], help="default: table on a terminal, else jsonl")
    e.add_argument("--tz", metavar="ZONE", help="the table's time zone (default: this machine's; UTC: as stored)")

    sub.add_parser("calendars", parents=[common], help="the calendars each account can see (network)")
    sub.add_parser("status", parents=[common], help="per calendar: last sync, last error, counts")
    sub.add_parser("check-config", parents=[common], help="validate the config and its plugins (no network)")

    _changes.add_parser(sub, common)

    m = sub.add_parser("emulate", parents=[common], help="serve the provider emulators on loopback")
    m.add_argument("--port", type=int, default=0, help="first port (default: any free ports)")
    m.add_argument("--write-config", metavar="FILE", help="where to write the config (default ./calbridge.yaml)")
    m.add_argument("--seed", type=int, default=0, metavar="N", help="N more events per emulator, some of them series")
    sub.add_parser("demo", parents=[common], help="the whole loop against the emulators, nothing to set up")
    _run.add_parser(sub, common)
    return p


def now() -> dt.datetime:
    """The current time; ``CALBRIDGE_NOW`` (RFC 3339) pins it for tests and reproducible demos."""
    pinned = os.environ.get("CALBRIDGE_NOW")
    return parse_instant(pinned) if pinned else dt.datetime.now(dt.UTC)


def parse_time(text: str, flag: str) -> dt.datetime:
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)
        return parse_instant(text)
    except ValueError:
        raise UsageError(f"{flag}: not an RFC 3339 instant or a date: {text!r}") from None


def _config(args: argparse.Namespace, *, resolve_auth: bool) -> Config:
    return load_config(args.config, registry=default_registry, resolve_auth=resolve_auth)


async def cmd_sync(args: argparse.Namespace) -> int:
    from ..engine import SyncEngine
    from ..store import open_store

    config = _config(args, resolve_auth=True)
    if args.account:
        config.account(args.account)
    progress = _output.Progress(enabled=sys.stdout.isatty())
    async with (
        open_store(config) as store,
        SyncEngine(
            config, store, clock=now, allow_mass_delete=args.allow_mass_delete, progress=progress.hook
        ) as engine,
    ):
        try:
            with progress:
                report = await engine.sync(account=args.account, full=args.full, lock_wait=0)
        except StoreBusy as exc:
            if args.no_wait:
                print(f"calbridge: {scrub(str(exc))}", file=sys.stderr)
                return 1
            print(f"calbridge: {scrub(str(exc))}; waiting for it to finish…", file=sys.stderr)
            with progress:
                report = await engine.sync(account=args.account, full=args.full, lock_wait=None)
    _output.print_report(report)
    return 0 if report.ok else 1


async def cmd_events(args: argparse.Namespace) -> int:
    config = _config(args, resolve_auth=False)
    if args.account:
        config.account(args.account)
    start = parse_time(args.start, "--from") if args.start else None
    end = parse_time(args.end, "--to") if args.end else None
    if args.expand and (start is None or end is None):
        # Exactly [now - past, now + future): the expansion window is day-aligned, the query is not.
        at = now().replace(microsecond=0)
        settings = config.settings
        default = Window(start=at - settings.window_past, end=at + settings.window_future)
        span = default.end - default.start
        if start is None:
            start = default.start if end is None else end - span
        if end is None:
            end = start + span if args.start else default.end
    window = None
    if start is not None or end is not None:
        lo = start or dt.datetime(1, 1, 2, tzinfo=dt.UTC)
        hi = end or dt.datetime(9999, 12, 30, tzinfo=dt.UTC)
        if hi < lo:
            raise UsageError("--to is before --from")
        window = Window(start=lo, end=hi)
    tz = _zone(args.tz)
    store = _reader(config)
    if store is None:
        return 1
    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    view = {
        "account": args.account,
        "calendar_id": args.calendar,
        "window": window,
        "expand": args.expand,
        "include_cancelled": args.include_cancelled,
    }
    async with store:
        if args.calendar:
            await _check_calendar(config, store, args.account, args.calendar)
        if fmt == "jsonl":  # written as it is read: the first line comes before the mirror is read
            async for batch in store.query_batches(**view):
                _output.print_events(batch, fmt)
            return 0
        events = await store.query(**view)
    _output.print_events(events, fmt, tz=tz)  # the table sizes its columns on every row
    return 0


def _reader(config: Config) -> StoreHandle | None:
    """The store for a command that only reads it; None (said on stderr) when there is none yet.

    A store this process may not write (a read-only medium, another user's file) is opened
    read-only, so ``events`` and ``status`` still work on it.
    """
    from ..store import open_store

    if config.store_url is not None:  # a server store: opening it says when it is missing
        return open_store(config, create=False, read_only=True)
    path = config.store_path
    if not path.exists():
        print(f"calbridge: no store at {path} yet; run `calbridge sync` first", file=sys.stderr)
        return None
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
    return open_store(config, create=False, read_only=not writable)


async def _check_calendar(config: Config, store: MirrorReader, account: str | None, calendar: str) -> None:
    """``--calendar ID`` must name a calendar of the config (or, with ``calendars: all``, of the store)."""
    accounts = [config.account(account)] if account else list(config.accounts)
    if any(a.calendars is not None and calendar in a.calendars for a in accounts):
        return
    names = {a.name for a in accounts}
    known = sorted({r.calendar_id for r in await store.status() if r.account in names})
    if calendar not in known:
        configured = sorted({c for a in accounts for c in a.calendars or ()} | set(known))
        raise UsageError(f"--calendar: unknown calendar {calendar!r} (known: {', '.join(configured) or 'none'})")


def _zone(name: str | None) -> dt.tzinfo:
    """``--tz ZONE``; by default the machine's own zone (tzlocal), as people read times."""
    if name is None:
        return _output.local_zone()
    if name.upper() == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz: unknown time zone {name!r} (an IANA name such as Europe/Paris, or UTC)") from None


async def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args, resolve_auth=False)
    store = _reader(config)
    if store is None:
        return 1
    async with store:
        rows = await store.status()
        workers = await store.workers() if isinstance(store, LeaseStore) else None
    polled = "polled: no service.public_url" if config.service.public_url is None else None
    _output.print_status(rows, syncing=store.sync_holder(), polled=polled, workers=workers)
    return 0


async def cmd_calendars(args: argparse.Namespace) -> int:
    from ..engine import SyncEngine
    from ..store import open_store

    config = _config(args, resolve_auth=True)
    failed = False
    async with open_store(config) as store, SyncEngine(config, store, clock=now) as engine:
        for account in config.accounts:
            try:
                cals = await engine.calendars(account)
            except CalbridgeError as exc:
                failed = True
                print(f"{account.name}: failed: {type(exc).__name__}: {scrub(str(exc))}")
                continue
            _output.print_calendars(account.name, cals)
    return 1 if failed else 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args, resolve_auth=True)
    names = ", ".join(f"{a.name} ({a.provider})" for a in config.accounts) or "no accounts"
    from ..store.postgres import redact

    store = config.store_path if config.store_url is None else redact(config.store_url)
    print(f"{args.config}: valid — store {store}; {names}")
    return 0


def _verbose_logging() -> None:
    """``-v``: INFO for everything, DEBUG for calbridge's own loggers (one line per HTTP request and page)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("calbridge").setLevel(logging.DEBUG)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_SCRUB)


def _quiet_logging() -> None:
    """Without ``-v`` warnings reach stderr through logging's last-resort handler: scrubbed there too."""
    import logging

    if logging.lastResort is not None:
        logging.lastResort.addFilter(_SCRUB)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check-config":
        return cmd_check_config(args)
    if args.command in ("emulate", "demo"):
        from . import _emulate

        return _emulate.run(args)
    if args.command == "changes":
        return asyncio.run(_changes.run(args, _config(args, resolve_auth=False)))
    if args.command == "run":
        return asyncio.run(_run.cmd_run(args, _config(args, resolve_auth=True), now))
    handler = {"sync": cmd_sync, "events": cmd_events, "status": cmd_status, "calendars": cmd_calendars}
    return asyncio.run(handler[args.command](args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (see the module docstring)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verbose:
        _verbose_logging()
    else:
        _quiet_logging()
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a reader that left shows here, inside the handlers below, not at exit
        return code
    except BrokenPipeError:
        # `calbridge events | head -1`: the reader is gone. The Python docs' recipe (signal module,
        # "Note on SIGPIPE"): point stdout at devnull so the interpreter's last flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except (ConfigError, UsageError, MissingDependency) as exc:
        print(f"calbridge: {scrub(str(exc))}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"calbridge: {scrub(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:  # the file system said no (permissions, a full or read-only disk): one line
        print(f"calbridge: {scrub(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command == "changes":  # `changes --follow` ends with ^C: a clean stop
            return 0
        print("calbridge: interrupted; committed pages are kept and the next sync resumes", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
