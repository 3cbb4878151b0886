"""Tracked memory: poison, quarantine, generations, and reports that read like KASAN's."""

from __future__ import annotations

import re
import threading
from typing import Any, ClassVar

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rcu_pgdat.check import (
    POISON,
    Collector,
    Kind,
    Oracles,
    Tracked,
    TrackedAllocator,
    ViolationError,
    generation,
    is_live,
    unwrap,
)
from rcu_pgdat.check.testing import STEP_TIMEOUT, Actors
from rcu_pgdat.errors import UsageError

QSBR = "rcu:qsbr"


class Zone(Tracked):
    name: str                           # annotated names are the fields
    free_pages: int

    def is_empty(self) -> bool:
        return self.free_pages == 0     # a method runs through checked fields


class Pgdat(Tracked):
    __fields__ = ("node_id", "node_zones")      # or listed (then annotate for mypy)
    node_id: int
    node_zones: tuple[Any, ...]


class HighZone(Zone):
    high: int
    LIMIT: ClassVar[int] = 3            # not a field


def make(quarantine: int = 8) -> tuple[Collector, Oracles, TrackedAllocator]:
    collector = Collector(stop_on_first=False)
    oracles = Oracles(collector)
    return collector, oracles, TrackedAllocator(oracles, quarantine=quarantine)


def read(obj: Any, field: str) -> Any:
    return getattr(obj, field)


# -- allocation and declaration ------------------------------------------------------------


def test_alloc_sets_fields_label_and_generation_per_label() -> None:
    collector, _, memory = make()
    zone = memory.alloc(Zone, "zone[0].Normal", name="Normal", free_pages=3)
    assert (zone.name, zone.free_pages) == ("Normal", 3)
    assert generation(zone) == 1 and is_live(zone)
    assert repr(zone) == "<Zone zone[0].Normal generation 1, live>"
    memory.free(zone)
    again = memory.alloc(Zone, "zone[0].Normal")
    assert generation(again) == 2                   # the same node's next incarnation
    assert again.name is None and again.free_pages is None    # kzalloc
    unnamed = memory.alloc(Zone)
    assert re.fullmatch(r"zone#\d+", unwrap(unnamed)._meta.label)
    assert collector.ok


def test_fields_are_declared_and_nothing_else_can_be_added() -> None:
    _, _, memory = make()
    zone = memory.alloc(Zone, "z")
    with pytest.raises(AttributeError):
        zone.extra = 1                              # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="has no field"):
        memory.alloc(Zone, "z2", nmae="typo")
    with pytest.raises(UsageError, match="TrackedAllocator.alloc"):
        Zone()
    with pytest.raises(UsageError, match="Tracked subclass"):
        memory.alloc(dict)                          # type: ignore[type-var]
    high = memory.alloc(HighZone, "h", name="High", free_pages=0, high=7)
    assert (high.name, high.high) == ("High", 7) and high.is_empty()
    assert HighZone.__tracked_fields__ == ("name", "free_pages", "high")


