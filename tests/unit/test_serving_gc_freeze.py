"""serving.gc_freeze on a model swap: the old model is collected, not frozen again."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from conf.loader import load_settings
from serving.consumer import ServingConsumer
from serving.metrics import ServingMetrics


@dataclass(eq=False)
class _Model:
    version: str
    name: str = "harmscan"
    runtime: str = "onnx"
    precision: str = "float32"
    int8_speedup: float | None = None
    discarded: bool = False
    cycle: list[object] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cycle.append(self)  # freed by the collector only, as sessions and graphs are

    def discard(self) -> None:
        self.discarded = True


class _Watcher:
    def __init__(self, model: _Model) -> None:
        self.ready: _Model | None = model

    def take(self) -> _Model | None:
        ready, self.ready = self.ready, None
        return ready


@pytest.fixture
def restore_gc() -> Iterator[None]:
    yield
    gc.unfreeze()


def _loop_between_batches(old: _Model, new: _Model, gc_freeze: bool) -> ServingConsumer:
    """A loop's state between two batches (no broker: a swap touches none of the clients)."""
    loop = ServingConsumer.__new__(ServingConsumer)
    settings = load_settings("ci", [f"serving.gc_freeze={gc_freeze}"], env={})
    loop.settings, loop.model, loop.metrics = settings, old, ServingMetrics()  # type: ignore[assignment]
    loop.watcher = _Watcher(new)  # type: ignore[assignment]
    return loop


@pytest.mark.usefixtures("restore_gc")
@pytest.mark.parametrize("gc_freeze", [True, False])
def test_a_swapped_out_model_is_collected_with_the_heap_frozen(gc_freeze: bool) -> None:
    old, new = _Model("1"), _Model("2")
    gone = weakref.ref(old)
    loop = _loop_between_batches(old, new, gc_freeze)
    loop._freeze_heap()  # as the loop starts: the first model is frozen with the rest
    del old
    loop._maybe_swap()
    assert loop.model is new
    gc.collect()  # what a frozen heap holds, this does not free
    assert gone() is None
    if gc_freeze:
        assert gc.get_freeze_count() > 0  # the heap is frozen again, the new model with it
