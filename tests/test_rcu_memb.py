"""memb-specific behaviour: auto-registration, nesting in the counter, and why two flips.

The two-flip tests force the preemption the module comment of ``rcu_pgdat.rcu.memb``
describes (a reader that loaded the global counter and stores it after a flip) with a
``GateScheduler``, and show that a grace period with fewer or differently ordered
flips lets an updater free an object a reader still holds.
"""

from __future__ import annotations

import threading

import pytest

from rcu_pgdat import sched
from rcu_pgdat.errors import UnbalancedUnlockError, UnregisteredThreadError, UsageError
from rcu_pgdat.rcu import Memb
from test_rcu_support import (
    HANDSHAKE,
    Background,
    GateScheduler,
    ReaderThread,
    use_after_free_program,
)


class SingleFlipMemb(Memb):
    """Broken: one flip per grace period."""

    def _wait_for_readers(self) -> None:
        self._flip_and_wait(self._registry.snapshot())


class FlipWaitFlipMemb(Memb):
    """Broken: two flips, but it waits only after the first."""

    def _wait_for_readers(self) -> None:
        self._flip_and_wait(self._registry.snapshot())
        self._flip_and_wait([])


class Obj:
    def __init__(self) -> None:
        self.alive = True


@pytest.mark.parametrize(("cls", "stale", "is_broken"), [
    pytest.param(Memb, "before-gp", False, id="real-stale-before-gp"),
    pytest.param(SingleFlipMemb, "before-gp", True, id="single-flip-stale-before-gp"),
    pytest.param(Memb, "between-flips", False, id="real-stale-between-flips"),
    pytest.param(FlipWaitFlipMemb, "between-flips", True,
                 id="flip-wait-flip-stale-between-flips"),
])
def test_reader_preempted_between_load_and_store(cls: type[Memb], stale: str,
                                                 is_broken: bool) -> None:
    gates = GateScheduler()
    store = gates.gate("reader", "memb:read_lock:store")
    box = [Obj()]
    held: dict[str, Obj] = {}
    alive_at_end: list[bool] = []
    with sched.install(gates):
        flavor = cls()

        def start_reader() -> ReaderThread:
            reader = ReaderThread(flavor, "reader",
                                  inside=lambda: held.update(obj=box[0]),
                                  leaving=lambda: alive_at_end.append(held["obj"].alive))
            assert store.arrived.wait(HANDSHAKE)    # loaded the counter, not stored
            return reader

        if stale == "before-gp":
            # The reader loads phase 0, then a whole grace period runs.
            reader = start_reader()
            flavor.synchronize()
        else:
            # A grace period stops before its second flip; the reader loads the phase
            # of the first flip; then the grace period completes.
            second_flip = gates.gate("gp1", "memb:gp:flip", nth=2)
            gp1 = Background(flavor.synchronize, "gp1")
            assert second_flip.arrived.wait(HANDSHAKE)
            reader = start_reader()
            second_flip.open()
            gp1.join()
        store.open()                    # the reader stores a stale phase and enters
        reader.start()
        (rec,) = flavor.readers()
        assert repr(rec).endswith(f"phase={0 if stale == 'before-gp' else 1}>")
        old = box[0]
        box[0] = Obj()

        def update() -> None:
            flavor.synchronize()
            old.alive = False           # "free" the object the reader holds

        gp2 = Background(update, "gp2")
        returned_early = gates.settle(gp2) is None
        reader.finish()
        gp2.join()
        flavor.shutdown()
    assert alive_at_end == [not is_broken]
    assert returned_early == is_broken


@pytest.mark.parametrize(("cls", "is_broken"), [(Memb, False), (SingleFlipMemb, True),
                                                (FlipWaitFlipMemb, True)])
def test_two_flips_under_pct_schedules(cls: type[Memb], is_broken: bool) -> None:
    """PCT schedules (few, well-placed preemptions) find the stale-phase reader on
    their own; the real flavor survives the same seeds."""
    result = sched.sweep(use_after_free_program(cls), "pct", range(200),
                         stop_at_first=True)
    assert bool(result.failing_seeds) == is_broken, result.first


def test_first_read_lock_registers_the_thread() -> None:
    flavor = Memb()
    names: list[list[str]] = []

    def reader() -> None:
        flavor.read_lock()
        names.append([r.name for r in flavor.readers()])
        flavor.read_unlock()
        flavor.register_thread()        # already registered: harmless
        flavor.unregister_thread()
        names.append([r.name for r in flavor.readers()])
        flavor.read_lock()              # registers again
        flavor.read_unlock()
        names.append([r.name for r in flavor.readers()])
        flavor.unregister_thread()

    Background(reader, "auto").join()
    assert names == [["auto"], [], ["auto"]]


def test_nesting_lives_in_the_counter() -> None:
    flavor = Memb()
    for _ in range(3):
        flavor.read_lock()
    (rec,) = flavor.readers()
    assert repr(rec) == "<MembReader MainThread nesting=3 phase=0>"
    assert "phase=0" in repr(flavor) and "gp_seq=0" in repr(flavor)
    for _ in range(3):
        flavor.read_unlock()
    assert repr(rec) == "<MembReader MainThread nesting=0>"
    with pytest.raises(UnbalancedUnlockError, match="without a matching read_lock"):
        flavor.read_unlock()
    flavor.synchronize()
    assert "gp_seq=2 completed=1" in repr(flavor)


def test_unbalanced_unlock_in_a_fresh_thread() -> None:
    flavor = Memb()
    with pytest.raises(UnbalancedUnlockError, match="not registered"):
        Background(flavor.read_unlock, "fresh").join()


def test_unregister_misuse() -> None:
    flavor = Memb()
    with pytest.raises(UnregisteredThreadError):
        flavor.unregister_thread()
    flavor.read_lock()
    with pytest.raises(UsageError, match="inside a read-side section"):
        flavor.unregister_thread()
    flavor.read_unlock()
    flavor.unregister_thread()


def test_two_live_threads_with_one_name_are_refused() -> None:
    flavor = Memb()
    hold = threading.Event()

    def section(wait: bool) -> None:
        flavor.read_lock()
        assert hold.wait(HANDSHAKE) or not wait
        flavor.read_unlock()

    first = Background(lambda: section(True), "twin")
    base = sched.Scheduler()
    assert base.wait_until(lambda: len(flavor.readers()) == 1, "first twin", HANDSHAKE)
    with pytest.raises(UsageError, match="unique name"):
        Background(flavor.read_lock, "twin").join()
    hold.set()
    first.join()
    Background(lambda: section(False), "twin").join()   # the first twin is gone
