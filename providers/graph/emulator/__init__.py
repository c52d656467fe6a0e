"""The Microsoft Graph emulator: HTTPS identity endpoints msal accepts plus the v1.0 calendar API.

Serve ``GraphEmulator().make_app()`` over TLS (``calbridge.testing.tls.make_test_ca``), then change
its mailbox from any thread through the Python API (``create_event``, ``update_event``,
``cancel_occurrence``, ``move_occurrence``...). Knobs for tests: ``fail_next`` (429 with a
fractional Retry-After, 503...), ``delay``, ``expire_delta_tokens``, ``empty_first_page``,
``skeletal_occurrences``, ``ignore_timezone_preference``, ``link_origin`` (emit links to another
host), and ``requests`` (a log of every request: method, url, headers, whether it was authorized).
Subscriptions push for real (``_push``: ``subscriptions()``, ``deliveries()``, ``lifecycle_event``,
``max_subscription_lifetime``, ``push`` settings).
It implements the shared test API (:class:`calbridge.testing.emulator_api.SeriesEmulatorAPI`).
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs
from aiohttp import web

from calbridge.testing.rounds import RoundLog

from ._api import GraphAPI
from ._app import GraphApp, _b64
from ._model import UTC, EventDef, Instance, build_rule, content, instances, render
from ._push import PushMixin
from ._service import ServiceMixin

if TYPE_CHECKING:
    from calbridge.testing.scenario import Scenario

    from ._scenario import GraphScenario

__all__ = ["GraphEmulator", "LoggedRequest", "build_rule"]

DeltaItem: TypeAlias = tuple[str, EventDef | None, Instance | None]
"""(id, its current definition and instance) of a delta entry; (id, None, None) for a removal."""


@attrs.define(kw_only=True)
class LoggedRequest:
    method: str
    url: str
    path: str
    headers: dict[str, str]
    authorized: bool
    time: float
    status: int | None = None
    end: float | None = None


class GraphEmulator(GraphAPI, ServiceMixin, PushMixin):
    """One tenant with mailboxes, calendars and events; thread-safe (one lock)."""

    name = "graph"
    tls = True

    def __init__(self, *, tenant: str = "contoso-tenant") -> None:
        self._lock = threading.RLock()
        self.tenant = tenant
        self.seq = 0
        self.generation = 1
        self.expiry_status = 410
        self._versions: dict[str, list[tuple[int, EventDef | None]]] = {}
        self._log: list[tuple[int, str]] = []  # (seq, event id) of every commit, in order
        self._delta_cache: dict[tuple[Any, ...], list[DeltaItem]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._calendars: dict[str, tuple[str, str]] = {}  # id → (user, name)
        self._counter = 0
        self.clients: dict[str, str] = {"calbridge-client": "emulator-secret"}
        self._access: dict[str, tuple[str, str]] = {}  # access token → ("app", client) | ("user", upn)
        self._refresh: dict[str, tuple[str, str]] = {}  # refresh token → (client, upn)
        self.token_requests = 0
        self.requests: list[LoggedRequest] = []
        self.round_log = RoundLog()  # the sync rounds served, per calendar (``calbridge.testing.rounds``)
        self._failures: list[tuple[int, str, float | None]] = []
        self.delay = 0.0
        self.skeletal_occurrences = True
        self.empty_first_page = False
        self.ignore_timezone_preference = False
        self.link_origin: str | None = None
        self.default_user = self.add_user("alice@contoso.example", display_name="Alice Example")
        self._init_push()

    # -- serving -----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        return GraphApp(self).build()

    def account_config(self, *, name: str, base_url: str, ca_file: str | None) -> dict[str, Any]:
        """A config ``accounts`` entry: client_credentials against this emulator (its root URL or ``…/v1.0``)."""
        root = base_url.rstrip("/")
        if root.endswith("/v1.0"):
            root = root[: -len("/v1.0")]
        client_id, secret = next(iter(self.clients.items()))
        entry: dict[str, Any] = {
            "name": name,
            "provider": "graph",
            "base_url": f"{root}/v1.0",
            "user": self.default_user,
            "auth": {
                "kind": "client_credentials",
                "tenant_id": self.tenant,
                "client_id": client_id,
                "client_secret": secret,
                "authority": root,
            },
            "calendars": ["primary"],
        }
        if ca_file is not None:
            entry["ca_file"] = str(ca_file)
        return entry

    def load_scenario(self, scenario: Scenario, calendar_name: str | None = None) -> GraphScenario:
        """Write a conformance scenario into a new calendar of the organizer's mailbox (see ``_scenario``)."""
        from ._scenario import load

        return load(self, scenario, calendar_name)

    # -- mailboxes -----------------------------------------------------------------------------

    def add_user(self, upn: str, *, display_name: str | None = None) -> str:
        with self._lock:
            self._users[upn] = {"id": secrets.token_hex(8), "name": display_name or upn, "default": None}
            self._users[upn]["default"] = self.add_calendar(upn, "Calendar")
            return upn

    def add_calendar(self, user: str, name: str) -> str:
        with self._lock:
            self._counter += 1
            cid = f"AAMkCal{self._counter:04d}AAA="
            self._calendars[cid] = (user, name)
            return cid

    def issue_refresh_token(self, user: str | None = None, *, client_id: str | None = None) -> str:
        """A refresh token for a delegated (``/me``) account; each use rotates it."""
        with self._lock:
            token = "rt-" + secrets.token_urlsafe(24)
            self._refresh[token] = (client_id or next(iter(self.clients)), user or self.default_user)
            return token

    def revoke_access_tokens(self) -> None:
        """Every issued access token now gets 401 (clients must refresh)."""
        with self._lock:
            self._access.clear()

    # -- knobs ---------------------------------------------------------------------------------

    def fail_next(self, status: int, *, count: int = 1, retry_after: float | None = None, code: str = "") -> None:
        """The next ``count`` API requests fail with ``status`` (and ``Retry-After`` when given)."""
        default = {429: "TooManyRequests", 503: "serviceNotAvailable", 504: "gatewayTimeout"}.get(
            status, "generalException"
        )
        with self._lock:
            self._failures.extend([(status, code or default, retry_after)] * count)

    def expire_delta_tokens(self, *, status: int = 410) -> None:
        """Every outstanding nextLink/deltaLink now answers ``status`` with error code syncStateNotFound."""
        with self._lock:
            self.generation += 1
            self.expiry_status = status

    def _take_injection(self) -> tuple[float, tuple[int, str, float | None] | None]:
        with self._lock:
            return self.delay, (self._failures.pop(0) if self._failures else None)

    def _log_request(self, request: web.Request) -> LoggedRequest:
        auth = request.headers.get("Authorization")
        entry = LoggedRequest(
            method=request.method,
            url=str(request.url),
            path=request.path,
            headers=dict(request.headers),
            authorized=bool(auth),
            time=time.monotonic(),
        )
        with self._lock:
            self.requests.append(entry)
        return entry

    # -- identity ------------------------------------------------------------------------------

    def _grant(self, form: Mapping[str, str], *, tenant: str, issuer: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.token_requests += 1
            client = form.get("client_id", "")
            secret = form.get("client_secret")
            if client not in self.clients or (secret is not None and secret != self.clients[client]):
                return 401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                    "error_codes": [7000215],
                }
            grant = form.get("grant_type")
            access = "at-" + secrets.token_urlsafe(24)
            body: dict[str, Any] = {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": access,
            }
            if grant == "client_credentials":
                if secret is None:
                    return 401, {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000218: client_secret required.",
                    }
                self._access[access] = ("app", client)
                return 200, body
            if grant == "refresh_token":
                old = form.get("refresh_token", "")
                owner = self._refresh.pop(old, None)
                if owner is None or owner[0] != client:
                    return 400, {
                        "error": "invalid_grant",
                        "error_description": "AADSTS70000: The refresh token is invalid.",
                        "error_codes": [70000],
                        "suberror": "bad_token",
                    }
                upn = owner[1]
                new = "rt-" + secrets.token_urlsafe(24)
                self._refresh[new] = owner
                self._access[access] = ("user", upn)
                oid = self._users[upn]["id"]
                now = int(time.time())
                claims = {
                    "aud": client,
                    "iss": issuer,
                    "iat": now,
                    "nbf": now,
                    "exp": now + 3600,
                    "oid": oid,
                    "sub": oid,
                    "tid": tenant,
                    "preferred_username": upn,
                    "name": self._users[upn]["name"],
                }
                id_token = ".".join((_b64(b'{"alg":"none","typ":"JWT"}'), _b64(_json(claims)), ""))
                body.update(
                    {
                        "scope": form.get("scope", ""),
                        "refresh_token": new,
                        "id_token": id_token,
                        "client_info": _b64(_json({"uid": oid, "utid": tenant})),
                    }
                )
                return 200, body
            return 400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003: unsupported grant."}

    def _principal(self, token: str) -> tuple[str, str] | None:
        with self._lock:
            return self._access.get(token)

    def _find_user(self, key: str) -> str | None:
        with self._lock:
            for upn, info in self._users.items():
                if key.lower() in (upn.lower(), info["id"]):
                    return upn
            return None

    # -- calendars -----------------------------------------------------------------------------

    def _default_calendar(self, user: str) -> str:
        return str(self._users[user]["default"])

    def _owns(self, user: str, calendar: str) -> bool:
        return self._calendars.get(calendar, ("", ""))[0] == user

    def _calendar_json(self, user: str, cid: str) -> dict[str, Any]:
        return {
            "id": cid,
            "name": self._calendars[cid][1],
            "isDefaultCalendar": cid == self._default_calendar(user),
            "canEdit": True,
            "owner": {"address": user, "name": self._users[user]["name"]},
        }

    def _calendars_json(self, user: str) -> list[dict[str, Any]]:
        with self._lock:
            return [self._calendar_json(user, c) for c, (u, _) in self._calendars.items() if u == user]

    def _calendar_for(self, calendar: str, user: str | None) -> str:
        upn = user or self.default_user
        return self._default_calendar(upn) if calendar == "primary" else calendar

    # -- delta ---------------------------------------------------------------------------------

    def _parse_window(self, start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
        if not start or not end:
            raise ValueError("startDateTime and endDateTime are required.")

        def parse(text: str) -> dt.datetime:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

        return parse(start), parse(end)

    def _current(self, eid: str) -> EventDef | None:
        versions = self._versions.get(eid)
        return versions[-1][1] if versions else None

    def _delta_items(self, state: Mapping[str, Any]) -> list[DeltaItem]:
        """What a delta page over the token's window reports, sorted by id, unrendered.

        A pure function of the token's window and ``since`` and of the change log, so it is computed
        once per change-log position and sliced by every page after it: a page costs what it holds,
        not the calendar (rendering happens in :meth:`_delta_page`). Call with the lock held.
        """
        ws, we = self._parse_window(state["ws"], state["we"])
        since, cal = state.get("since"), state["c"]
        key = (cal, ws, we, since, self.seq)
        found = self._delta_cache.get(key)
        if found is not None:
            return found
        out: dict[str, DeltaItem] = {}
        if since is None:
            for versions in self._versions.values():
                cur = versions[-1][1]
                if cur is not None and cur.calendar_id == cal:
                    for inst in instances(cur, ws, we):
                        out[inst.id] = (inst.id, cur, inst)
        else:
            # Only what changed after ``since``: the change log is in sequence order.
            changed = dict.fromkeys(eid for _, eid in self._log[bisect.bisect_right(self._log, since, key=_seq) :])
            for eid in changed:
                versions = self._versions[eid]
                cur = versions[-1][1]
                cur = cur if cur is not None and cur.calendar_id == cal else None
                old = next((d for s, d in reversed(versions) if s <= since), None)
                old = old if old is not None and old.calendar_id == cal else None
                new_map = {i.id: i for i in instances(cur, ws, we)}
                old_map = {i.id: i for i in instances(old, ws, we)}
                for iid, inst in new_map.items():
                    before = old_map.get(iid)
                    assert cur is not None
                    if before is None or old is None or content(old, before) != content(cur, inst):
                        out[iid] = (iid, cur, inst)
                gone = set(old_map) - set(new_map)
                if not new_map and (cur is None or cur.recurrence is None):
                    gone.add(eid)  # Graph reports changes outside the window as removals too
                for iid in gone:
                    out[iid] = (iid, None, None)
        items = sorted(out.values(), key=lambda item: item[0])
        if len(self._delta_cache) >= 8:
            self._delta_cache.pop(next(iter(self._delta_cache)))
        self._delta_cache[key] = items
        return items

    def _delta_page(
        self, state: Mapping[str, Any], size: int, *, skeletal: bool, **opts: Any
    ) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        """The (id, payload) of the page after ``state["after"]`` (at most ``size``) and whether more follow."""
        with self._lock:
            items = self._delta_items(state)
            after = state.get("after")
            first = 0 if after is None else bisect.bisect_right(items, after, key=lambda item: item[0])
            page = items[first : first + size]
            out = [
                (iid, {"@odata.type": "#microsoft.graph.event", "id": iid, "@removed": {"reason": "deleted"}})
                if defn is None
                else (iid, render(defn, inst, skeletal=skeletal, **opts))
                for iid, defn, inst in page
            ]
            return out, first + size < len(items)

    def _lookup(self, user: str, calendar: str | None, eid: str) -> tuple[EventDef, Instance | None] | None:
        defn = self._current(eid)
        if defn is not None:
            if self._calendars[defn.calendar_id][0] != user or (calendar and defn.calendar_id != calendar):
                return None
            return defn, None
        series_id, _, stamp = eid.rpartition("_")
        defn = self._current(series_id)
        if defn is None or defn.recurrence is None or self._calendars[defn.calendar_id][0] != user:
            return None
        try:
            slot = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            return None
        for inst in instances(defn, slot - dt.timedelta(days=1), slot + dt.timedelta(days=400)):
            if inst.id == eid:
                return defn, inst
        return None


def _seq(entry: tuple[int, str]) -> int:
    return entry[0]


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
