"""The gateway tunes Python's cyclic collector once built (shared/gateway.py, tune_collector):
start-up objects frozen out of its way, young collections far apart. The CPU it saves is
measured by `make bench`, not here."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.gateway import tune_collector


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_start_up_objects_are_frozen_and_young_collections_spaced(collector: None) -> None:
    built_at_start_up = [object() for _ in range(10)] + [[] for _ in range(10)]
    tune_collector()
    assert gc.get_freeze_count() >= len(built_at_start_up) // 2  # the lists are tracked
    assert gc.get_threshold()[0] == 10_000