@pytest.mark.parametrize("body, message", [
    ({"__fields__": ("a", "a")}, "declared twice"),
    ({"__fields__": ("_a",)}, "public identifier"),
    ({"__fields__": "ab"}, "not a string"),
    ({"__fields__": ("a",), "a": 1}, "both a field"),
    ({"__fields__": ("a",), "__slots__": ("b",)}, "not __slots__"),
])
def test_bad_declarations_raise(body: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        type("Bad", (Tracked,), dict(body))
    with pytest.raises(UsageError, match="declared twice"):
        type("Bad", (Zone,), {"__fields__": ("name",)})


# -- free, poison, quarantine ------------------------------------------------------------------


def free_it(memory: TrackedAllocator, obj: Any) -> None:
    memory.free(obj)


def test_free_poisons_every_field_and_report_has_both_stacks() -> None:
    collector, _, memory = make()
    zone = memory.alloc(Zone, "zone[1].DMA", name="DMA", free_pages=5)
    free_it(memory, zone)
    assert zone._vals == [POISON, POISON]
    assert repr(zone) == "<Zone zone[1].DMA generation 1, freed, in quarantine>"
    with pytest.raises(ViolationError) as info:
        read(zone, "free_pages")
    (violation,) = collector.violations
    assert info.value.violation is violation
    assert violation.kind == Kind.USE_AFTER_FREE == "use-after-free"
    assert violation.title == "BUG: use-after-free in zone[1].DMA.free_pages"
    report = violation.format()
    assert "Read of zone[1].DMA.free_pages by thread MainThread, outside any read-side" \
        in report
    assert "The value read was poison." in report
    alloc_part, free_part = report.split("Allocated by thread MainThread")[1].split(
        "Freed by thread MainThread")
    assert "test_free_poisons_every_field_and_report_has_both_stacks" in alloc_part
    assert "free_it" in free_part                       # the free stack is the free's
    assert re.search(r"#0 read \S*tests/test_check_memory\.py", report)    # trimmed
    assert "rcu_pgdat/check" not in report and not re.search(r"0x[0-9a-f]{4,}", report)


def test_write_after_free_is_caught_and_keeps_the_poison() -> None:
    collector, oracles, memory = make()
    zone = memory.alloc(Zone, "z", free_pages=1)
    memory.free(zone)
    oracles.section_begin(QSBR, False)
    with pytest.raises(ViolationError):
        zone.free_pages = 9
    oracles.section_end(QSBR)
    assert zone._vals[1] is POISON
    (violation,) = collector.violations
    assert violation.kind == "use-after-free"
    assert "Write of z.free_pages by thread MainThread, inside read-side section(s) " \
        "rcu:qsbr" in violation.format()


def test_quarantine_is_bounded_and_evicted_objects_are_still_caught() -> None:
    collector, _, memory = make(quarantine=2)
    zones = [memory.alloc(Zone, f"z{i}") for i in range(3)]
    for zone in zones:
        memory.free(zone)
    assert memory.quarantined() == zones[1:]            # oldest left first
    assert repr(zones[0]).endswith("freed, out of quarantine>")
    with pytest.raises(ViolationError):
        read(zones[0], "name")
    assert "stacks dropped: the object left the quarantine" in collector.violations[0].format()
    with pytest.raises(ViolationError):
        read(zones[2], "name")
    assert "Freed by thread MainThread" in collector.violations[1].format()


def test_double_free_invalid_free_and_free_none() -> None:
    collector, oracles, memory = make()
    other = TrackedAllocator(oracles)
    zone = memory.alloc(Zone, "z")
    memory.free(None)
    memory.free(zone)
    memory.free(zone)                                   # reported, ignored
    memory.free({})                                     # type: ignore[arg-type]
    memory.free(other.alloc(Zone, "elsewhere"))
    assert collector.kinds() == ["double-free", "invalid-free", "invalid-free"]
    double, never, foreign = collector.violations
    assert double.title == "BUG: double-free of z"
    assert "Freed by thread MainThread" in double.format()
    assert never.title == "BUG: invalid-free of an object of type dict"
    assert "not from this allocator" in foreign.format()
    assert memory.freed == 1


# -- generations ---------------------------------------------------------------------------------


def test_reference_catches_reuse_of_the_same_node() -> None:
    collector, oracles, memory = make()
    pgdat = memory.alloc(Pgdat, "pgdat[1]", node_id=1, node_zones=())
    with oracles.boot():
        ref = oracles.deref(pgdat, QSBR)
    assert isinstance(ref, Pgdat) and ref == pgdat and ref in [pgdat]
    assert hash(ref) == hash(pgdat) and unwrap(ref) is pgdat
    assert ref.node_id == 1
    memory.reinit(pgdat, node_id=1, node_zones=("new",))
    assert pgdat.node_zones == ("new",)                 # raw: only liveness is known
    with pytest.raises(ViolationError):
        read(ref, "node_zones")
    (violation,) = collector.violations
    assert violation.kind == "stale-generation"
    assert "The reference was taken at generation 1." in violation.format()
    assert "Pgdat pgdat[1] generation 2, live" in violation.format()
    memory.free(ref)                                    # a free through the stale pointer
    assert collector.kinds() == ["stale-generation", "stale-generation"]
    assert is_live(pgdat) and not is_live(ref)


def test_readers_walking_during_a_reset_are_caught() -> None:
    collector, oracles, memory = make()
    pgdat = memory.alloc(Pgdat, "pgdat[2]", node_id=2, node_zones=())
    with oracles.boot():
        old = oracles.deref(pgdat, QSBR)
    with Actors("reader") as actors, memory.reinitializing(pgdat, node_id=2) as init:
        with pytest.raises(ViolationError):
            actors.run("reader", read, old, "node_id")          # stale reference
        with pytest.raises(ViolationError):
            actors.run("reader", read, pgdat, "node_id")        # raw, mid-reset
        init.node_zones = ("rebuilt",)                  # the initializer may write
        assert repr(pgdat) == "<Pgdat pgdat[2] generation 2, being initialized>"
    assert collector.kinds() == ["stale-generation", "use-after-free"]
    assert "being initialized" in collector.violations[1].format()
    assert init.node_zones == ("rebuilt",) and pgdat.node_id == 2   # live again
    assert len(collector.violations) == 2


def test_reinit_of_a_freed_object_leaves_the_quarantine() -> None:
    collector, _, memory = make()
    zone = memory.alloc(Zone, "z")
    memory.free(zone)
    memory.reinit(zone, name="back")
    assert memory.quarantined() == [] and zone.name == "back" and generation(zone) == 2
    with pytest.raises(UsageError, match="not from this allocator"):
        TrackedAllocator(Oracles()).reinit(zone)
    with memory.reinitializing(zone), pytest.raises(UsageError, match="already being"):
        memory.reinit(zone)
    assert collector.ok


# -- a read that overlaps a free ------------------------------------------------------------------


class PausingList(list):
    """Field storage that stops the reader thread right after its value load."""

    def __init__(self, items: list[Any]) -> None:
        super().__init__(items)
        self.loaded = threading.Event()
        self.resume = threading.Event()

    def __getitem__(self, index: Any) -> Any:
        value = super().__getitem__(index)
        if threading.current_thread().name == "reader":
            self.loaded.set()
            assert self.resume.wait(STEP_TIMEOUT)
        return value


@pytest.mark.parametrize("free_between", [True, False])
def test_read_overlapping_a_free_is_caught(free_between: bool) -> None:
    """Value loaded, then the free, then the state check: caught although the value
    was still good. The same read with the free after it is clean."""
    collector, _, memory = make()
    zone = memory.alloc(Zone, "z", free_pages=4)
    zone._vals = storage = PausingList(zone._vals)
    with Actors("reader") as actors:
        pending = actors.start("reader", read, zone, "free_pages")
        assert storage.loaded.wait(STEP_TIMEOUT)
        if free_between:
            memory.free(zone)
        storage.resume.set()
        if free_between:
            with pytest.raises(ViolationError):
                pending.result(STEP_TIMEOUT)
            assert "the read overlapped the change" in collector.violations[0].format()
        else:
            assert pending.result(STEP_TIMEOUT) == 4
            memory.free(zone)
    assert collector.kinds() == (["use-after-free"] if free_between else [])


# -- property: the checks agree with a plain model of the object's life ---------------------------

OPS = st.lists(st.tuples(st.sampled_from(["deref", "free", "reinit", "read_raw", "read_ref",
                                          "write_raw"]),
                         st.integers(0, 1)), max_size=25)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_checks_match_a_model_of_object_life(ops: list[tuple[str, int]]) -> None:
    """Each access is reported exactly when the model says the object (at the
    generation the reference saw) is no longer what it was."""
    collector, oracles, memory = make()
    objs = [memory.alloc(Zone, f"z{i}", free_pages=i) for i in range(2)]
    model = [{"gen": 1, "live": True} for _ in objs]
    refs: list[tuple[Any, int] | None] = [None, None]
    expected: list[str] = []
    for op, i in ops:
        obj, state = objs[i], model[i]
        if op == "deref":
            with oracles.boot():
                refs[i] = (oracles.deref(obj, QSBR), state["gen"])
        elif op == "free":
            memory.free(obj)
            expected += [] if state["live"] else ["double-free"]
            state["live"] = False
        elif op == "reinit":
            memory.reinit(obj, free_pages=i)
            state["gen"] += 1
            state["live"] = True
        elif op in ("read_raw", "write_raw"):
            if not state["live"]:
                expected.append("use-after-free")
            try:
                if op == "read_raw":
                    assert obj.free_pages == i
                else:
                    obj.free_pages = i
            except ViolationError:
                pass
        elif (taken := refs[i]) is not None:
            ref, seen = taken
            if seen != state["gen"]:
                expected.append("stale-generation")
            elif not state["live"]:
                expected.append("use-after-free")
            try:
                assert ref.free_pages == i
            except ViolationError:
                pass
    event(f"{len(set(expected))} kind(s) expected")
    assert collector.kinds() == expected
