"""Push latency: a server-side change → the engine's listener called, per provider, over real loopback HTTP.

Run ``python bench/bench_push.py [--changes N]`` (default 200 per provider; ~70 s). One in-process
:class:`~calbridge.service.Service` (``poll`` 1 h, so every round after the first is push-triggered)
serves the real receiver app on a loopback socket; the Google, Graph (HTTPS) and Feishu (encrypted,
signed) emulators run in threads of their own and deliver for real to ``{public_url}/push/<provider>``.
Each provider has one calendar and one stream of changes (create, update, delete, in turn), the three
streams at once; a change is made only after the round of the one before has finished, then a random
0–50 ms pause.

Per change, all on ``time.perf_counter()`` (one clock for every thread):

- **latency**: from just before the emulator's API call that changes its data to the listener called
  with that change (matched by title; a delete by its ``previous`` title);
- **delivery**: from the change to the receiver getting the emulator's POST (a timing middleware
  appended to the receiver app): the emulator's side (Graph batches for 50 ms);
- **answer**: the receiver's handler time for that POST (verification, the store lookup);
- **settle**: ``Policy.settle`` (250 ms), the service's deliberate wait that coalesces a burst of notices;
- **calbridge's share** = (listener − delivery received) − settle − the emulator's own handler time of
  the requests that began in that span (a timing middleware outermost in the emulator's app). What is
  left is calbridge's: the answer, turning the notice into a trigger, the schedule's wake-up, the round's
  client side (aiohttp, decoding, normalizing), the store's commit and the listener call, plus loopback
  transit and whatever the emulators' threads take of the GIL meanwhile (they share the process).

Prints a line per provider, then two summary lines.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import attrs
from _push_world import PROVIDERS, Emulated, Timing, config_doc, listening_socket, percentile, point_feishu, serve, soon
from aiohttp import web

from calbridge._run import CalendarResult, ChangeBatch
from calbridge.config import parse_config
from calbridge.model import Delete, Upsert
from calbridge.registry import default_registry
from calbridge.service import Policy, Service
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.tls import make_test_ca

WAIT = 10.0  # seconds a change may take before the run is called broken


@attrs.frozen
class Sample:
    latency: float
    delivery: float
    answer: float
    emulator: float  # the emulator's handler time within (received, listener]
    after: float  # received → listener

    def share(self, settle: float) -> float:
        return self.after - settle - self.emulator


class Probe:
    """The engine's listener and the service's round callback: when each expected change arrived."""

    def __init__(self) -> None:
        self.waiting: dict[tuple[str, str, str], asyncio.Future[float]] = {}
        self.rounds: defaultdict[str, int] = defaultdict(int)
        self.round_done = asyncio.Event()

    def expect(self, account: str, op: str, title: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[account, op, title] = future
        return future

    def listener(self, batch: ChangeBatch) -> None:
        now = time.perf_counter()
        for change in batch.changes:
            if isinstance(change, Upsert):
                key = (batch.account, "upsert", change.event.title or "")
            elif isinstance(change, Delete) and change.previous is not None:
                key = (batch.account, "delete", change.previous.title or "")
            else:
                continue
            future = self.waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(now)

    def on_round(self, result: CalendarResult) -> None:
        self.rounds[result.account] += 1
        self.round_done.set()

    async def round_after(self, account: str, before: int) -> None:
        deadline = time.monotonic() + WAIT
        while self.rounds[account] <= before:
            self.round_done.clear()
            await asyncio.wait_for(self.round_done.wait(), max(0.01, deadline - time.monotonic()))


async def stream(emulated: Emulated, calendar: str, changes: int, probe: Probe, receiver: Timing) -> list[Sample]:
    """``changes`` changes of one calendar, each waited for (listener called, round finished)."""
    emu, name, account = emulated.emulator, emulated.name, f"bench-{emulated.name}"
    samples: list[Sample] = []
    event_id = ""
    start = soon()
    for i in range(changes):
        n, op = divmod(i, 3)
        title = f"{name} change {n}" + (" (moved)" if op else "")
        future = probe.expect(account, "delete" if op == 2 else "upsert", title)
        rounds = probe.rounds[account]
        t0 = time.perf_counter()
        if op == 0:
            event_id = await asyncio.to_thread(emu.add_event, title, start, start + dt.timedelta(hours=1),
                                               calendar=calendar)  # fmt: skip
        elif op == 1:
            await asyncio.to_thread(emu.update_event, event_id, calendar=calendar, title=title)
        else:
            await asyncio.to_thread(emu.delete_event, event_id, calendar=calendar)
        try:
            arrived = await asyncio.wait_for(future, WAIT)
        except TimeoutError:
            raise SystemExit(f"{name}: change {i} did not reach the listener within {WAIT:.0f} s") from None
        await probe.round_after(account, rounds)
        hits = [h for h in receiver.between(t0, arrived, path=f"/push/{name}") if h.status < 300]
        if not hits:
            raise SystemExit(f"{name}: change {i} reached the listener without a delivery (a poll?)")
        got = hits[0]
        spent = sum(h.end - h.start for h in emulated.timing.between(got.start, arrived))
        samples.append(Sample(arrived - t0, got.start - t0, got.end - got.start, spent, arrived - got.start))
        await asyncio.sleep(random.uniform(0, 0.05))
    return samples


async def ready(store: SqliteStore, probe: Probe, accounts: list[str]) -> None:
    """Every account subscribed and through its first (full) round."""
    deadline = time.monotonic() + 30
    for account in accounts:
        while not await store.subscriptions(account) or probe.rounds[account] < 1:
            if time.monotonic() > deadline:
                raise SystemExit(f"{account}: not subscribed and synced within 30 s")
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # Google's `sync` message and the like, out of the way


async def run(changes: int) -> tuple[dict[str, list[Sample]], dict[str, int], float]:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ca = make_test_ca(tmp)
        served = {name: serve(name, ca) for name in PROVIDERS}
        try:
            calendars = {name: e.emulator.new_calendar("push-bench") for name, e in served.items()}
            sock = listening_socket()
            port = sock.getsockname()[1]
            accounts = [e.account(f"bench-{name}", [calendars[name]]) for name, e in served.items()]
            config = parse_config(config_doc(accounts, port=port), base_dir=tmp, env={}, registry=default_registry)
            policy = Policy(poll=config.service.poll)
            probe, receiver = Probe(), Timing()
            async with (
                SqliteStore(config.store_path) as store,
                Service(config, store, serve_http=False, on_round=probe.on_round, policy=policy) as service,
            ):
                service.engine.add_listener(probe.listener)
                service.app.middlewares.append(receiver.middleware)  # innermost: the receiver's handler alone
                runner = web.AppRunner(service.app, access_log=None, handle_signals=False)
                await runner.setup()
                await web.SockSite(runner, sock).start()
                serving = asyncio.create_task(service.serve())
                try:
                    await point_feishu(served["feishu"], f"http://127.0.0.1:{port}")
                    await ready(store, probe, [f"bench-{name}" for name in PROVIDERS])
                    before = dict(probe.rounds)
                    results = await asyncio.gather(
                        *(stream(served[name], calendars[name], changes, probe, receiver) for name in PROVIDERS)
                    )
                    rounds = {name: probe.rounds[f"bench-{name}"] - before[f"bench-{name}"] for name in PROVIDERS}
                finally:
                    service.stop()
                    await serving
                    await runner.cleanup()
            return dict(zip(PROVIDERS, results, strict=True)), rounds, policy.settle.total_seconds()
        finally:
            for e in served.values():
                e.stop()


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=200, help="changes per provider (default 200)")
    args = ap.parse_args()
    results, rounds, settle = asyncio.run(run(args.changes))
    p99s, medians, shares = [], [], []
    for name, samples in results.items():
        lat = [s.latency for s in samples]
        share = [s.share(settle) for s in samples]
        med, p99 = statistics.median(lat), percentile(lat, 0.99)
        p99s.append(f"{name} {p99:.2f} s")
        medians.append(f"{med:.2f}")
        shares.append(f"{name} {ms(statistics.median(share))} / {ms(percentile(share, 0.99))}")
        print(f"{name:7s} {len(samples)} changes, {rounds[name] / len(samples):.2f} rounds each: latency median "
              f"{ms(med)}, p99 {ms(p99)}; emulator delivery median {ms(statistics.median(s.delivery for s in samples))}"
              f", receiver answer median {ms(statistics.median(s.answer for s in samples))} p99 "
              f"{ms(percentile([s.answer for s in samples], 0.99))}, emulator HTTP in the round median "
              f"{ms(statistics.median(s.emulator for s in samples))}")  # fmt: skip
    print(f"push latency p99: {', '.join(p99s)} (goal < 1 s); medians {' / '.join(medians)} s")
    print(f"of which settle {ms(settle)} (Policy.settle); calbridge's own share median / p99: {', '.join(shares)}")


if __name__ == "__main__":
    main()
