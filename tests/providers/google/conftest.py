"""Fixtures: the google emulator served on loopback from its own thread and a provider wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from calbridge.provider import Provider
from calbridge.testing.server import ThreadedServer
from calbridge_providers.google.emulator import GoogleEmulator

from .support import CAL, make_provider


@pytest.fixture
def emu() -> GoogleEmulator:
    e = GoogleEmulator()
    e.state.add_calendar(CAL, summary="Alice", time_zone="Europe/Zurich", primary=True)
    return e


@pytest.fixture
def server(emu: GoogleEmulator) -> Iterator[ThreadedServer]:
    with ThreadedServer(emu.make_app()) as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def provider(emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession) -> Provider:
    return make_provider(emu, server, session)
