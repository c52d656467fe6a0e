"""Issue 13's "Done means" for Feishu, end to end: the shipped emulator pushes for real to a running
service (``poll`` 1h, ``public_url`` its own loopback listen address, the app's request URL set through
the emulated console), plain and encrypted; forged deliveries refused with no request to the provider;
duplicates, accounts sharing an app, tenant accounts; ``calbridge run`` as a process."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from calbridge.testing.server import ThreadedServer
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.feishu.emulator._pushwire import body_of, challenge_doc, event_doc, headers_for

from ._feishu_service_world import APP, BOUND, KEY, TOKEN, World, at, feishu_account, free_port, running

ALICE = "alice"


def alice(key: str | None) -> Any:
    return lambda emu, url: [feishu_account(emu, url, ALICE, key=key)]


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in (TOKEN, KEY):
            assert secret not in text


async def pushed_round(w: World, account: str, before: int) -> None:
    """A round of ``account`` beyond the ``before`` it had, within the bound (nothing else asks: poll is 1h)."""
    await w.until(lambda: len(w.of(account)) > before)


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
async def test_create_update_delete_arrive_by_push_and_the_round_is_incremental(
    tmp_path: Path, key: str | None, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(tmp_path, alice(key), key=key) as w:
        await w.until(lambda: w.emu.push.subscriptions() == [(APP, w.emu.primary_id)])
        assert await w.push_state(ALICE) == "pushed until unsubscribed"
        assert w.of(ALICE)[0].full
        loop = asyncio.get_running_loop()
        steps: list[tuple[str, Any]] = []
        eid = ""

        def create() -> None:
            nonlocal eid
            eid = w.emu.create_event(summary="Standup", start=at(2), end=at(3))

        steps = [("create", create), ("update", lambda: w.emu.update_event(eid, summary="Standup (moved)")),
                 ("delete", lambda: w.emu.delete_event(eid))]  # fmt: skip
        expected_titles = {"create": ["Standup"], "update": ["Standup (moved)"], "delete": []}
        for op, change in steps:
            before, listed = len(w.of(ALICE)), len(w.listings())
            started = loop.time()
            change()
            await pushed_round(w, ALICE, before)
            await w.until(lambda op=op: any(c[1] == ("delete" if op == "delete" else "upsert") and c[2] == eid
                                            for c in w.changes.seen[-1:]))  # fmt: skip
            assert loop.time() - started < BOUND
            assert await w.titles() == expected_titles[op], op
            result = w.of(ALICE)[before]
            assert not result.full and result.error is None, (op, result)
            new = w.listings()[listed:]
            assert new and all("sync_token" in r["query"] and "anchor_time" not in r["query"] for r in new), new
        deliveries = w.emu.push.deliveries()
        assert sorted(d.change_type for d in deliveries) == ["create", "delete", "update"]
        assert {(d.status, d.encrypted) for d in deliveries} == {(200, key is not None)}
        assert max(d.seconds for d in deliveries) < 5.0  # answered within 1 s (five times, loaded)
    out = capsys.readouterr()
    no_secret_in(caplog.text, out.out, out.err)


def forged_event(w: World, *, token: str = TOKEN, event_id: str = "ev-forged") -> dict[str, Any]:
    return event_doc(event_id=event_id, app_id=APP, token=token, tenant_key="tk", calendar_id=w.emu.primary_id,
                     user_open_id="ou_user", calendar_event_id=None, change_type=None)  # fmt: skip


def sealed(doc: dict[str, Any], key: str, *, sign_with: str | None) -> tuple[bytes, dict[str, str]]:
    body = body_of(doc, key)
    return body, headers_for(body, sign_with, signed=sign_with is not None)


def _chunked(size: int) -> Any:
    """A body sent in chunks without a Content-Length (the cap must hold as it is read)."""

    async def chunks() -> Any:
        for _ in range(size // 65536):
            yield b" " * 65536

    return chunks


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
async def test_forged_deliveries_are_refused_and_ask_nothing_of_the_provider(
    tmp_path: Path, key: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(tmp_path, alice(key), key=key) as w, aiohttp.ClientSession() as http:
        url = f"{w.public_url}/push/feishu"
        forged: dict[str, tuple[Any, dict[str, str], int]] = {
            "2 MiB body": (b"{" + b" " * (2 * 1024 * 1024) + b"}", {"Content-Type": "application/json"}, 413),
            "2 MiB chunked, no length": (_chunked(2 * 1024 * 1024), {"Content-Type": "application/json"}, 413),
            "garbage": (b"\x00\xff not json {", {"Content-Type": "application/json"}, 400),
        }
        if key is None:
            forged["wrong verification token"] = (body_of(forged_event(w, token="vt-wrong"), None), {}, 401)
            good = body_of(forged_event(w, event_id="ev-good"), None), {}
        else:
            body, headers = sealed(forged_event(w), KEY, sign_with=KEY)
            forged["bad signature"] = (body, {**headers, "X-Lark-Signature": "0" * 64}, 401)
            forged["wrong encrypt key"] = (*sealed(forged_event(w), "ek-wrong", sign_with="ek-wrong"), 401)
            forged["right key, wrong verification token"] = (
                *sealed(forged_event(w, token="vt-wrong"), KEY, sign_with=KEY), 401)  # fmt: skip
            forged["plain body"] = (body_of(forged_event(w), None), {}, 401)
            good = sealed(forged_event(w, event_id="ev-good"), KEY, sign_with=KEY)
        await w.until(lambda: w.emu.push.subscriptions())  # the start's calls are done
        await asyncio.sleep(0.3)
        asked, rounds = w.provider_requests(), len(w.of(ALICE))
        for reason, (body, headers, status) in forged.items():
            data = body() if callable(body) else body
            async with http.post(url, data=data, headers=headers) as resp:
                assert resp.status == status, reason
        await asyncio.sleep(2.0)  # time for a round, which must not come
        assert w.provider_requests() == asked and len(w.of(ALICE)) == rounds
        # The same delivery made right is acted on: the refusals above were for the reasons named.
        async with http.post(url, data=good[0], headers=good[1]) as resp:
            assert resp.status == 200
        await pushed_round(w, ALICE, rounds)
        assert w.provider_requests() > asked
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) >= len(forged)  # each refusal is logged: one line, without its body
    no_secret_in(caplog.text)
    assert "ev-forged" not in caplog.text and "vt-wrong" not in caplog.text


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
async def test_the_url_verification_challenge_is_answered_exactly_by_the_service(
    tmp_path: Path, key: str | None
) -> None:
    async with running(tmp_path, alice(key), key=key) as w, aiohttp.ClientSession() as http:
        saved = w.emu.push.challenges[-1]  # the console's own check, sent when the URL was saved
        assert saved.ok and saved.status == 200 and saved.encrypted == (key is not None)
        assert w.emu.push.consoles[APP].request_url == f"{w.public_url}/push/feishu"
        url = f"{w.public_url}/push/feishu"
        asked = w.provider_requests()
        for challenge in ("c-1", 'ünïcode "quoted" challenge'):
            body = body_of(challenge_doc(challenge, TOKEN), key)
            async with http.post(url, data=body, headers=headers_for(body, key, signed=False)) as resp:
                assert resp.status == 200 and resp.content_type == "application/json"
                assert json.loads(await resp.read()) == {"challenge": challenge}
        wrong = [("vt-wrong", key)] + ([(TOKEN, "ek-wrong")] if key else [])
        for token, with_key in wrong:
            body = body_of(challenge_doc("c-2", token), with_key)
            async with http.post(url, data=body, headers=headers_for(body, with_key, signed=False)) as resp:
                assert resp.status == 401 and b"c-2" not in await resp.read()
        if key is not None:  # an encrypted app's plain challenge does not verify either
            async with http.post(url, data=body_of(challenge_doc("c-3", TOKEN), None)) as resp:
                assert resp.status == 401
        assert w.provider_requests() == asked


async def test_thirty_changes_within_200ms_give_at_most_two_rounds(tmp_path: Path) -> None:
    async with running(tmp_path, alice(KEY), key=KEY) as w:
        await w.until(lambda: w.emu.push.subscriptions())
        before = len(w.of(ALICE))
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(30):
            w.emu.create_event(summary=f"burst {i:02d}", start=at(2), end=at(3))
            await asyncio.sleep(0.005)
        assert loop.time() - started < 1.0
        await w.until(lambda: w.emu.push.pending() == 0 and len(w.emu.push.deliveries()) == 30)
        await w.until(lambda: len(w.of(ALICE)) > before)
        await asyncio.sleep(2.0)  # time for a third round, which must not come
        assert 1 <= len(w.of(ALICE)) - before <= 2
        assert await w.titles() == [f"burst {i:02d}" for i in range(30)]
        deliveries = w.emu.push.deliveries()
        assert {d.status for d in deliveries} == {200} and max(d.seconds for d in deliveries) < 5.0


async def test_a_duplicate_delivery_triggers_one_round_not_two(tmp_path: Path) -> None:
    async with running(tmp_path, alice(KEY), key=KEY) as w:
        await w.until(lambda: w.emu.push.subscriptions())
        w.emu.push.duplicates, w.emu.push.duplicate_delay = 1, 1.5  # the copy comes after the round is done
        before = len(w.of(ALICE))
        w.emu.create_event(summary="once", start=at(2), end=at(3))
        await w.until(lambda: len(w.emu.push.deliveries()) == 2 and w.emu.push.pending() == 0)
        first, copy = w.emu.push.deliveries()
        assert (first.copy, copy.copy, first.status, copy.status) == (0, 1, 200, 200)
        assert first.event_id == copy.event_id
        await asyncio.sleep(2.0)  # time for a second round, which must not come
        assert len(w.of(ALICE)) == before + 1
        # Another change (another event_id) is not taken for a duplicate.
        w.emu.push.duplicates = 0
        w.emu.create_event(summary="twice", start=at(4), end=at(5))
        await pushed_round(w, ALICE, before + 1)
        assert await w.titles() == ["once", "twice"]


async def test_two_accounts_of_one_app_are_both_triggered_by_one_delivery(tmp_path: Path) -> None:
    def accounts(emu: FeishuEmulator, url: str) -> list[dict[str, Any]]:
        return [feishu_account(emu, url, ALICE), feishu_account(emu, url, "bob")]

    async with running(tmp_path, accounts) as w:
        await w.until(lambda: len(w.emu.requests("/events/subscription")) == 2)
        assert w.emu.push.subscriptions() == [(APP, w.emu.primary_id)]  # one per app and calendar
        assert await w.push_state("bob") == await w.push_state(ALICE) == "pushed until unsubscribed"
        a, b = len(w.of(ALICE)), len(w.of("bob"))
        w.emu.create_event(summary="shared", start=at(2), end=at(3))
        await pushed_round(w, ALICE, a)
        await pushed_round(w, "bob", b)
        assert len(w.emu.push.deliveries()) == 1
        assert {c[0] for c in w.changes.seen if c[1] == "upsert"} == {ALICE, "bob"}


async def settled_state(w: World, account: str) -> str:
    """The calendar's push state once the service has set it (its subscribe step runs in the background)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND
    while (state := await w.push_state(account)) is None:
        assert loop.time() < deadline, "no push state within the bound"
        await asyncio.sleep(0.05)
    return state


