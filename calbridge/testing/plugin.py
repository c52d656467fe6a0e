"""calbridge's pytest plugin (the ``pytest11`` entry point): fixtures for provider-plugin authors.

Loaded automatically wherever calbridge is installed:

- ``calbridge_emulators`` (session): an :class:`~calbridge.testing.kit.EmulatorPool`;
  ``calbridge_emulators.serve("google")`` starts (once) the emulator a provider ships, found through
  its ``calbridge.emulators`` entry point (or, the fallback, its plugin's ``create_emulator()``), on
  loopback (HTTPS with a throwaway CA when the emulator asks for TLS). Third-party plugins' emulators
  work the same way.
- ``calbridge_emulator_names``: the installed providers that ship an emulator.
- ``calbridge_test_ca`` (session): the throwaway CA (trustme).
- ``calbridge_test_providers``: for one test, the kit's test doubles (the ``fake`` provider, group
  ``calbridge.testing.providers``) are visible to the default registry and to any ``calbridge``
  subprocess the test starts with ``os.environ``: it sets ``CALBRIDGE_TEST_PROVIDERS``. Returns their
  names. Without it, ``provider: fake`` is an unknown provider, as in production.
- ``calbridge_slow``: True under ``--slow``.

``--slow`` opts into long-running profiles: tests marked ``@pytest.mark.slow`` are skipped without it,
and property tests may read ``calbridge_slow`` to run thousands of steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the kit (engine, store, aiohttp) loads only when a fixture asks for it
    from .kit import EmulatorPool


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("calbridge")
    group.addoption(
        "--slow",
        action="store_true",
        default=False,
        help="calbridge: run slow tests and the long (thousands of steps) property-test profiles",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running profile (opt in with --slow)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow profile: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def calbridge_emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorPool]:
    from .kit import EmulatorPool

    pool = EmulatorPool(tmp_path_factory.mktemp("calbridge-ca"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def calbridge_test_ca(calbridge_emulators: EmulatorPool) -> Any:
    return calbridge_emulators.ca


@pytest.fixture(scope="session")
def calbridge_emulator_names(calbridge_emulators: EmulatorPool) -> list[str]:
    return calbridge_emulators.names()


@pytest.fixture
def calbridge_test_providers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from importlib.metadata import entry_points

    from ..registry import TEST_GROUP, TEST_PROVIDERS_ENV

    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    return sorted(ep.name for ep in entry_points(group=TEST_GROUP))


@pytest.fixture
def calbridge_slow(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--slow"))
