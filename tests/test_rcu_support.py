"""Shared helpers for the RCU flavor tests, and tests of the helpers themselves.

* ``REAL``: the real flavors by name; ``NO_WAIT``, ``EAGER_COOKIE``, ``OVER_WAIT``,
  ``FlatMemb``, ``Immortal``: broken variants the tests must catch; ``variants()``
  parametrizes a test over (real, broken) per flavor.
* ``make``: a fixture that builds flavors in each mode (``checked`` and ``fast``), so
  every correctness test that takes it runs against both read sides;
  ``make_checked``: the same in checked mode only, for tests of misuse detection.
* ``Background``: run a call in a named thread and see whether it returned.
* ``ReaderThread``: a reader held inside a section until the test releases it.
* ``WaitRecorder``: a scheduler that records which threads are blocked in a wait, so a
  test can wait until an updater has either returned or reached its wait (``settle``),
  or has looked again after the test changed something (``still_waiting``), with no
  sleeping and no timing assumption.
* ``GateScheduler``: holds one named thread at one schedule point until released,
  which forces a preemption exactly there.

Handshakes use ``threading.Event`` with generous timeouts: a timeout only turns a hang
into a failure; no test relies on one expiring.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rcu_pgdat import sched
from rcu_pgdat.rcu import CHECKED, MODES, QSBR, Memb
from rcu_pgdat.rcu.memb import NEST_MASK, PHASE, MembReader
from rcu_pgdat.rcu.qsbr import QSBRReader

#: Longest a handshake may take before the test fails instead of hanging.
HANDSHAKE = 5.0

Flavor = QSBR | Memb


# -- broken variants ------------------------------------------------------------------
# Each mixin is one plausible bug; ``broken(mixin)`` applies it to both flavors.


class NoWait:
    """Broken: a grace period that does not wait for readers."""

    def _wait_for_readers(self) -> None:
        pass


class EagerCookie:
    """Broken: the obvious cookie "current sequence plus one" (see ``_gpseq``)."""

    _gp: Any

    def get_state(self) -> int:
        return int(self._gp.seq) + 1


class OverWaitQSBR(QSBR):
    """Broken: offline threads are waited for as if they were online."""

    @staticmethod
    def _passed(rec: QSBRReader, gp: int) -> bool:
        return rec.ctr == gp


class OverWaitMemb(Memb):
    """Broken: the nesting check is forgotten, so idle readers of the old phase block."""

    @staticmethod
    def _active_old(rec: MembReader, gp: int) -> bool:
        return bool((rec.ctr ^ gp) & PHASE)


class FlatMemb(Memb):
    """Broken: the innermost read_unlock() of a nest ends the whole section."""

    def read_lock(self) -> None:
        depth = getattr(self._tls, "flat_depth", 0)
        if not depth:
            super().read_lock()
        self._tls.flat_depth = depth + 1

    def read_unlock(self) -> None:
        depth = getattr(self._tls, "flat_depth", 0)
        rec = self._own_record()
        if not depth or (rec is not None and rec.ctr & NEST_MASK):
            super().read_unlock()               # (raises when depth is 0)
        self._tls.flat_depth = depth - 1


class Immortal:
    """Broken: the registry never notices that a reader thread has exited."""

    def _add_record(self, record: Any) -> None:
        record.thread = threading.main_thread()
        super()._add_record(record)  # type: ignore[misc]


REAL: dict[str, type[Flavor]] = {"qsbr": QSBR, "memb": Memb}


def broken(mixin: type) -> dict[str, type[Flavor]]:
    """``mixin`` applied to each real flavor, by flavor name."""
    return {kind: type(f"{mixin.__name__}{cls.__name__}", (mixin, cls), {})
            for kind, cls in REAL.items()}


NO_WAIT = broken(NoWait)
EAGER_COOKIE = broken(EagerCookie)
OVER_WAIT: dict[str, type[Flavor]] = {"qsbr": OverWaitQSBR, "memb": OverWaitMemb}


def variants(bad: dict[str, type[Flavor]]) -> list[Any]:
    """Parameters ``(cls, is_broken)`` for each flavor: the real one and the broken one."""
    return [pytest.param(cls, is_broken, id=f"{kind}-{'broken' if is_broken else 'real'}")
            for kind in REAL
            for cls, is_broken in ((REAL[kind], False), (bad[kind], True))]


def _made(mode: str) -> Iterator[Callable[[type[Flavor]], Flavor]]:
    """Create flavors in ``mode`` for a test; each is shut down when the test ends."""
    made: list[Flavor] = []

    def factory(cls: type[Flavor]) -> Flavor:
        flavor = cls(mode=mode)
        made.append(flavor)
        return flavor

    yield factory
    for flavor in made:
        flavor.shutdown()


@pytest.fixture(name="make", params=MODES)
def make_fixture(request: pytest.FixtureRequest) -> Iterator[Callable[[type[Flavor]], Flavor]]:
    """Flavors in each mode: the test runs once per read side."""
    yield from _made(request.param)


@pytest.fixture(name="make_checked")
def make_checked_fixture() -> Iterator[Callable[[type[Flavor]], Flavor]]:
    """Flavors in checked mode, for tests of what only it detects."""
    yield from _made(CHECKED)


# -- a program for the controlled scheduler ----------------------------------------------


class Node:
    """A shared object; ``alive`` goes false when an updater "frees" it."""

    def __init__(self) -> None:
        self.alive = True


def use_after_free_program(cls: type[Flavor], sections: int = 3, updates: int = 2,
                           mode: str = CHECKED) -> Callable[[], dict[str, Callable[[], None]]]:
    """A program factory for ``sched.sweep``: one reader that checks, inside each
    section, that the node it picked up is alive; two updaters that replace the node,
    synchronize and free the old one. A too-short grace period fails the reader."""
    def make() -> dict[str, Callable[[], None]]:
        flavor = cls(mode=mode)
        box = [Node()]

        def reader() -> None:
            flavor.register_thread()
            for _ in range(sections):
                flavor.read_lock()
                sched.point("test:deref")
                node = box[0]
                sched.point("test:use")
                assert node.alive, "use after free"
                flavor.read_unlock()
                if isinstance(flavor, QSBR):
                    flavor.quiescent_state()
            flavor.unregister_thread()

        def updater() -> None:
            for _ in range(updates):
                sched.point("test:swap")
                old, box[0] = box[0], Node()
                flavor.synchronize()
                old.alive = False

        return {"reader": reader, "updater": updater, "updater2": updater}
    return make


# -- threads -----------------------------------------------------------------------------


class Background:
    """Runs ``fn`` in a thread named ``name``; ``done`` is set when it returns or raises."""

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.name = name
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self._fn = fn
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test by join()
            self.error = exc
        finally:
            self.done.set()

    def join(self) -> Any:
        """Wait for the call and return its result (re-raise its exception)."""
        assert self.done.wait(HANDSHAKE), f"{self.name} did not finish"
        self.thread.join(HANDSHAKE)
        if self.error is not None:
            raise self.error
        return self.result


def go_idle(flavor: Flavor) -> None:
    """Make the calling reader thread idle outside sections (QSBR: offline)."""
    if isinstance(flavor, QSBR):
        flavor.thread_offline()


class ReaderThread:
    """A reader that enters ``depth`` nested sections and stays until released.

    ``inside`` runs right after the reader entered (it may pick up a pointer),
    ``leaving`` right before its outermost ``read_unlock`` (it may check the pointer).
    ``step()`` releases one level at a time; after the last one the reader goes idle
    (``go_idle``) and waits for ``finish()`` before it unregisters and exits.
    """

    def __init__(self, flavor: Flavor, name: str = "reader", depth: int = 1,
                 inside: Callable[[], None] | None = None,
                 leaving: Callable[[], None] | None = None) -> None:
        self.flavor = flavor
        self.depth = depth
        self.entered = threading.Event()
        self.idle = threading.Event()
        self._inside = inside
        self._leaving = leaving
        self._steps = threading.Semaphore(0)
        self._stepped = threading.Semaphore(0)
        self._levels = depth             # levels still open (the test thread's count)
        self._finish = threading.Event()
        self.bg = Background(self._run, name)

    def _run(self) -> None:
        f = self.flavor
        f.register_thread()
        for _ in range(self.depth):
            f.read_lock()
        if self._inside is not None:
            self._inside()
        self.entered.set()
        for level in range(self.depth, 0, -1):
            assert self._steps.acquire(timeout=HANDSHAKE)
            if level == 1 and self._leaving is not None:
                self._leaving()
            f.read_unlock()
            self._stepped.release()
        go_idle(f)
        self.idle.set()
        assert self._finish.wait(HANDSHAKE)
        f.unregister_thread()

    def start(self) -> "ReaderThread":
        assert self.entered.wait(HANDSHAKE), "reader did not enter its section"
        return self

    def step(self) -> None:
        """Leave one level of nesting (and wait until it is left)."""
        self._levels -= 1
        self._steps.release()
        assert self._stepped.acquire(timeout=HANDSHAKE)

    def release(self) -> None:
        """Leave every remaining level and go idle.

        Counts the levels rather than polling ``idle``: the reader goes idle a little
        after its last step, and one step too many would wait for ever (seen on
        free-threaded CPython, where that little is truly parallel).
        """
        while self._levels:
            self.step()
        assert self.idle.wait(HANDSHAKE), "reader did not go idle"

    def finish(self) -> None:
        """Release, unregister and join."""
        self.release()
        self._finish.set()
        self.bg.join()


# -- schedulers --------------------------------------------------------------------------


class WaitRecorder(sched.Scheduler):
    """Free-running, but records ``thread name -> what`` while a thread is blocked,
    and counts, per thread, the evaluations of a wait's condition that came out false."""

    name = "wait-recorder"

    def __init__(self) -> None:
        self.waiting: dict[str, str] = {}
        self.false_checks: dict[str, int] = {}

    def wait_until(self, cond: Callable[[], Any], what: str,
                   timeout: float | None = None) -> bool:
        me = threading.current_thread().name

        def counted() -> Any:
            result = cond()
            if not result:
                self.false_checks[me] = self.false_checks.get(me, 0) + 1
            return result

        if counted():
            return True
        self.waiting[me] = what
        try:
            return super().wait_until(counted, what, timeout)
        finally:
            self.waiting.pop(me, None)

    def still_waiting(self, bg: Background) -> bool:
        """Whether ``bg``, blocked in a wait, is still blocked after something the test
        just did: wait until it returned, or its condition came out false once more."""
        before = self.false_checks.get(bg.name, 0)
        base = sched.Scheduler()
        assert base.wait_until(
            lambda: bg.done.is_set() or self.false_checks.get(bg.name, 0) > before,
            "recheck", HANDSHAKE), f"{bg.name} neither returned nor checked again"
        return not bg.done.is_set()

    def settle(self, bg: Background | str, among: tuple[str, ...] = ("",)) -> str | None:
        """Wait until ``bg`` returned (``None``) or is blocked in a wait (its ``what``).

        ``bg`` is a ``Background`` or the name of a thread that never returns. With
        ``among``, only a wait whose description contains one of them counts (brief
        waits for a lock pass unnoticed).
        """
        name = bg if isinstance(bg, str) else bg.name
        done = threading.Event() if isinstance(bg, str) else bg.done
        seen: list[str] = []

        def settled() -> bool:
            what = self.waiting.get(name)
            if what is not None and any(part in what for part in among):
                seen.append(what)
                return True
            return done.is_set()

        base = sched.Scheduler()       # the recorder must not record the test itself
        assert base.wait_until(settled, "settle", HANDSHAKE), f"{name} did not settle"
        return seen[-1] if seen else None


