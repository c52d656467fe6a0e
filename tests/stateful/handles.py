"""Kit handles (:class:`calbridge.testing.kit.SeriesHandle`) over the built-in emulators: the kit's
:class:`SeriesBaseHandle` drives each through the shared emulator API; a handle only says how small
its pages are and clears the emulator's request log on :meth:`reset`.

Each :meth:`reset` moves to a fresh calendar of the running emulator, so one server serves many
examples. Events are timed and in UTC; a series is ``FREQ=DAILY|WEEKLY;COUNT=n`` in each provider's
native form (Google recurrence lines, Graph patternedRecurrence, Feishu bare RRULE).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from calbridge.testing.kit import SeriesBaseHandle


class GoogleHandle(SeriesBaseHandle):
    plugin_name = "google"
    page_size = 3
    api_path = "/calendar/v3"

    @staticmethod
    def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
        """The google provider always asks for 2,500 a page; ask for 3 (restored after the test)."""
        from calbridge_providers.google import _provider

        monkeypatch.setattr(_provider, "PAGE_SIZE", str(GoogleHandle.page_size))

    def reset(self) -> None:
        super().reset()
        self.emulator.state.clear_log()


class GraphHandle(SeriesBaseHandle):
    plugin_name = "graph"
    page_size = 2
    options: ClassVar[Mapping[str, Any]] = {"page_size": 2}
    api_path = "/v1.0/"

    def reset(self) -> None:
        super().reset()
        self.emulator.requests.clear()


class FeishuHandle(SeriesBaseHandle):
    plugin_name = "feishu"
    page_size = 50  # Feishu's minimum
    options: ClassVar[Mapping[str, Any]] = {"page_size": 50}
    api_path = "/open-apis/calendar/"

    push_token = "vt-kit-feishu-handle"  # the app's verification token in the emulated console

    def reset(self) -> None:
        super().reset()
        with self.emulator.lock:
            self.emulator.empty_pages = 0
        self.emulator.clear_log()

    def account(self, name: str) -> dict[str, Any]:
        """The kit's ``push`` account is a user one with push settings (a tenant token cannot
        subscribe); every other is the emulator's tenant account."""
        entry = super().account(name)
        if name == "push":
            app = entry["auth"]["app_id"]
            entry["auth"] = {**entry["auth"], "kind": "user", "refresh_token": self.emulator.issue_refresh_token(app)}
            entry["push"] = {"verification_token": self.push_token}
        return entry

    def push_address(self, url: str) -> None:
        """The app's request URL in the console (unchecked: the kit's receiver runs on the caller's loop)."""
        app = self.served.account_config("push")["auth"]["app_id"]
        self.emulator.push.configure(app, verification_token=self.push_token, request_url=f"{url}/push/feishu",
                                     challenge=False)  # fmt: skip

    def forged_pushes(self, genuine: Any) -> list[tuple[dict[str, str], bytes]]:
        """Feishu verifies per app: the genuine delivery under another verification token, and of another app."""
        hop = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}
        headers = {k: v for k, v in genuine.headers.items() if k not in hop}
        token = self.push_token.encode()
        return [(headers, genuine.body.replace(token, b"vt-kit-forged")),
                (headers, genuine.body.replace(b'"app_id":"cli_', b'"app_id":"cli_forged_'))]  # fmt: skip


HANDLES: dict[str, type[SeriesBaseHandle]] = {"google": GoogleHandle, "graph": GraphHandle, "feishu": FeishuHandle}
