"""Every benchmark, one table: what, goal, measured, peer, ratio — a row for each row of issue 11's table
and of issue 13's (push latency, the receiver, a polled round of 1,000 calendars).

    python bench/run.py            # a few minutes: small sizes
    python bench/run.py --slow     # + scaling at 10k / 30k events and 100 / 500 / 1,000 series
    python bench/run.py --full     # + 100k events

The parse benchmarks run in this process (their ``measure()``); the others (store, engine, sweep,
the emulator-backed syncs) run as their own scripts, whatever of them exists: a missing one prints
"see bench_X" and a failing one its last line. Request counts come from the emulators' request logs.
Ratios from one run are what to compare; the machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
Row = tuple[str, str, str, str, str]  # what, goal, measured, peer, ratio


def script(name: str, *args: str, timeout: float = 900, last: int = 4) -> str:
    """The output of ``bench/<name>.py`` (its ``last`` lines), or why there is none."""
    path = HERE / f"{name}.py"
    if not path.exists():
        return f"see {name} (not in this tree)"
    try:
        done = subprocess.run(
            [sys.executable, str(path), *args], capture_output=True, text=True, timeout=timeout, cwd=HERE
        )
    except subprocess.TimeoutExpired:
        return f"{name}: no answer within {timeout:.0f} s"
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        err = [line for line in done.stderr.splitlines() if line.strip()]
        return f"{name} failed: {err[-1] if err else done.returncode}"
    return " | ".join(lines[-last:])


def parse_rows(peers: bool) -> list[Row]:
    import bench_feishu
    import bench_google
    import bench_graph

    rows: list[Row] = []
    mem: list[str] = []
    names = {"google": "gcal_sync", "graph": "msgraph-sdk", "feishu": "lark-oapi"}
    for name, module, args in (
        ("google", bench_google, (2500, 11)),
        ("graph", bench_graph, (1000, 11)),
        ("feishu", bench_feishu, (1000, 11)),
    ):
        m: dict[str, Any] = module.measure(*args, peers=peers)  # type: ignore[attr-defined]
        peer = "not installed" if m["peer"] is None else f"{names[name]} {m['peer']:.2f}x"
        rows.append(
            (f"decode + normalize ÷ json.loads ({name}, {m['events']} ev)", "<= 1.0x",
             f"{m['ours'] * 1e3:.1f} ms vs {m['json'] * 1e3:.1f} ms; first page {m['cold_ratio']:.2f}x", peer,
             f"{m['ratio']:.2f}x")
        )  # fmt: skip
        mem.append(f"{name} {m['bytes_per_event']:,.0f} B (alone {m['bytes_alone']:,.0f})")
        worst = max(float(x.split()[1].replace(",", "")) for x in mem)
    rows.append(("memory per held Event (deep size; shared values once)", "<= 3,000 B", ", ".join(mem), "",
                 f"{worst / 3000:.2f}x goal"))  # fmt: skip
    return rows


def google_sync(events: int, series: int) -> dict[str, Any] | str:
    """bench_google_sync's figures in a process of their own (its peak RSS is the sync's alone)."""
    out = script("bench_google_sync", "--events", str(events), "--series", str(series), "--json")
    try:
        return dict(json.loads(out))
    except ValueError:
        return out


def sync_rows(sizes: list[int], series: list[int]) -> list[Row]:
    rows: list[Row] = []
    for s in series:
        m = google_sync(1000 + s, s)
        what = f"expanding series (Google), {s} daily series, ±30 d"
        if isinstance(m, str):
            rows.append((what, "1,000 series < 5 s client CPU", m, "", ""))
            continue
        req = m["requests"]
        rows.append(
            (what, "1,000 series < 5 s client CPU",
             f"{m['cpu']:.1f} s CPU, {m['wall']:.1f} s wall; {req.get('instances', 0)} instances + "
             f"{req.get('list', 0)} list requests", "", f"{m['cpu'] / 5:.2f}x goal")
        )  # fmt: skip
    for n in sizes:
        m = google_sync(n, 0)
        what = f"Google full sync of {n:,} events"
        if isinstance(m, str):
            rows.append((what, "RSS follows the page", m, "", ""))
            continue
        rows.append(
            (what, "RSS follows the page",
             f"{m['wall']:.1f} s wall, {m['requests'].get('list', 0)} list requests, peak RSS {m['rss_mib']:.0f} MiB",
             "", f"{n / m['wall']:,.0f} ev/s")
        )  # fmt: skip
    return rows


def other_rows(slow: bool) -> list[Row]:
    """The rows measured by scripts other parts of the issue own: called as they are."""
    sweep = ["--slow"] if slow else []
    return [
        ("sweep after an expired cursor, 40 % gone", "100k mirror's 40k deletes < 10 s", script("bench_sweep", *sweep),
         "", ""),
        ("requests when a day passes (window moves)", "30 quiet days < 1.5 full expansions",
         script("bench_days"), "", ""),
        ("Feishu full sync: attendee calls", "re-listing unchanged: 0 attendee calls", script("bench_feishu_sync"),
         "", ""),
        ("Graph full sync of 15k: delta pages, emulator share", "maxpagesize 1,000; emulator ∝ page",
         script("bench_graph_sync"), "", ""),
        ("engine CPU per request, no-change round", "<= 0.2 ms", script("bench_round"), "", ""),
        ("a fresh process: token requests", "tokens reused across processes", script("bench_tokens"), "", ""),
        ("serialize + upsert into SQLite", ">= 30k ev/s, within 2x raw", script("bench_store"), "raw sqlite3", ""),
        ("events --expand on a 100k mirror", "first line < 1 s (jsonl)", script("bench_expand"), "", ""),
        ("sync --full of a 200k mirror, half deleted", "every page costs a first page's",
         script("bench_sweep", "--full") if slow else "see bench_sweep --full (run.py --slow)", "", ""),
    ]  # fmt: skip


def push_rows(slow: bool) -> list[Row]:
    """Issue 13's rows: push latency, the receiver's throughput, a polled round of 1,000 calendars."""
    polled = ["--provider", "all"] if slow else []
    return [
        ("push latency, server change → listener, 200 changes a provider", "p99 < 1 s; calbridge's share shown",
         script("bench_push", last=2), "", ""),
        ("receiver: valid notifications answered/s, 1,000 calendars subscribed", "p99 answer < 50 ms",
         script("bench_receiver", last=2), "", ""),
        ("no-change polled round of 1,000 calendars (service round path)", "1 list request a calendar, 0 expansion",
         script("bench_polled_round", *polled, last=1), "", ""),
    ]  # fmt: skip


KNOWN = {"bench_google", "bench_graph", "bench_feishu", "bench_google_sync", "bench_graph_sync", "bench_sweep",
         "bench_days", "bench_feishu_sync", "bench_tokens", "bench_engine", "bench_store", "bench_expand",
         "bench_round", "bench_push", "bench_receiver", "bench_polled_round"}  # fmt: skip


def found_rows() -> list[Row]:
    """Any other bench/bench_*.py (added by another part of the work): run as it is, its output shown."""
    return [
        (path.stem, "(its own)", script(path.stem, timeout=300), "", "")
        for path in sorted(HERE.glob("bench_*.py"))
        if path.stem not in KNOWN
    ]


def table(rows: list[Row]) -> str:
    head: Row = ("what", "goal", "measured", "peer", "ratio")
    widths = [min(70, max(len(r[i]) for r in [head, *rows])) for i in range(5)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slow", action="store_true", help="scaling at 10k / 30k events and 100 / 500 / 1,000 series")
    ap.add_argument("--full", action="store_true", help="also 100k events")
    ap.add_argument("--no-peers", action="store_true", help="skip the peer libraries")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    sizes, series = [2_000], [100]
    if args.slow or args.full:
        sizes, series = [10_000, 30_000], [100, 500, 1_000]  # the 1,000 series of the goal: ~15 s wall
    if args.full:
        sizes = [*sizes, 100_000]
    steps: list[Callable[[], list[Row]]] = [
        lambda: parse_rows(not args.no_peers),
        lambda: sync_rows(sizes, series),
        lambda: other_rows(args.slow or args.full),
        lambda: push_rows(args.slow or args.full),
        found_rows,
    ]
    rows: list[Row] = []
    t0 = time.perf_counter()
    for step in steps:
        rows += step()
    print(table(rows))
    print(f"\n({time.perf_counter() - t0:.0f} s; python bench/run.py --slow / --full for the scaling curves)")


if __name__ == "__main__":
    main()