@pytest.fixture(name="recorder")
def recorder_fixture() -> Iterator[WaitRecorder]:
    """Install a ``WaitRecorder`` for the test; the previous scheduler comes back after."""
    rec = WaitRecorder()
    with sched.install(rec):
        yield rec


class Gate:
    """Holds thread ``thread`` at the ``nth`` schedule point labelled ``label``."""

    def __init__(self, thread: str, label: str, nth: int) -> None:
        self.thread = thread
        self.label = label
        self.nth = nth
        self.arrived = threading.Event()
        self._open = threading.Event()

    def hold(self) -> None:
        self.arrived.set()
        assert self._open.wait(HANDSHAKE), f"gate {self.label} never opened"

    def open(self) -> None:
        self._open.set()


class GateScheduler(WaitRecorder):
    """A ``WaitRecorder`` whose gates force a preemption at chosen schedule points.

    ``gate(thread, label, nth)`` returns a ``Gate``: the thread named ``thread``
    stops at its ``nth`` point labelled ``label`` (``arrived`` is set) until
    ``open()``. Every other point and thread passes freely.
    """

    name = "gate"

    def __init__(self) -> None:
        super().__init__()
        self._gates: dict[tuple[str, str], Gate] = {}
        self._seen: dict[tuple[str, str], int] = {}

    def gate(self, thread: str, label: str, nth: int = 1) -> Gate:
        g = self._gates[thread, label] = Gate(thread, label, nth)
        return g

    def point(self, label: str) -> None:
        key = (threading.current_thread().name, label)
        g = self._gates.get(key)
        if g is None:
            return
        seen = self._seen[key] = self._seen.get(key, 0) + 1
        if seen == g.nth:
            g.hold()


# -- tests of the helpers ------------------------------------------------------------------


def test_gate_holds_only_the_named_thread_at_the_nth_label() -> None:
    gates = GateScheduler()
    gate = gates.gate("gated", "the-label", nth=2)
    passed: list[str] = []

    def body(name: str) -> Callable[[], None]:
        def run() -> None:
            sched.point("the-label")
            passed.append(f"{name}-1")
            sched.point("other-label")
            sched.point("the-label")
            passed.append(f"{name}-2")
        return run

    with sched.install(gates):
        Background(body("free"), "free").join()
        gated = Background(body("gated"), "gated")
        assert gate.arrived.wait(HANDSHAKE)
        assert passed == ["free-1", "free-2", "gated-1"]    # held at its 2nd label
        gate.open()
        gated.join()
    assert passed[-1] == "gated-2"


@pytest.mark.parametrize("blocks", [True, False])
def test_settle_tells_blocked_from_returned(recorder: WaitRecorder, blocks: bool) -> None:
    flag = sched.Event("flag")
    if not blocks:
        flag.set()
    bg = Background(flag.wait, "waiter")
    what = recorder.settle(bg)
    if blocks:
        assert what == "event flag"
        flag.set()
    else:
        assert what is None
    bg.join()
