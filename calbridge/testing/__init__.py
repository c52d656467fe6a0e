"""Test helpers shipped for calbridge, for provider-plugin authors and for store authors: emulator
servers on loopback, an in-memory secret store, provider contexts without an engine, the provider
conformance kit (``kit``), the store conformance suite (``store_kit``), and the scriptable ``fake``
provider (:mod:`calbridge.testing.fake`, a test double no production registry loads). The core never
imports this package (an import contract), but ``calbridge emulate``/``demo``, which serve emulators
with its helpers."""

from __future__ import annotations
