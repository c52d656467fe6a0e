"""The Google Calendar v3 emulator shipped with calbridge: a real aiohttp server over in-memory
calendars, with a thread-safe Python API to change them while it serves.

::

    emu = GoogleEmulator()
    emu.state.add_calendar("me@example.com", primary=True, time_zone="Europe/Berlin")
    with ThreadedServer(emu.make_app()) as srv:
        account = emu.account_config(name="g", base_url=srv.url, ca_file=None)
        emu.state.put_event("me@example.com", {...})
        emu.state.inject(429, retry_after=1)       # the next API request is rate limited
        emu.state.expire_sync_tokens()             # the next incremental listing gets 410
        emu.state.requests                         # what it answered, with timestamps
        emu.state.push.max_lifetime = 3.0          # events.watch channels live 3 s at most
        emu.state.push.deliveries()                # the sync/exists messages sent and their answers

Implements :class:`calbridge.emulation.EmulatorApp` and the shared test API
(:class:`calbridge.testing.emulator_api.SeriesEmulatorAPI`: ``add_event``, ``cancel_occurrence``...).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._api import GoogleAPI
from ._app import make_app
from ._channels import Channel, Channels, Delivery
from ._demo import changes, seed
from ._state import GoogleState, RequestRecord

if TYPE_CHECKING:
    from calbridge.testing.scenario import Scenario

    from ._scenario import GoogleScenario

__all__ = ["Channel", "Channels", "Delivery", "GoogleEmulator", "GoogleState", "RequestRecord"]

CLIENT_ID = "calbridge-emulator.apps.googleusercontent.com"
CLIENT_SECRET = "emulator-client-secret"
REFRESH_TOKEN = "1//emulator-refresh-token"


class GoogleEmulator(GoogleAPI):
    """The google :class:`~calbridge.emulation.EmulatorApp`."""

    name = "google"
    tls = False

    def __init__(self, state: GoogleState | None = None) -> None:
        self.state = state or GoogleState()
        self.state.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)

    def make_app(self) -> Any:
        return make_app(self.state)

    def account_config(self, *, name: str, base_url: str, ca_file: str | None) -> dict[str, Any]:
        """A config ``accounts`` entry with ``authorized_user`` auth against this emulator."""
        base = base_url.rstrip("/")
        entry: dict[str, Any] = {
            "name": name,
            "provider": "google",
            "base_url": base,
            "auth": {
                "kind": "authorized_user",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
                "token_uri": f"{base}/token",
            },
            "calendars": ["primary"],
        }
        if ca_file is not None:
            entry["ca_file"] = ca_file
        return entry

    def service_account_key(
        self, path: Path, *, token_uri: str, email: str = "sync-bot@emulator.iam.gserviceaccount.com"
    ) -> Path:
        """Write a fresh service-account JSON key to ``path`` whose JWTs this emulator accepts."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()  # fmt: skip
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()  # fmt: skip
        self.state.add_service_account(email, public)
        info = {
            "type": "service_account", "project_id": "emulator", "private_key_id": "emulator-key-1",
            "private_key": private, "client_email": email, "client_id": "1000000000", "token_uri": token_uri,
        }  # fmt: skip
        path.write_text(json.dumps(info), encoding="utf-8")
        return path

    def seed_demo(self) -> None:
        seed(self.state, dt.datetime.now(dt.UTC).date())

    def demo_changes(self) -> list[str]:
        return changes(self.state, dt.datetime.now(dt.UTC).date())

    def load_scenario(self, scenario: Scenario, calendar_id: str | None = None) -> GoogleScenario:
        """Write a conformance scenario into a calendar of its own (see ``_scenario``)."""
        from ._scenario import load

        return load(self, scenario, calendar_id)