async def test_a_tenant_account_is_polled_and_status_says_why(tmp_path: Path) -> None:
    def accounts(emu: FeishuEmulator, url: str) -> list[dict[str, Any]]:
        return [feishu_account(emu, url, "tenant", kind="tenant"), feishu_account(emu, url, "unset", push=None)]

    async with running(tmp_path, accounts) as w:
        state = await settled_state(w, "tenant")
        assert state.startswith("polled: ") and "user_access_token" in state, state
        assert await settled_state(w, "unset") == "polled: no push settings (verification_token)"
        assert w.emu.push.subscriptions() == [] and w.emu.requests("/events/subscription") == []
        no_secret_in("\n".join(f"{s.account} {s.push}" for s in await w.store.status()))


class Run:
    """``calbridge -v run`` as a process (the real clock), its stderr read line by line as it comes."""

    def __init__(self, config: Path, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "calbridge.cli.main", "-v", "-c", str(config), "run",
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **env})  # fmt: skip
        self.lines: list[str] = []
        self.out = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while sum(bool(re.search(pattern, line)) for line in list(self.lines)) < count:
            assert self.proc.poll() is None, self.lines
            assert time.monotonic() < deadline, f"no {count} lines matching {pattern!r} in {self.lines}"
            time.sleep(0.05)

    def stop(self, timeout: float) -> int:
        self.proc.send_signal(signal.SIGTERM)
        self.out, _ = self.proc.communicate(timeout=timeout)
        self._reader.join(5)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "calbridge.cli.main", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **env})  # fmt: skip


