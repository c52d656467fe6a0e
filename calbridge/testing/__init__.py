"""Test helpers shipped for calbridge and for provider-plugin authors: emulator servers on
loopback, an in-memory secret store, provider contexts without an engine."""

from __future__ import annotations
