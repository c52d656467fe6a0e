"""Receiver throughput: valid notifications answered per second with 1,000 calendars subscribed, and the
p99 answer time (goal < 50 ms), per provider.

Run ``python bench/bench_receiver.py [--calendars N] [--notifications M] [--concurrency C]``
(defaults 1,000 / 3,000 / 64; ~15 s). The real receiver (``make_receiver_app``) with the providers' own
verifiers is served on loopback by this process over a SQLite store holding a real subscription row
per calendar and provider (Google channels with their tokens, Graph subscriptions with their
``clientState``s, Feishu calendar subscriptions); a client in **another process** (so it takes none of
the receiver's interpreter) posts M valid notifications, each naming a random calendar, C at a time:
Google channel messages (headers only), Graph batches of one item, Feishu ``changed_v4`` deliveries
encrypted and signed, each with its own ``event_id`` (so each is deduplicated in the store after the
answer). The answer time is the client's: request sent → answer read, loopback and the wait for the
receiver's loop included (with C in flight most of it is queueing); "the handler alone" is the
receiver handler's own time (a middleware innermost: verification and the store lookup). Throughput
is M over the client's wall time. The triggers the receiver hands on after answering are counted too,
and how long after the last answer the last of them came (the work that runs after the answer).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from _push_world import FEISHU_APP, FEISHU_KEY, FEISHU_TOKEN, PROVIDERS, Timing, listening_socket, percentile
from aiohttp import web

from calbridge.push import PushAccount, Subscription, push_plugin
from calbridge.registry import default_registry
from calbridge.service._receiver import make_receiver_app
from calbridge.service._triggers import Trigger
from calbridge.store.sqlite import SqliteStore
from calbridge_providers.feishu import FeishuPushSettings
from calbridge_providers.feishu.emulator._pushwire import body_of, event_doc, headers_for

CLIENT = textwrap.dedent(
    """
    import asyncio, base64, json, sys, time
    import aiohttp

    async def main(url, path, concurrency):
        todo = json.loads(open(path).read())
        times = []
        statuses = {}
        queue = list(reversed(todo))
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def worker():
                while queue:
                    item = queue.pop()
                    body = base64.b64decode(item["body"])
                    t0 = time.perf_counter()
                    async with session.post(url + item["path"], headers=item["headers"], data=body) as r:
                        await r.read()
                    times.append(time.perf_counter() - t0)
                    statuses[r.status] = statuses.get(r.status, 0) + 1
            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            wall = time.perf_counter() - start
        print(json.dumps({"wall": wall, "times": times, "statuses": statuses}))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)
TRIGGER_WAIT = 20.0  # seconds the queued notices may take to become triggers after the last answer
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)


def rows(provider: str, calendars: int) -> list[Subscription]:
    """One live subscription per calendar, as the subscription manager saves them."""
    now = dt.datetime.now(dt.UTC)
    account = f"bench-{provider}"
    out = []
    for k in range(calendars):
        if provider == "feishu":
            out.append(Subscription(provider=provider, account=account, calendar_id=f"cal{k}", id=f"{account}/cal{k}",
                                    expires=None, resource=f"feishu.cn_cal{k}", created=now))  # fmt: skip
        else:
            out.append(Subscription(provider=provider, account=account, calendar_id=f"cal{k}", id=f"{provider}-sub-{k}",
                                    expires=LATER, secret=f"secret-{provider}-{k:04d}-{'x' * 24}",
                                    resource=f"resource-{k}", created=now))  # fmt: skip
    return out


