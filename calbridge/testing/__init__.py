"""Test helpers shipped for calbridge, for provider-plugin authors and for store authors: emulator
servers on loopback, an in-memory secret store, provider contexts without an engine, the provider
conformance kit (``kit``) and the store conformance suite (``store_kit``)."""

from __future__ import annotations
