"""The MH store: the store conformance suite on a fresh MH root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asimap.store.base import Store
from asimap.store.mh import MHStore
from asimap.store.mh.profile import Profile
from store_conformance import StoreConformance, StoreFactory

NO_PROFILE = Profile(path=None, unseen=("unseen",))


class TestMHStore(StoreConformance):
    @pytest.fixture
    async def store_factory(self, tmp_path: Path) -> AsyncIterator[StoreFactory]:
        opened: list[MHStore] = []
        count = 0

        async def make() -> Store:
            nonlocal count
            count += 1
            store = await MHStore.open(
                tmp_path / f"mail{count}", locking=False, profile=NO_PROFILE
            )
            opened.append(store)
            return store

        yield make
        for store in opened:
            await store.close()
