"""The shipped Feishu / Lark emulator: a real aiohttp app plus a thread-safe Python API.

Serves the token endpoints (tenant, and user with rotating single-use refresh tokens),
``calendars/primary``, the calendar list, the events list with page_token/sync_token semantics
(sync tokens are positions in a change log; 190008 once :meth:`expire_sync_tokens` is called;
190009 for a sync_token with a time window; page_size 50–1000), event get with attendees, the
attendee list, ``instances`` (open interval, ≤ 2 years, paged) and ``instance_view`` (193103 from
40 days, 193104 from 1000 instances). Faults: :meth:`rate_limit` (429 + ``x-ogw-ratelimit-reset``),
:meth:`inject` (any status/code), :meth:`slow`; :attr:`empty_pages` makes the next list answers
empty with ``has_more`` true. Every request is logged (:meth:`requests`). Push: ``emu.push``
(:class:`~._push.PushHub`): the apps' console settings with the url_verification challenge, the
calendar event subscription endpoints, and ``changed_v4`` deliveries over HTTP (see README).

Usage::

    emu = FeishuEmulator()
    with ThreadedServer(emu.make_app) as srv:
        account = emu.account_config(name="acme-feishu", base_url=srv.url, ca_file=None)
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._api import FeishuAPI
from ._app import App

if TYPE_CHECKING:
    from calbridge.testing.scenario import Scenario

    from ._scenario import FeishuScenario

__all__ = ["FeishuEmulator"]

DEMO_APP_ID = "cli_calbridge_demo"


class FeishuEmulator(FeishuAPI):
    """An :class:`~calbridge.emulation.EmulatorApp` for Feishu and Lark, with the shared test API
    (:class:`calbridge.testing.emulator_api.SeriesEmulatorAPI`)."""

    name = "feishu"
    tls = False

    def __init__(self) -> None:
        super().__init__()
        self.demo_ids: dict[str, str] = {}

    def make_app(self) -> web.Application:
        return App(self).make()

    def account_config(self, *, name: str, base_url: str, ca_file: str | None) -> dict[str, Any]:
        config: dict[str, Any] = {
            "name": name,
            "provider": "feishu",
            "base_url": base_url,
            "auth": {"kind": "tenant", "app_id": DEMO_APP_ID, "app_secret": self.apps[DEMO_APP_ID]},
            "calendars": ["primary"],
        }
        if ca_file:
            config["ca_file"] = ca_file
        return config

    def seed_demo(self) -> None:
        """A week of sample events around today: a daily stand-up, a weekly review, an offsite."""
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.demo_ids = {
            "standup": self.create_event(
                summary="Daily stand-up",
                start=today + dt.timedelta(hours=1),
                end=today + dt.timedelta(hours=1.25),
                recurrence="FREQ=DAILY;COUNT=30",
                uid="demo-standup",
                attendees=[person("ou_alice", "Alice", "accept"), person("ou_bob", "Bob", "needs_action")],
            ),
            "review": self.create_event(
                summary="Weekly review",
                start=today + dt.timedelta(days=2, hours=6),
                end=today + dt.timedelta(days=2, hours=7),
                recurrence="FREQ=WEEKLY;BYDAY=TH",
                uid="demo-review",
                timezone="Asia/Shanghai",
                location={"name": "Room 5", "address": "Building A"},
            ),
            "offsite": self.create_event(
                summary="Team offsite",
                start=(today + dt.timedelta(days=10)).date(),
                end=(today + dt.timedelta(days=11)).date(),
                uid="demo-offsite",
            ),
            "lunch": self.create_event(
                summary="Lunch with Carol",
                start=today + dt.timedelta(days=1, hours=4),
                end=today + dt.timedelta(days=1, hours=5),
                uid="demo-lunch",
            ),
        }

    def demo_changes(self) -> list[str]:
        """Rename one event, cancel one stand-up, delete another event."""
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        ids = self.demo_ids
        self.update_event(ids["lunch"], summary="Lunch with Carol and Dan")
        self.cancel_occurrence(ids["standup"], today + dt.timedelta(days=3, hours=1))
        self.delete_event(ids["offsite"])
        return [
            "renamed 'Lunch with Carol' to 'Lunch with Carol and Dan'",
            "cancelled the stand-up in three days",
            "deleted 'Team offsite'",
        ]

    def load_scenario(self, scenario: Scenario, calendar_id: str | None = None) -> FeishuScenario:
        """Write a conformance scenario into a calendar of its own (see ``_scenario``)."""
        from ._scenario import load

        return load(self, scenario, calendar_id)


def person(user_id: str, name: str, rsvp: str = "accept", **extra: Any) -> dict[str, Any]:
    """A Feishu attendee payload (for seeding the emulator)."""
    return {
        "type": "user",
        "attendee_id": "at_" + user_id,
        "user_id": user_id,
        "display_name": name,
        "rsvp_status": rsvp,
        "is_optional": False,
        "is_organizer": False,
        "is_external": False,
        **extra,
    }


def room(room_id: str, name: str, rsvp: str = "accept") -> dict[str, Any]:
    """A Feishu meeting-room attendee payload (``type: resource``)."""
    return {
        "type": "resource",
        "attendee_id": "at_" + room_id,
        "room_id": room_id,
        "display_name": name,
        "rsvp_status": rsvp,
        "is_optional": False,
        "is_organizer": False,
        "is_external": False,
    }
