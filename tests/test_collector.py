"""The gateway tunes Python's cyclic collector once built (shared/host/tuning.py, tune_process):
start-up objects frozen out of its way, young collections far apart. The CPU it saves is
measured by `make bench`, not here."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from shared.host.tuning import tune_process


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    flags = (logging._srcfile, logging.logThreads, logging.logProcesses)  # type: ignore[attr-defined]
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    logging._srcfile, logging.logThreads, logging.logProcesses = flags  # type: ignore[attr-defined]


def test_start_up_objects_are_frozen_and_young_collections_spaced(collector: None) -> None:
    built_at_start_up = [object() for _ in range(10)] + [[] for _ in range(10)]
    tune_process()
    assert gc.get_freeze_count() >= len(built_at_start_up) // 2  # the lists are tracked
    assert gc.get_threshold()[0] == 10_000
    record = logging.getLogger("t").makeRecord("t", logging.INFO, "f", 1, "m", (), None)
    assert record.thread is None and record.process is None  # not looked up per record