def request_for(provider: str, sub: Subscription, n: int) -> dict[str, Any]:
    """A valid delivery naming ``sub``'s calendar, as the provider sends it."""
    if provider == "google":
        headers = {"X-Goog-Channel-ID": sub.id, "X-Goog-Channel-Token": sub.secret or "",
                   "X-Goog-Channel-Expiration": "Sat, 05 Dec 2026 12:00:00 GMT",
                   "X-Goog-Resource-ID": sub.resource or "",
                   "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/x/events",
                   "X-Goog-Resource-State": "exists", "X-Goog-Message-Number": str(n + 2)}  # fmt: skip
        body = b""
    elif provider == "graph":
        item = {"subscriptionId": sub.id, "subscriptionExpirationDateTime": LATER.isoformat(),
                "clientState": sub.secret, "changeType": "updated", "resource": f"Users/u/Events/e{n}",
                "tenantId": "t", "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "id": f"e{n}"}}  # fmt: skip
        body = json.dumps({"value": [item]}).encode()
        headers = {"Content-Type": "application/json"}
    else:
        doc = event_doc(event_id=f"ev-{n:08d}-{random.getrandbits(32):08x}", app_id=FEISHU_APP, token=FEISHU_TOKEN,
                        tenant_key="2ca1d211f64f6438", calendar_id=sub.resource or "", user_open_id="ou_bench",
                        calendar_event_id=f"e{n}", change_type="update")  # fmt: skip
        body = body_of(doc, FEISHU_KEY)
        headers = headers_for(body, FEISHU_KEY, signed=True)
    return {"path": f"/push/{provider}", "headers": headers, "body": base64.b64encode(body).decode()}


async def measure(provider: str, calendars: int, notifications: int, concurrency: int, tmp: Path) -> dict[str, Any]:
    plugin = push_plugin(default_registry.get(provider))
    assert plugin is not None
    verifier = plugin.push_verifier()
    settings = FeishuPushSettings(app_id=FEISHU_APP, verification_token=FEISHU_TOKEN, encrypt_key=FEISHU_KEY)
    accounts = {e: [PushAccount(name=f"bench-{provider}", settings=settings)] for e in verifier.endpoints}
    triggers: list[float] = []
    every = asyncio.Event()

    def trigger(t: Trigger) -> None:
        triggers.append(time.perf_counter())
        if len(triggers) >= notifications:
            every.set()

    async with SqliteStore(tmp / f"{provider}.db") as store:
        subs = rows(provider, calendars)
        for sub in subs:
            await store.save_subscription(sub)
        todo = [request_for(provider, random.choice(subs), n) for n in range(notifications)]
        plan = tmp / f"{provider}.json"
        plan.write_text(json.dumps(todo))
        app = make_receiver_app(verifiers={e: verifier for e in verifier.endpoints},
                                accounts=accounts if provider == "feishu" else {}, store=store, trigger=trigger,
                                draining=lambda: False)  # fmt: skip
        answers = Timing()  # when each answer left the handler (the last one: the burst answered)
        app.middlewares.append(answers.middleware)
        sock = listening_socket()
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        try:
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, url, str(plan), str(concurrency),
                                                        stdout=subprocess.PIPE)  # fmt: skip
            out, _ = await proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"{provider}: the client failed")
            result: dict[str, Any] = json.loads(out)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(every.wait(), TRIGGER_WAIT)
        finally:
            await runner.cleanup()
    last = triggers[-1] - max(h.end for h in answers.hits) if triggers else float("nan")
    handled = [h.end - h.start for h in answers.hits]
    return {**result, "triggers": len(triggers), "last_trigger": last, "handled": handled}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calendars", type=int, default=1000)
    ap.add_argument("--notifications", type=int, default=3000, help="per provider")
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    rates, p99s = [], []
    with tempfile.TemporaryDirectory() as folder:
        for provider in PROVIDERS:
            m = asyncio.run(measure(provider, args.calendars, args.notifications, args.concurrency, Path(folder)))
            times = m["times"]
            rate, p99 = len(times) / m["wall"], percentile(times, 0.99)
            handler = percentile(m["handled"], 0.99)
            rates.append(f"{provider} {rate:,.0f}/s")
            p99s.append(f"{provider} {p99 * 1e3:.1f} ms (handler {handler * 1e3:.1f} ms)")
            statuses = ", ".join(f"{n} × {s}" for s, n in sorted(m["statuses"].items()))
            n, got = len(times), m["triggers"]
            if got == n:
                after = (
                    f"all {n:,} triggers, the last {max(0.0, m['last_trigger']) * 1e3:,.0f} ms after the last answer"
                )
            else:
                after = f"only {got:,} of {n:,} triggers within {TRIGGER_WAIT:.0f} s after the last answer"
            print(f"{provider:7s} {len(times):,} notifications, {args.calendars:,} calendars subscribed, "
                  f"{args.concurrency} at once: {rate:,.0f}/s answered ({statuses}); answer median "
                  f"{statistics.median(times) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms (the handler alone: p99 "
                  f"{handler * 1e3:.1f} ms); {after}")  # fmt: skip
    print(f"receiver, {args.calendars:,} calendars subscribed: {', '.join(rates)} answered")
    print(f"answer p99, client-side with {args.concurrency} in flight: {', '.join(p99s)} (goal < 50 ms)")


if __name__ == "__main__":
    main()
