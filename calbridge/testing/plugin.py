"""calbridge's pytest plugin (the ``pytest11`` entry point): fixtures for provider-plugin authors."""

from __future__ import annotations