def write_config(tmp_path: Path, emu: FeishuEmulator, base_url: str, port: int) -> tuple[Path, dict[str, str]]:
    """A config file whose secrets come from the environment (returned), as a deployment's would."""
    entry = feishu_account(emu, base_url, ALICE, key=KEY)
    env = {"FEISHU_APP_SECRET": entry["auth"]["app_secret"], "FEISHU_RT": entry["auth"]["refresh_token"],
           "FEISHU_VERIFICATION_TOKEN": TOKEN, "FEISHU_ENCRYPT_KEY": KEY}  # fmt: skip
    entry["auth"].update(app_secret="${FEISHU_APP_SECRET}", refresh_token="${FEISHU_RT}")
    entry["push"] = {"verification_token": "${FEISHU_VERIFICATION_TOKEN}", "encrypt_key": "${FEISHU_ENCRYPT_KEY}"}
    doc = {"store": "sqlite:///mirror.db", "window": {"past": "30d", "future": "90d"},
           "service": {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}", "poll": "1h",
                       "drain": "5s"},
           "accounts": [entry]}  # fmt: skip
    path = tmp_path / "calbridge.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, env


ROUND_LINE = r"^alice/primary: (full|incremental) round, \d+ pages; events (\d+) upserted"


def test_calbridge_run_receives_a_change_by_push_and_unsubscribes_on_the_way_out(tmp_path: Path) -> None:
    emu = FeishuEmulator()
    port = free_port()
    with ThreadedServer(emu.make_app) as server:
        config, env = write_config(tmp_path, emu, server.url, port)
        run = Run(config, env, "--unsubscribe")
        try:
            run.wait_for(rf"listening on 127\.0\.0\.1:{port}$")
            outcome = emu.push.configure(APP, verification_token=TOKEN, encrypt_key=KEY,
                                         request_url=f"http://127.0.0.1:{port}/push/feishu").result(BOUND)  # fmt: skip
            assert outcome is not None and outcome.ok, outcome
            run.wait_for(r"^alice/primary: full round, ")
            deadline = time.monotonic() + BOUND
            while emu.push.subscriptions() != [(APP, emu.primary_id)]:
                assert time.monotonic() < deadline, run.lines
                time.sleep(0.05)
            status = cli(config, env, "status")
            assert status.returncode == 0 and "pushed until unsubscribed" in status.stdout, status
            started = time.monotonic()
            emu.create_event(summary="by push", start=at(2), end=at(3))
            run.wait_for(r"^alice/primary: incremental round, \d+ pages; events 1 upserted", timeout=BOUND)
            assert time.monotonic() - started < BOUND
            events = cli(config, env, "events", "--format", "jsonl")
            assert [json.loads(line)["title"] for line in events.stdout.splitlines()] == ["by push"]
            code = run.stop(timeout=30)
        finally:
            run.kill()
        assert code == 0, run.lines
        assert emu.push.subscriptions() == []  # --unsubscribe removed it on the way out
        assert [r["path"].rsplit("/", 1)[-1] for r in emu.requests("/events/unsub")] == ["unsubscription"]
        assert [d.status for d in emu.push.deliveries()] == [200]
        after = cli(config, env, "status")
    assert "pushed" not in after.stdout
    texts = ["\n".join(run.lines), run.out, status.stdout, status.stderr, events.stdout, events.stderr,
             after.stdout, after.stderr, config.read_text()]  # fmt: skip
    no_secret_in(*texts)
    for text in texts:
        assert env["FEISHU_APP_SECRET"] not in text and env["FEISHU_RT"] not in text


