"""Issue 13's "Done means" for Google and Graph, end to end: the service running (``poll`` an hour,
``public_url`` its own loopback listen address) against emulators that push for real.

Changes reach the store and a listener by push, the following round incremental; forged deliveries
are refused and cost the provider nothing; subscriptions outlive short lifetimes; bursts coalesce; a
revoked calendar fails alone. Secrets never reach a log line."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from calbridge.config import parse_config
from calbridge.registry import default_registry
from calbridge.service import Policy
from calbridge.service._serve import push_accounts
from calbridge.testing.kit import Served
from calbridge.testing.tls import TestCA, make_test_ca

from ._service_world import PUSH_WITHIN, Calendar, World, running, serve, until_async

PROVIDERS = ("google", "graph")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("e2e-ca"))


@pytest.fixture
def google(ca: TestCA) -> Iterator[Served]:
    served = serve("google", default_registry, ca)
    served.emulator.state.push.backoff = 0.05
    yield served
    served.stop()


@pytest.fixture
def graph(ca: TestCA) -> Iterator[Served]:
    served = serve("graph", default_registry, ca)
    yield served
    served.stop()


@pytest.fixture
def emulators(google: Served, graph: Served) -> dict[str, Served]:
    return {"google": google, "graph": graph}


@pytest.fixture(autouse=True)
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def cursor_reads(served: Served) -> list[dict[str, list[str]]]:
    """The query of every listing request that carried the sync cursor, and of every other listing."""
    return [q for q in listings(served) if cursor_of(served.name, q)]


def listings(served: Served) -> list[dict[str, list[str]]]:
    emu: Any = served.emulator
    if served.name == "google":
        return [{k: [v] for k, v in r.query.items()} for r in list(emu.state.requests) if r.path.endswith("/events")]
    return [parse_qs(urlsplit(r.url).query) for r in list(emu.requests) if "delta" in r.path]


def cursor_of(provider: str, query: dict[str, list[str]]) -> bool:
    key = "syncToken" if provider == "google" else "$deltatoken"
    return any(query.get(key, []))


def clear_log(served: Served) -> None:
    emu: Any = served.emulator
    if served.name == "google":
        emu.state.clear_log()
    else:
        emu.requests.clear()


def provider_requests(served: Served) -> int:
    emu: Any = served.emulator
    return len(emu.state.requests) if served.name == "google" else len(emu.requests)


async def secrets_of(world: World, *accounts: str) -> list[str]:
    found = [s.secret for a in accounts for s in await world.subscriptions(a)]
    return [s for s in found if s]


def assert_no_secret(logs: pytest.LogCaptureFixture, secrets: list[str]) -> None:
    text = logs.text + "\n".join(r.getMessage() for r in logs.records)
    assert secrets, "no secret read back from the store"
    for secret in secrets:
        assert secret not in text


def test_a_config_parsed_without_a_registry_still_serves_its_push_endpoints(tmp_path: Path) -> None:
    """Such a config's accounts are structured late (``push`` still None): once they were left out,
    and every delivery was answered 404 while the subscriptions existed."""
    accounts = [
        {"name": "g", "provider": "google", "auth": {"kind": "authorized_user", "client_id": "c",
                                                     "client_secret": "s", "refresh_token": "r"}},
        {"name": "off", "provider": "google", "push": False, "auth": {"kind": "authorized_user", "client_id": "c",
                                                                      "client_secret": "s", "refresh_token": "r"}},
    ]  # fmt: skip
    config = parse_config({"store": "sqlite:///m.db", "accounts": accounts}, base_dir=tmp_path)
    verifiers, pushing = push_accounts(config, default_registry)
    assert set(verifiers) == {"google"}
    assert [a.name for a in pushing["google"]] == ["g"]


# -- 1. create, update, delete by push; the next round incremental -------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_create_update_delete_reach_the_store_and_a_listener_by_push(
    provider: str, emulators: dict[str, Served], tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    served = emulators[provider]
    cal = Calendar(served, "acct", events=1)
    async with running(tmp_path, [cal]) as world:
        await world.pushed("acct")
        await until_async(lambda: all(r.error is None for r in world.rounds))
        start_rounds = len(world.rounds)
        clear_log(served)

        started = time.monotonic()
        new_id = cal.create("pushed create")
        await until_async(lambda: world.upserted("acct", "pushed create"), what="the create by push")
        created_after = time.monotonic() - started
        assert {e.title for e in await world.store.query()} == {"acct 0", "pushed create"}

        cal.handle.update(new_id, title="pushed update")
        await until_async(lambda: world.upserted("acct", "pushed update"), what="the update by push")
        assert {e.title for e in await world.store.query()} == {"acct 0", "pushed update"}

        cal.handle.delete(new_id)
        await until_async(lambda: world.deleted("acct", new_id), what="the delete by push")
        assert {e.title for e in await world.store.query()} == {"acct 0"}

        pushed_rounds = world.rounds[start_rounds:]
        secrets = await secrets_of(world, "acct")
    assert created_after < PUSH_WITHIN
    assert pushed_rounds and not any(r.full for r in pushed_rounds)  # poll is an hour: push did it
    assert all(r.error is None for r in pushed_rounds)
    reads = listings(served)
    assert reads and all(cursor_of(provider, q) for q in reads), reads  # incremental: the cursor, no full list
    assert_no_secret(logs, secrets)


# -- 2. forged deliveries refused, no request to the provider; the handshake exact --------------


async def test_forged_notifications_are_refused_and_cost_no_request(
    emulators: dict[str, Served], tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    g, m = Calendar(emulators["google"], "g"), Calendar(emulators["graph"], "m")
    async with running(tmp_path, [g, m]) as world:
        await world.pushed("g", "m")
        await asyncio.sleep(1.0)  # the sync message and any start-up work settle
        (channel,) = await world.subscriptions("g")
        (sub,) = await world.subscriptions("m")
        rounds = len(world.rounds)
        before = {name: provider_requests(s) for name, s in emulators.items()}
        google_headers = {
            "X-Goog-Channel-ID": channel.id, "X-Goog-Channel-Token": "not-the-token",
            "X-Goog-Resource-ID": channel.resource or "", "X-Goog-Resource-State": "exists",
            "X-Goog-Message-Number": "7",
        }  # fmt: skip
        item = {"subscriptionId": sub.id, "clientState": "not-the-client-state", "changeType": "updated",
                "resource": "Users/x/Events/y"}  # fmt: skip
        async with aiohttp.ClientSession() as http:

            async def post(path: str, **kw: Any) -> int:
                async with http.post(f"{world.url}{path}", **kw) as resp:
                    await resp.read()
                    return resp.status

            wrong_token = await post("/push/google", headers=google_headers)
            unknown = await post("/push/google", headers={**google_headers, "X-Goog-Channel-ID": "no-such-channel"})
            wrong_state = await post("/push/graph", json={"value": [item]})
            wrong_lifecycle = await post(
                "/push/graph/lifecycle", json={"value": [{**item, "lifecycleEvent": "missed"}]}
            )
            huge = await post("/push/graph", data=b"{" + b" " * (2 * 1024 * 1024) + b"}")
            huge_google = await post("/push/google", headers={**google_headers}, data=b"x" * (2 * 1024 * 1024))
            garbage = await post("/push/graph", data=b"\x00\xffnot json at all")
            real_headers = {**google_headers, "X-Goog-Channel-Token": channel.secret or ""}
            garbage_google = await post("/push/google", headers=real_headers, data=b"\x00 not a delivery {")
            garbage_json = await post("/push/graph", json={"value": "nope"})

            token = "Validation: Testing client application reachability for subscription Request-Id: a+b c&d"
            async with http.post(f"{world.url}/push/graph", params={"validationToken": token}) as resp:
                handshake = (resp.status, resp.headers.get("Content-Type", ""), await resp.text())
            async with http.post(f"{world.url}/push/graph/lifecycle", params={"validationToken": token}) as resp:
                lifecycle_handshake = (resp.status, await resp.text())
        await asyncio.sleep(1.5)  # time enough for any round the forgeries could have caused
        after = {name: provider_requests(s) for name, s in emulators.items()}
        assert len(world.rounds) == rounds
        secrets = await secrets_of(world, "g", "m")
    assert 400 <= wrong_token < 500 and 400 <= unknown < 500, (wrong_token, unknown)
    assert 400 <= wrong_state < 500 and 400 <= wrong_lifecycle < 500, (wrong_state, wrong_lifecycle)
    assert huge == 413 and huge_google == 413
    assert garbage == 400 and garbage_json == 400 and garbage_google == 400
    assert after == before  # not one request to either provider
    assert handshake[0] == 200 and handshake[1].split(";")[0] == "text/plain" and handshake[2] == token
    assert lifecycle_handshake == (200, token)
    assert_no_secret(logs, secrets)


# -- 3. short lifetimes: renewed, a late change still pushed; lifecycle events --------------------


async def _stays_alive(emulators: dict[str, Served], tmp_path: Path, seconds: float) -> None:
    google, graph = emulators["google"], emulators["graph"]
    google.emulator.state.push.max_lifetime = 4.0
    graph.emulator.max_subscription_lifetime = dt.timedelta(seconds=6)
    g, m = Calendar(google, "g"), Calendar(graph, "m")
    async with running(tmp_path, [g, m], lifetime=dt.timedelta(seconds=4)) as world:
        await world.pushed("g", "m")
        first_channel = (await world.subscriptions("g"))[0].id
        await asyncio.sleep(seconds)
        live_channels = google.emulator.state.push.channels(g.calendar_id)
        live_subs = graph.emulator.subscriptions()
        assert len(live_channels) == 1, live_channels  # renewed: a new one, the old stopped
        assert live_channels[0].id != first_channel
        assert len(live_subs) == 1
        renewals = [r for r in graph.emulator.requests if r.method == "PATCH" and "/subscriptions/" in r.path]
        # At half-life (4 s): every 2 s or so; never faster, as when each renewal was counted from
        # the creation and the renewals crowded towards its first expiry (then one a second).
        assert seconds / 4 <= len(renewals) <= seconds / 2 + 1, renewals
        stops = google.emulator.state.requests_to("/channels/stop", "POST")
        assert stops and {r.status for r in stops} == {204}  # each old channel stopped once, after the new stored
        assert {s.id for s in await world.subscriptions("g")} == {live_channels[0].id}
        assert {s.id for s in await world.subscriptions("m")} == {live_subs[0].id}
        for cal in (g, m):
            cal.create("late change")
        await until_async(lambda: world.upserted("g", "late change") and world.upserted("m", "late change"),
                          what="the late change by push")  # fmt: skip
        assert not any(r.full for r in world.rounds[2:])


async def test_short_lived_subscriptions_stay_alive_and_a_late_change_arrives(
    emulators: dict[str, Served], tmp_path: Path
) -> None:
    await _stays_alive(emulators, tmp_path, 12)


@pytest.mark.slow
async def test_short_lived_subscriptions_stay_alive_across_a_minute(
    emulators: dict[str, Served], tmp_path: Path
) -> None:
    await _stays_alive(emulators, tmp_path, 62)


async def test_graph_lifecycle_removed_gives_a_new_subscription_missed_a_round_reauthorization_a_renewal(
    graph: Served, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    emu: Any = graph.emulator
    m = Calendar(graph, "m")
    async with running(tmp_path, [m]) as world:
        await world.pushed("m")
        (old,) = emu.subscriptions()
        rounds = len(world.rounds)
        emu.lifecycle_event(old.id, "subscriptionRemoved")
        await until_async(lambda: len(emu.subscriptions()) == 1 and emu.subscriptions()[0].id != old.id,
                          what="a new subscription")  # fmt: skip
        await until_async(lambda: len(world.rounds) > rounds, what="a round after subscriptionRemoved")
        (new,) = emu.subscriptions()
        await until_async(lambda: world.store.subscriptions("m"), what="the new one stored")
        assert [s.id for s in await world.subscriptions("m")] == [new.id]
        rounds = len(world.rounds)
        emu.lifecycle_event(new.id, "missed")
        await until_async(lambda: len(world.rounds) > rounds, what="a round after missed")
        emu.lifecycle_event(new.id, "reauthorizationRequired")
        await until_async(lambda: not emu.subscriptions()[0].reauthorization_required, what="reauthorized")
        assert [s.id for s in emu.subscriptions()] == [new.id]
        m.create("after missed")
        await until_async(lambda: world.upserted("m", "after missed"), what="push through the new subscription")
        secrets = await secrets_of(world, "m")
    assert_no_secret(logs, [*secrets, old.client_state])


# -- 4. bursts coalesce; Google's sync message triggers nothing ----------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_thirty_notifications_within_200ms_give_at_most_two_rounds(
    provider: str, emulators: dict[str, Served], tmp_path: Path
) -> None:
    cal = Calendar(emulators[provider], "acct")
    async with running(tmp_path, [cal]) as world:
        await world.pushed("acct")
        await asyncio.sleep(1.0)
        (sub,) = await world.subscriptions("acct")
        assert sub.secret is not None
        rounds = len(world.rounds)
        async with aiohttp.ClientSession() as http:

            async def one(n: int) -> int:
                if provider == "google":
                    headers = {"X-Goog-Channel-ID": sub.id, "X-Goog-Channel-Token": sub.secret or "",
                               "X-Goog-Resource-ID": sub.resource or "", "X-Goog-Resource-State": "exists",
                               "X-Goog-Message-Number": str(100 + n)}  # fmt: skip
                    kw: dict[str, Any] = {"headers": headers}
                    path = "/push/google"
                else:
                    item = {"subscriptionId": sub.id, "clientState": sub.secret, "changeType": "updated",
                            "resource": f"Users/u/Events/e{n}"}  # fmt: skip
                    kw, path = {"json": {"value": [item]}}, "/push/graph"
                async with http.post(f"{world.url}{path}", **kw) as resp:
                    return resp.status

            started = time.monotonic()
            statuses = await asyncio.gather(*(one(n) for n in range(30)))
            took = time.monotonic() - started
        await until_async(lambda: len(world.rounds) > rounds, what="a round")
        await asyncio.sleep(3.0)  # time for a third, which must not come
        burst = world.rounds[rounds:]
    assert took < 0.2 * 5, took
    assert set(statuses) == {200 if provider == "google" else 202}
    assert 1 <= len(burst) <= 2, burst


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_thirty_changes_within_200ms_delivered_for_real_give_at_most_two_rounds(
    provider: str, emulators: dict[str, Served], tmp_path: Path
) -> None:
    cal = Calendar(emulators[provider], "acct")
    async with running(tmp_path, [cal]) as world:
        await world.pushed("acct")
        await asyncio.sleep(1.0)
        rounds = len(world.rounds)
        started = time.monotonic()
        for n in range(30):
            cal.create(f"burst {n}", hours=n % 5)
        took = time.monotonic() - started
        await until_async(lambda: all(world.upserted("acct", f"burst {n}") for n in range(30)), what="the burst")
        await asyncio.sleep(3.0)  # time for a third, which must not come
        burst = world.rounds[rounds:]
        stored = len(await world.store.query())
    assert took < 0.2, took
    assert 1 <= len(burst) <= 2, burst
    assert stored == 31


async def test_the_first_google_sync_message_triggers_nothing(google: Served, tmp_path: Path) -> None:
    cal = Calendar(google, "g")
    emu: Any = google.emulator
    async with running(tmp_path, [cal]) as world:
        await world.pushed("g")
        (channel,) = await world.subscriptions("g")
        await until_async(lambda: [d for d in emu.state.push.deliveries(channel.id) if d.finished is not None],
                          what="the sync message")  # fmt: skip
        rounds = len(world.rounds)
        async with aiohttp.ClientSession() as http:
            headers = {"X-Goog-Channel-ID": channel.id, "X-Goog-Channel-Token": channel.secret or "",
                       "X-Goog-Resource-ID": channel.resource or "", "X-Goog-Resource-State": "sync",
                       "X-Goog-Message-Number": "1"}  # fmt: skip
            async with http.post(f"{world.url}/push/google", headers=headers) as resp:
                assert resp.status == 200
        await asyncio.sleep(2.0)
        assert len(world.rounds) == rounds
    (sync,) = emu.state.push.deliveries(channel.id)
    assert sync.state == "sync" and sync.number == 1


# -- 6. a revoked calendar fails alone ------------------------------------------------------------


async def test_a_revoked_calendar_keeps_failing_while_the_others_stay_fresh_by_push(
    emulators: dict[str, Served], tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    bad = Calendar(emulators["google"], "bad")
    bad.entry["auth"]["refresh_token"] = "1//revoked-refresh-token"
    g, m = Calendar(emulators["google"], "g"), Calendar(emulators["graph"], "m")
    policy = Policy(poll=dt.timedelta(hours=1), base=dt.timedelta(seconds=0.5))
    async with running(tmp_path, [bad, g, m], policy=policy) as world:
        await world.pushed("g", "m")
        await until_async(lambda: len(world.rounds_of("bad")) >= 3, what="bad failing again and again")
        for cal in (g, m):
            cal.create("fresh by push")
        await until_async(lambda: world.upserted("g", "fresh by push") and world.upserted("m", "fresh by push"),
                          what="the others by push")  # fmt: skip
        assert not world.task.done()
        status = {r.account: r for r in await world.store.status()}
        secrets = await secrets_of(world, "g", "m")
    assert all(r.error is not None and "AuthError" in r.error for r in world.rounds_of("bad"))
    assert all(r.error is None for r in world.rounds_of("g") + world.rounds_of("m"))
    assert status["bad"].failures >= 3 and status["bad"].next_attempt is not None
    assert status["g"].failures == 0 and (status["g"].push or "").startswith("pushed until")
    assert_no_secret(logs, secrets)
