"""Grace periods of both flavors with real threads, each check run against a broken variant.

Every test is parametrized over (real, broken) for each flavor; the broken one must be
caught by the same check that the real one passes.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from rcu_pgdat import sched
from rcu_pgdat.errors import ShutdownError, SynchronizeInReaderError, UsageError
from rcu_pgdat.rcu import MODES, QSBR, Memb, RCUFlavor
from test_rcu_support import (  # noqa: F401  (fixtures)
    EAGER_COOKIE,
    NO_WAIT,
    OVER_WAIT,
    REAL,
    Background,
    FlatMemb,
    Flavor,
    Immortal,
    ReaderThread,
    WaitRecorder,
    broken,
    make_checked_fixture,
    make_fixture,
    recorder_fixture,
    use_after_free_program,
    variants,
)

Make = Callable[[type[Flavor]], Flavor]


@pytest.mark.parametrize("kind", sorted(REAL))
def test_flavors_implement_the_protocol(kind: str) -> None:
    flavor = REAL[kind]()
    assert isinstance(flavor, RCUFlavor)
    assert flavor.name == kind
    assert flavor.rcu_barrier.__doc__ and flavor.synchronize.__doc__


@pytest.mark.parametrize(("cls", "is_broken"), variants(NO_WAIT) + [
    pytest.param(FlatMemb, None, id="memb-flat-nesting")])
@pytest.mark.parametrize("depth", [1, 3])
def test_grace_period_waits_for_reader_inside(recorder: WaitRecorder, make: Make,
                                              cls: type[Flavor], is_broken: bool | None,
                                              depth: int) -> None:
    if is_broken is None:               # a nesting bug shows only in nested sections
        is_broken = depth > 1
    flavor = make(cls)
    reader = ReaderThread(flavor, depth=depth).start()
    updaters = [Background(flavor.synchronize, f"updater-{i}") for i in range(3)]
    states = [recorder.settle(u) for u in updaters]
    caught = None in states
    # Nested levels: leaving an inner one must not end the section; the updater that
    # waits for the reader must still be waiting when it looks again.
    holders = [u for u, s in zip(updaters, states, strict=True)
               if s == f"{flavor.name} waits for reader reader"]
    for _ in range(depth - 1):
        reader.step()
        caught = caught or not all(recorder.still_waiting(u) for u in holders)
    assert caught == is_broken, states
    if not is_broken:
        assert any("waits for reader reader" in (s or "") for s in states), states
    reader.release()
    for u in updaters:
        u.join()
    reader.finish()


@pytest.mark.parametrize(("cls", "is_broken"), variants(OVER_WAIT))
def test_grace_period_does_not_wait_for_idle_reader(recorder: WaitRecorder, make: Make,
                                                    cls: type[Flavor],
                                                    is_broken: bool) -> None:
    flavor = make(cls)
    reader = ReaderThread(flavor).start()
    reader.release()                    # outside its section (QSBR: offline), alive
    updater = Background(flavor.synchronize, "updater")
    caught = recorder.settle(updater) is not None
    assert caught == is_broken
    reader.finish()                     # a finished thread no longer blocks anyone
    updater.join()


@pytest.mark.parametrize(("cls", "is_broken"), variants(broken(Immortal)))
@pytest.mark.parametrize("inside", [False, True], ids=["outside", "inside"])
def test_thread_that_exits_registered_does_not_hang(recorder: WaitRecorder,
                                                    make_checked: Make, cls: type[Flavor],
                                                    is_broken: bool, inside: bool) -> None:
    """Misuse: exiting without unregistering. Outside a section the thread is forgotten;
    inside one, grace periods raise (the section can never end) instead of hanging."""
    flavor = make_checked(cls)

    def leave_registered() -> None:
        flavor.register_thread()
        if inside:
            flavor.read_lock()

    Background(leave_registered, "careless").join()
    updater = Background(flavor.synchronize, "updater")
    stuck = recorder.settle(updater) is not None
    # (a memb thread outside a section never blocks anyone, dead or alive)
    assert stuck == (is_broken and (inside or isinstance(flavor, QSBR)))
    if stuck:                           # rescue the broken variant's grace period
        for rec in flavor.readers():
            rec.ctr = 0
            if isinstance(flavor, QSBR):
                rec.nesting = 0         # (memb's nesting lives in ctr)
    if inside and not is_broken:
        for call in (updater.join, flavor.synchronize, flavor.get_state, flavor.barrier):
            with pytest.raises(UsageError, match="'careless' exited inside 1 read-side"):
                call()
        with pytest.raises(UsageError, match="exited inside a read-side section"):
            Background(flavor.register_thread, "careless").join()   # name still taken
        with pytest.raises(UsageError, match="without running the 0 queued"):
            flavor.shutdown()
        return
    updater.join()
    if not is_broken:
        Background(flavor.register_thread, "careless").join()      # name free again


@pytest.mark.parametrize("read_side", MODES)
@pytest.mark.parametrize(("cls", "is_broken", "mode"), [
    pytest.param(REAL[kind], False, mode, id=f"{kind}-real-{mode}")
    for kind in REAL for mode in ("random", "pct")] + [
    pytest.param(NO_WAIT[kind], True, "pct", id=f"{kind}-broken-pct") for kind in REAL])
def test_controlled_schedules(cls: type[Flavor], is_broken: bool, mode: str,
                              read_side: str) -> None:
    """Seeded controlled schedules: the real flavors survive random and PCT schedules;
    PCT (few, well-placed preemptions) catches the broken one within the same seeds."""
    result = sched.sweep(use_after_free_program(cls, mode=read_side), mode, range(60),
                         stop_at_first=True)
    assert bool(result.failing_seeds) == is_broken, result.first
    if is_broken:
        assert result.first is not None
        assert "use after free" in result.first.errors[0].summary()


class Obj:
    """A shared object; ``alive`` goes false when an updater "frees" it."""

    def __init__(self, serial: int) -> None:
        self.serial = serial
        self.alive = True


def dead(obj: Obj) -> bool:
    return not obj.alive


@pytest.mark.parametrize(("cls", "is_broken"), variants(NO_WAIT))
def test_readers_never_see_freed_objects(make: Make, cls: type[Flavor],
                                         is_broken: bool) -> None:
    """Many readers, several updaters: an object is freed only after a grace period."""
    flavor = make(cls)
    box = [Obj(0)]
    swap = sched.Mutex("swap")
    stop = threading.Event()
    freed_seen: list[tuple[str, int]] = []

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        flavor.register_thread()
        for _ in range(25):
            depth = rng.randint(1, 3)
            for _ in range(depth):
                flavor.read_lock()
            obj = box[0]
            # Widen the window: linger until the object dies or a few ms pass. The
            # assertion below holds however long this takes; it only gives a broken
            # updater the time to show itself.
            sched.wait_until(partial(dead, obj), "linger", timeout=0.003)
            if not obj.alive:
                freed_seen.append((threading.current_thread().name, obj.serial))
            for _ in range(depth):
                flavor.read_unlock()
            if isinstance(flavor, QSBR):
                flavor.quiescent_state()
        flavor.unregister_thread()

    def updater(first: int) -> None:
        serial = first
        while not stop.is_set():
            serial += 1
            with swap:
                old, box[0] = box[0], Obj(serial)
            flavor.synchronize()
            old.alive = False

    readers = [Background(partial(reader, i), f"reader-{i}") for i in range(4)]
    updaters = [Background(partial(updater, i * 1_000_000), f"updater-{i}")
                for i in range(3)]
    for r in readers:
        r.join()
    stop.set()
    for u in updaters:
        u.join()
    assert bool(freed_seen) == is_broken, freed_seen[:5]
    assert box[0].alive


@pytest.mark.parametrize(("cls", "is_broken"), variants(EAGER_COOKIE))
def test_cookie_taken_inside_section_waits_for_it(recorder: WaitRecorder, make: Make,
                                                  cls: type[Flavor],
                                                  is_broken: bool) -> None:
    flavor = make(cls)
    cookies: dict[str, Any] = {}

    def take(name: str) -> Callable[[], None]:
        return lambda: cookies.__setitem__(name, flavor.get_state())

    # A: cookie taken while idle, inside a section; the next grace period must not
    # satisfy it before the section ends.
    first = ReaderThread(flavor, "reader-a", inside=take("a")).start()
    assert not flavor.poll_state(cookies["a"])
    gp1 = Background(flavor.synchronize, "gp1")
    assert recorder.settle(gp1) is not None          # waiting for reader-a
    caught = flavor.poll_state(cookies["a"])
    # B: cookie taken while gp1 is in progress; gp1 began before B's section, so even
    # its end does not satisfy B's cookie.
    second = ReaderThread(flavor, "reader-b", inside=take("b")).start()
    first.release()
    gp1.join()
    assert flavor.poll_state(cookies["a"])
    caught = caught or flavor.poll_state(cookies["b"])
    assert caught == is_broken
    gp2 = Background(flavor.synchronize, "gp2")
    assert recorder.settle(gp2) is not None          # waiting for reader-b
    second.release()
    gp2.join()
    assert flavor.poll_state(cookies["b"])
    first.finish()
    second.finish()


@pytest.mark.parametrize(("cls", "is_broken"), variants(NO_WAIT))
def test_cond_synchronize_waits_only_when_needed(recorder: WaitRecorder, make: Make,
                                                 cls: type[Flavor],
                                                 is_broken: bool) -> None:
    flavor = make(cls)
    done_cookie = flavor.get_state()
    flavor.synchronize()
    seq = flavor.gp_seq
    flavor.cond_synchronize(done_cookie)             # already elapsed: no grace period
    assert flavor.gp_seq == seq
    reader = ReaderThread(flavor).start()
    cookie = flavor.get_state()
    waiter = Background(lambda: flavor.cond_synchronize(cookie), "cond")
    caught = recorder.settle(waiter) is None
    assert caught == is_broken
    reader.release()
    waiter.join()
    assert flavor.poll_state(cookie)
    reader.finish()


@pytest.mark.parametrize("kind", sorted(REAL))
@pytest.mark.parametrize("call", ["synchronize", "barrier", "rcu_barrier",
                                  "cond_synchronize", "shutdown"])
def test_grace_period_wait_inside_section_is_refused(make_checked: Make, kind: str,
                                                     call: str) -> None:
    flavor = make_checked(REAL[kind])
    flavor.register_thread()
    cookie = flavor.get_state()
    flavor.synchronize()                             # cookie done: still refused below
    flavor.read_lock()
    args = (cookie,) if call == "cond_synchronize" else ()
    with pytest.raises(SynchronizeInReaderError, match="inside a read-side section"):
        getattr(flavor, call)(*args)
    flavor.read_unlock()
    getattr(flavor, call)(*args)                     # fine outside the section
    if call != "shutdown":
        flavor.unregister_thread()


@pytest.mark.parametrize("kind", sorted(REAL))
def test_calls_after_shutdown_raise(kind: str) -> None:
    flavor = REAL[kind]()
    ran: list[int] = []
    flavor.call_rcu(lambda: ran.append(1))
    flavor.shutdown()
    assert ran == [1]                                # pending callbacks ran first
    flavor.shutdown()                                # idempotent
    cookie = 2
    calls: list[Callable[[], object]] = [
        flavor.synchronize, flavor.barrier, flavor.get_state, flavor.register_thread,
        flavor.read_lock, flavor.read_unlock, flavor.unregister_thread,
        lambda: flavor.poll_state(cookie), lambda: flavor.cond_synchronize(cookie),
        lambda: flavor.call_rcu(lambda: None)]
    for call in calls:
        with pytest.raises(ShutdownError, match="after shutdown"):
            call()


@pytest.mark.parametrize("kind", sorted(REAL))
def test_reader_registered_before_shutdown_gets_shutdown_error(kind: str) -> None:
    flavor: Memb | QSBR = REAL[kind]()
    flavor.register_thread()
    flavor.read_lock()
    flavor.read_unlock()
    flavor.shutdown()
    with pytest.raises(ShutdownError):
        flavor.read_lock()
