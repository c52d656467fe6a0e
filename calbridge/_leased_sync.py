"""``SyncEngine.sync`` on a store shared by workers (:class:`~calbridge.lease.LeaseStore`): each
calendar is claimed like a worker claims it, synced under its fenced lease and given back; a calendar
a live worker holds is skipped and reported as held (not a failure)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import TYPE_CHECKING

from ._leasing import Held, keep_renewed
from ._run import CalendarResult, SyncReport
from .config import AccountConfig
from .lease import Key, Lease, LeaseStore

if TYPE_CHECKING:
    from .engine import SyncEngine


def default_worker() -> str:
    """A worker's name when none is given: ``hostname:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def sync(
    engine: SyncEngine, store: LeaseStore, accounts: list[AccountConfig], full: bool, report: SyncReport,
    *, worker: str,
) -> None:  # fmt: skip
    """One round of each calendar of ``accounts`` this process can claim, into ``report``."""
    held = Held(store, worker, engine.config.service.lease)
    renewing = asyncio.create_task(keep_renewed(held), name="calbridge sync leases")
    try:
        async with asyncio.TaskGroup() as tg:
            for account in accounts:
                tg.create_task(_account(engine, held, account, full, report))
        await engine.prune_feed()
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        await asyncio.shield(held.release_all())


async def _account(engine: SyncEngine, held: Held, account: AccountConfig, full: bool, report: SyncReport) -> None:
    ids = await engine.listed(account, report)
    if ids is None:
        return
    keys: list[Key] = [(account.name, c) for c in ids]
    await held.store.offer(keys)
    got = {lease.key: lease for lease in await held.claim(len(keys), keys=keys)}
    if len(got) < len(keys):
        holders = {(h.account, h.calendar_id): h.holder for h in await held.store.holdings()}
        for key in keys:
            if key not in got:
                holder = holders.get(key) or "another worker"
                report.calendars.append(CalendarResult(account=key[0], calendar_id=key[1], held_by=holder))
    async with asyncio.TaskGroup() as tg:
        for lease in got.values():
            tg.create_task(_one(engine, held, lease, full, report))


async def _one(engine: SyncEngine, held: Held, lease: Lease, full: bool, report: SyncReport) -> None:
    try:
        result = await engine.sync_calendar(
            lease.account, lease.calendar_id, full=full, lease=lease, stopping=lambda: not held.valid(lease.key)
        )
        report.calendars.append(result)
    finally:
        await asyncio.shield(held.release([lease.key]))
