"""Expansion through ``/events/{id}/instances``: occurrences over the window, page by page; a series
the server no longer has expands to nothing; an instance that cannot be read is quarantined with
its own JSON text while the others land."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web

from calbridge.model import Kind
from calbridge.testing.context import make_context
from calbridge.testing.server import ThreadedServer
from calbridge_providers.graph import plugin

from .conftest import WINDOW, Harness, MirrorView, account_for
from .test_sync import seed


async def test_expand_uses_instances(harness: Harness) -> None:
    ids = seed(harness)
    await harness.sync()
    provider = harness.provider()
    out = [x async for x in provider.expand("primary", [ids["standup"]], window=WINDOW,
                                            view=MirrorView(harness.mirror))]  # fmt: skip
    assert out[0].series_ids == (ids["standup"],)
    assert sorted(e.start.utc() for e in out[0].occurrences) == harness.starts(ids["standup"])
    assert all(e.kind is Kind.OCCURRENCE and e.title == "Standup" for e in out[0].occurrences)


async def test_a_series_the_server_no_longer_has_expands_to_nothing(harness: Harness) -> None:
    ids = seed(harness)
    await harness.sync()
    harness.emulator.delete_event(ids["standup"])
    provider = harness.provider()
    out = [x async for x in provider.expand("primary", [ids["standup"]], window=WINDOW,
                                            view=MirrorView(harness.mirror))]  # fmt: skip
    assert [(x.series_ids, x.occurrences, x.quarantined) for x in out] == [((ids["standup"],), [], [])]


def instance(n: int, **fields: Any) -> dict[str, Any]:
    day = f"2026-03-{n:02d}T09:00:00.0000000"
    return {"id": f"M_{n}", "type": "occurrence", "seriesMasterId": "M", "subject": "Standup",
            "start": {"dateTime": day, "timeZone": "UTC"}, "end": {"dateTime": day, "timeZone": "UTC"},
            "originalStart": f"2026-03-{n:02d}T09:00:00Z", "originalStartTimeZone": "UTC", **fields}  # fmt: skip


async def test_an_unreadable_instance_is_quarantined_with_its_json_and_the_rest_lands(
    session: aiohttp.ClientSession,
) -> None:
    off_shape = '{"id": "M_3", "type": "occurrence", "seriesMasterId": "M", "subject": 5}'
    no_start = json.dumps(instance(4, start=None))
    master = {"id": "M", "type": "seriesMaster", "subject": "Standup", "originalStartTimeZone": "UTC",
              "start": {"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "UTC"},
              "end": {"dateTime": "2026-03-02T09:30:00.0000000", "timeZone": "UTC"},
              "recurrence": {"pattern": {"type": "daily"}, "range": {"type": "noEnd"}}}  # fmt: skip
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        if request.path.endswith("/events/M"):
            return web.json_response(master)
        if "page=2" in request.query_string:
            return web.json_response({"value": [instance(5)]})
        items = ", ".join([json.dumps(instance(2)), off_shape, no_start])
        link = f"{request.scheme}://{request.host}{request.path}?page=2"
        return web.Response(
            body=f'{{"value": [{items}], "@odata.nextLink": "{link}"}}', content_type="application/json"
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    with ThreadedServer(app) as srv:
        entry = {"name": "m", "base_url": f"{srv.url}/v1.0", "auth": {"kind": "token", "token": "t"}}
        provider = plugin.create(make_context(account_for(entry), session))
        out = [x async for x in provider.expand("primary", ["M"], window=WINDOW, view=MirrorView({}))]
    (expansion,) = out
    assert [e.id for e in expansion.occurrences] == ["M_2", "M_5"]
    assert all(e.kind is Kind.OCCURRENCE and e.title == "Standup" for e in expansion.occurrences)
    assert [(q.event_id, q.payload) for q in expansion.quarantined] == [("M_3", off_shape), ("M_4", no_start)]
    assert "subject" in expansion.quarantined[0].error and "missing start" in expansion.quarantined[1].error
    # the master fetched once (the mirror had none), then both instances pages
    assert [p.split("?")[0] for p in seen] == ["/v1.0/me/events/M"] + ["/v1.0/me/events/M/instances"] * 2
