"""The handle calbridge's plugin kit drives. The emulator has calbridge's shared emulator API
(:mod:`calbridge.testing.emulator_api`), so the kit's :class:`BaseHandle` does everything: create,
update and delete events, expire cursors, inject 429/5xx (``fail_next``) and dropped connections.
The Example API has no recurring events, so the handle has no series methods (those tests skip)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from calbridge.testing.kit import BaseHandle


class ExampleHandle(BaseHandle):
    """An :class:`~calbridge.testing.kit.EmulatorHandle` over :class:`~calbridge_example.emulator.ExampleEmulator`."""

    plugin_name = "example"
    page_size = 2
    # Small pages, so the kit exercises paging and resuming mid-round.
    options: ClassVar[Mapping[str, Any]] = {"page_size": 2}
