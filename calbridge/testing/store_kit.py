"""The store conformance kit: a reusable suite of tests every store implementation passes, the way a
provider plugin passes :class:`~calbridge.testing.kit.ProviderConformance`.

It pins what the engine, the change stream and the CLI rely on, through the public methods of the
:class:`~calbridge.store.base.Store` roles only: a page and its cursor commit together or not at all;
what each write returns is exactly what it changed in the views; occurrences are replaced within a
window and exceptions shadow them; mark-and-sweep stays inside its scope and its calendar; status,
quarantine and secrets read back; one sync at a time; the change feed records exactly what each
write published, in number order, with no gap a reader could see while several writers commit;
push subscriptions (secrets in the slot), push states and delivery keys seen once. A store
implementation subclasses
:class:`StoreConformance` and gives it an ``open_store`` fixture::

    from calbridge.testing.store_kit import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def open_store(self, tmp_path):
            # Each call: a new handle (an async context manager) on this test's one fresh store.
            return lambda: MyStore(dsn_for(tmp_path))

The first handle a test opens finds an empty location and creates the store there; every later
call opens another handle on the same store (a reopen after a kill, a second process). Every test is
a plain (synchronous) pytest test that runs its own event loop, so no asyncio plugin is needed.
"""

from __future__ import annotations

import pytest

from ._store_build import StoreOpener
from ._store_expansion import ExpansionCases
from ._store_feed import FeedCases
from ._store_pages import PageCases
from ._store_push import PushCases
from ._store_state import StateCases
from ._store_sweep import SweepCases

__all__ = ["StoreConformance", "StoreOpener"]


class StoreConformance(PageCases, ExpansionCases, SweepCases, StateCases, FeedCases, PushCases):
    """Tests every store implementation must pass (see the module docstring).

    Subclass it (named ``Test...``) and override the ``open_store`` fixture: a callable returning a
    new handle on the test's one store, fresh and empty for each test. Messages are not pinned,
    except that a closed handle's :class:`~calbridge.errors.StoreError` says it is "not open".
    """

    @pytest.fixture
    def open_store(self) -> StoreOpener:
        raise NotImplementedError("override the open_store fixture in your subclass")