@pytest.mark.parametrize(
    ("push", "message"),
    [({"encrypt_key": KEY}, "accounts[0].push.verification_token: required"),
     ({"verification_token": TOKEN, "encrypt": KEY}, "accounts[0].push.encrypt: unknown key"),
     ("${FEISHU_VERIFICATION_TOKEN}", "accounts[0].push:")],
)  # fmt: skip
@pytest.mark.parametrize("command", ["run", "check-config"])
def test_a_bad_push_section_exits_2_naming_the_place(
    tmp_path: Path, push: Any, message: str, command: str
) -> None:  # fmt: skip
    emu = FeishuEmulator()
    config, env = write_config(tmp_path, emu, "http://127.0.0.1:9", free_port())
    doc = yaml.safe_load(config.read_text())
    doc["accounts"][0]["push"] = push
    config.write_text(yaml.safe_dump(doc))
    proc = cli(config, env, command)
    assert proc.returncode == 2, proc
    assert proc.stderr.startswith(f"calbridge: {message}"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stdout == ""
    no_secret_in(proc.stderr)


async def test_a_restart_reuses_the_subscription_and_a_change_still_arrives_by_push(tmp_path: Path) -> None:
    emu = FeishuEmulator()
    with ThreadedServer(emu.make_app) as server:
        async with running(tmp_path, alice(KEY), key=KEY, served=(emu, server)) as first:
            await first.until(lambda: emu.push.subscriptions())
            accounts, port = first.accounts, first.port
        assert emu.push.subscriptions() == [(APP, emu.primary_id)]  # a stop without --unsubscribe keeps it
        subscribed = len(emu.requests("/events/subscription"))
        emu.create_event(summary="while down", start=at(2), end=at(3))  # its delivery finds nobody
        async with running(tmp_path, alice(KEY), configure=False, served=(emu, server), accounts=accounts,
                           port=port) as again:  # fmt: skip
            assert await again.titles() == ["while down"]  # the round at start caught up
            assert await settled_state(again, ALICE) == "pushed until unsubscribed"
            before = len(again.of(ALICE))
            emu.create_event(summary="after", start=at(4), end=at(5))
            await pushed_round(again, ALICE, before)
            assert await again.titles() == ["after", "while down"]
            assert not again.of(ALICE)[before].full
        assert len(emu.requests("/events/subscription")) == subscribed  # reused, not subscribed anew


async def test_calendars_all_subscribes_every_calendar_and_a_shared_one_is_pushed(tmp_path: Path) -> None:
    emu = FeishuEmulator()
    team = emu.new_calendar("team")
    with ThreadedServer(emu.make_app) as server:
        entry = feishu_account(emu, server.url, ALICE)
        del entry["calendars"]  # calendars: all
        async with running(tmp_path, alice(None), served=(emu, server), accounts=[entry]) as w:
            await w.until(lambda: len(emu.push.subscriptions()) == 2)
            assert {c for _, c in emu.push.subscriptions()} == {emu.primary_id, team}
            await w.until(lambda: len({r.calendar_id for r in w.of(ALICE)}) == 2)
            before = len(w.of(ALICE))
            emu.create_event(summary="team event", start=at(2), end=at(3), calendar_id=team)
            await pushed_round(w, ALICE, before)
            assert [r.calendar_id for r in w.of(ALICE)[before:]] == [team]
            assert await w.titles() == ["team event"]


async def test_a_plain_app_and_an_encrypted_app_share_the_endpoint(tmp_path: Path) -> None:
    other = "cli_other_encrypted"

    def accounts(emu: FeishuEmulator, url: str) -> list[dict[str, Any]]:
        emu.apps[other] = "other-app-secret"
        carol = feishu_account(emu, url, "carol", app=other, key=KEY)
        carol["push"]["verification_token"] = TOKEN + "-other"
        return [feishu_account(emu, url, ALICE), carol]

    async with running(tmp_path, accounts) as w:  # the demo app plain, its console set by `running`
        url = f"{w.public_url}/push/feishu"
        saving = w.emu.push.configure(other, verification_token=TOKEN + "-other", encrypt_key=KEY, request_url=url)
        outcome = await asyncio.wrap_future(saving)
        assert outcome is not None and outcome.ok and outcome.encrypted, outcome
        await w.until(lambda: len(w.emu.push.subscriptions()) == 2)
        a, c = len(w.of(ALICE)), len(w.of("carol"))
        w.emu.create_event(summary="both apps", start=at(2), end=at(3))
        await pushed_round(w, ALICE, a)
        await pushed_round(w, "carol", c)
        await w.until(lambda: w.emu.push.pending() == 0)
        by_app = sorted((d.app_id, d.encrypted, d.status) for d in w.emu.push.deliveries())
        assert by_app == [(APP, False, 200), (other, True, 200)]


async def test_a_redelivery_after_a_restart_is_still_a_duplicate(tmp_path: Path) -> None:
    emu = FeishuEmulator()
    with ThreadedServer(emu.make_app) as server:
        async with running(tmp_path, alice(None), served=(emu, server)) as first:
            await first.until(lambda: emu.push.subscriptions())
            emu.push.duplicates, emu.push.duplicate_delay = 1, 3.0  # the copy comes once restarted
            before = len(first.of(ALICE))
            emu.create_event(summary="once", start=at(2), end=at(3))
            await pushed_round(first, ALICE, before)
            accounts, port = first.accounts, first.port
        async with running(tmp_path, alice(None), configure=False, served=(emu, server), accounts=accounts,
                           port=port) as again:  # fmt: skip
            started = len(again.of(ALICE))
            await again.until(lambda: emu.push.pending() == 0)
            copies = [(d.copy, d.status) for d in emu.push.deliveries()]
            assert copies == [(0, 200), (1, 200)]  # the copy reached the restarted service
            await asyncio.sleep(1.5)  # time for a round, which must not come: the store remembers the event_id
            assert len(again.of(ALICE)) == started
