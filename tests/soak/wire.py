"""What the fault soak must know of each provider's wire: which requests list a calendar, where a page
keeps its items and its next link, and how the provider says a cursor is dead."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

EMPTY = "soakempty"
"""The prefix of a page token (or query parameter) the soak mints for an empty page with a next link."""


@attrs.frozen(kw_only=True)
class Wire:
    """One provider's list requests and pages as the soak's middleware reads and forges them."""

    name: str
    api_path: str  # faults hit only requests whose path contains this (token endpoints stay clean)
    list_suffix: str  # the path of a listing (a sync page) ends with this
    cursors: tuple[str, ...]  # query parameters that carry a cursor (a dead-cursor answer needs one)
    page_param: str  # the query parameter of a mid-round page
    id_key: str
    corrupt_key: str  # a field the converter needs, set to the wrong type
    dead_status: int
    dead_body: Mapping[str, Any]
    limit_body: Mapping[str, Any]

    def items(self, page: Any) -> list[Any] | None:
        """The page's items (None: not a page this wire knows)."""
        holder = page.get("data") if self.name == "feishu" and isinstance(page, dict) else page
        if not isinstance(holder, dict):
            return None
        found = holder.get("value" if self.name == "graph" else "items")
        return found if isinstance(found, list) else None

    def empty_page(self, token: str, url: str) -> dict[str, Any]:
        """A page with no items whose next link is ``token`` (Google) or ``url`` (Graph); Feishu's
        emulator makes its own."""
        if self.name == "google":
            return {"kind": "calendar#events", "items": [], "nextPageToken": token}
        return {"value": [], "@odata.nextLink": url}

    def dead(self) -> bytes:
        return json.dumps(self.dead_body).encode()


GOOGLE = Wire(
    name="google",
    api_path="/calendar/v3/",
    list_suffix="/events",
    cursors=("syncToken", "pageToken"),
    page_param="pageToken",
    id_key="id",
    corrupt_key="start",
    dead_status=410,
    dead_body={"error": {"code": 410, "message": "Sync token is no longer valid, a full sync is required.",
                         "errors": [{"domain": "global", "reason": "fullSyncRequired"}], "status": "GONE"}},
    limit_body={"error": {"code": 429, "message": "Rate Limit Exceeded",
                          "errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded"}]}},
)  # fmt: skip

GRAPH = Wire(
    name="graph",
    api_path="/v1.0/",
    list_suffix="/calendarView/delta",
    cursors=("$skiptoken", "$deltatoken"),
    page_param="$skiptoken",
    id_key="id",
    corrupt_key="start",
    dead_status=410,
    dead_body={"error": {"code": "syncStateNotFound", "message": "The sync state generation is not found."}},
    limit_body={"error": {"code": "TooManyRequests", "message": "Too many requests."}},
)

FEISHU = Wire(
    name="feishu",
    api_path="/open-apis/calendar/",
    list_suffix="/events",
    cursors=("sync_token", "page_token"),
    page_param="page_token",
    id_key="event_id",
    corrupt_key="start_time",
    dead_status=400,
    dead_body={"code": 190008, "msg": "page_token or sync_token expired"},
    limit_body={"code": 99991400, "msg": "request trigger frequency limit"},
)

WIRES: dict[str, Wire] = {w.name: w for w in (GOOGLE, GRAPH, FEISHU)}
