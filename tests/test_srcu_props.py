"""Property tests of SRCU against simple models (hypothesis).

1. Single thread: a random sequence of calls (nesting, indices, grace periods,
   cleanup, polled cookies, misuse) gives exactly the results and errors a
   ten-line model predicts.
2. Interleavings: logical readers and an updater run as real threads in lock-step
   (exactly one runs between two schedule points; hypothesis draws who runs and for how
   many points). Two oracles judge each run: no reader touches a retired node, and no
   ``synchronize()`` returns while a section that began before it is still open.

Each property is run with ``hypothesis.find`` against the real ``SRCU`` (nothing may be
found) and against a mutant (something must be found), in both modes; in ``fast`` mode,
which detects no misuse, the single-thread property performs only legal calls.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from rcu_pgdat import sched
from rcu_pgdat.errors import (
    SchedulerError,
    ShutdownError,
    SynchronizeInReaderError,
    UnbalancedUnlockError,
    WrongIndexError,
)
from rcu_pgdat.mutants import srcu as mutants
from rcu_pgdat.rcu import CHECKED, FAST
from rcu_pgdat.rcu.srcu import SRCU

SEARCH = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate])


def caught(cls: type[SRCU], strategy: st.SearchStrategy[Any],
           problems: Callable[[type[SRCU], Any], list[str]]) -> list[str]:
    """The problems of the first example that has any, or [] when none is found."""
    try:
        example = find(strategy, lambda ex: bool(problems(cls, ex)), settings=SEARCH)
    except NoSuchExample:
        return []
    return problems(cls, example)


def case(cls: type[SRCU], expect_caught: bool, mode: str = CHECKED) -> object:
    return pytest.param(cls, expect_caught, mode, id=f"{cls.__name__}-{mode}")


# -- 1. single-thread semantics ---------------------------------------------------------

Op = tuple[Any, ...]

OPS = st.lists(st.one_of(
    st.just(("lock",)),
    st.tuples(st.just("unlock"), st.integers(0, 7)),      # end the k-th open section
    st.tuples(st.just("unlock_value"),
              st.one_of(st.integers(-2, 3), st.booleans(), st.none(), st.just("0"))),
    st.just(("sync",)),
    st.just(("barrier",)),
    st.just(("sync_other",)),                              # another domain's grace period
    st.just(("cleanup",)),
    st.just(("get_state",)),
    st.tuples(st.just("poll"), st.integers(0, 7)),
), max_size=40)


class Model:
    """What a correct domain does, one thread, no callbacks queued."""

    def __init__(self) -> None:
        self.cur = 0                 # index read_lock() returns
        self.held: list[int] = []    # indices of open sections, in order
        self.dead = False
        self.gps = 0                 # grace periods completed
        self.cookies: list[int] = []  # grace periods completed when each cookie was taken

    def resolve(self, op: Op) -> Op | None:
        """Turn "the k-th open section / cookie" into a concrete call (None: skip it)."""
        if op[0] == "unlock":
            return ("unlock_value", self.held[op[1] % len(self.held)] if self.held else 0)
        if op[0] == "poll":
            return ("poll", op[1] % len(self.cookies)) if self.cookies else None
        return op

    def expect(self, op: Op) -> tuple[str, Any]:
        """The outcome of concrete ``op``: ("ok", value) or ("raise", exception class)."""
        kind = op[0]
        if self.dead and kind != "sync_other":
            return ("raise", ShutdownError)
        if kind == "lock":
            self.held.append(self.cur)
            return ("ok", self.cur)
        if kind == "unlock_value":
            return self._unlock(op[1])
        if kind in ("sync", "barrier"):
            if self.held:
                return ("raise", SynchronizeInReaderError)
            if kind == "sync":
                self.gps += 1
                self.cur ^= 1
            return ("ok", None)
        if kind == "cleanup":
            if self.held:               # it would wait for the caller's own sections
                return ("raise", SynchronizeInReaderError)
            self.dead = True
            return ("ok", None)
        if kind == "get_state":
            self.cookies.append(self.gps)
            return ("ok", "cookie")
        if kind == "poll":
            return ("ok", self.gps > self.cookies[op[1]])
        return ("ok", None)          # sync_other

    def _unlock(self, value: Any) -> tuple[str, Any]:
        if type(value) is not int or value not in (0, 1):
            return ("raise", WrongIndexError)
        if not self.held:
            return ("raise", UnbalancedUnlockError)
        if value not in self.held:
            return ("raise", WrongIndexError)
        self.held.remove(value)
        return ("ok", None)


def model_mismatches(cls: type[SRCU], ops: Sequence[Op], mode: str = CHECKED) -> list[str]:
    """Run ``ops`` on a fresh domain in this thread; list where it disagrees with Model."""
    domain, other, model = cls("model", mode=mode), cls("other", mode=mode), Model()
    cookies: list[int] = []
    for step, raw in enumerate(ops):
        op = model.resolve(raw)
        if op is None:
            continue
        expected = model.expect(op)
        if expected[0] == "raise" and mode == FAST:
            continue                    # misuse: undefined in fast mode, not performed
        try:
            got: tuple[str, Any] = ("ok", apply(domain, other, cookies, op))
        except Exception as exc:  # noqa: BLE001 - compared with the model
            got = ("raise", type(exc))
        if got != expected:
            return [f"step {step} {op}: got {got}, the model says {expected}"]
    return []


def apply(domain: SRCU, other: SRCU, cookies: list[int], op: Op) -> Any:
    """Perform concrete ``op`` on ``domain``; returns what the call returned."""
    kind = op[0]
    if kind == "lock":
        return domain.read_lock()
    if kind == "unlock_value":
        return domain.read_unlock(op[1])
    if kind == "get_state":
        cookies.append(domain.get_state())
        return "cookie"
    if kind == "poll":
        return domain.poll_state(cookies[op[1]])
    call = {"sync": domain.synchronize, "barrier": domain.barrier,
            "cleanup": domain.cleanup, "sync_other": other.synchronize}[kind]
    return call()


@pytest.mark.parametrize("cls, expect_caught, mode", [
    case(SRCU, False), case(mutants.SRCUNoFlip, True),
    case(SRCU, False, FAST), case(mutants.SRCUNoFlip, True, FAST)])
def test_single_thread_semantics_match_the_model(cls: type[SRCU], expect_caught: bool,
                                                 mode: str) -> None:
    problems = caught(cls, OPS, functools.partial(model_mismatches, mode=mode))
    assert bool(problems) is expect_caught, problems


# -- 2. interleavings in lock-step --------------------------------------------------------


class Lockstep(sched.Scheduler):
    """Exactly one managed thread runs between two schedule points; bursts pick which.

    A burst ``(t, n)`` hands the run token to running thread number ``t`` (modulo the
    threads still running) for ``n`` points. A thread whose wait condition is false
    ends its burst at once. When the bursts run out, threads take turns one point each,
    so every run ends unless a wait can never be satisfied (then ``max_steps`` raises).
    Threads it does not manage (none in these tests) run free.
    """

    name = "lockstep"
    controlled = True

    def __init__(self, bursts: Sequence[tuple[int, int]], max_steps: int = 20_000) -> None:
        self._bursts = list(bursts)
        self._next = 0
        self._cv = threading.Condition()
        self._names: list[str] = []
        self._finished: set[str] = set()
        self._turn: str | None = None     # guarded by _cv
        self._left = 0                    # points left in the burst; token holder only
        self.steps = 0                    # token holder only
        self.max_steps = max_steps
        self.errors: list[tuple[str, BaseException]] = []

    def run(self, bodies: dict[str, Callable[[], None]]) -> None:
        """Run each body in a thread of that name, in lock-step, to the end."""
        self._names = list(bodies)
        threads = [threading.Thread(target=self._body(name, fn), name=name, daemon=True)
                   for name, fn in bodies.items()]
        with self._cv:
            self._hand_over(self._names[-1])
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
            assert not thread.is_alive(), f"lock-step thread {thread.name} hung"

    def _body(self, name: str, fn: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                self._wait_turn(name)
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.errors.append((name, exc))
            finally:
                with self._cv:
                    self._finished.add(name)
                    self._hand_over(name)
        return body

    def _hand_over(self, me: str) -> None:
        """Give the token to the next burst's thread (``_cv`` held)."""
        running = [n for n in self._names if n not in self._finished]
        if not running:
            self._turn = None
        elif self._next < len(self._bursts):
            who, self._left = self._bursts[self._next]
            self._next += 1
            self._turn = running[who % len(running)]
        else:
            order = self._names[self._names.index(me) + 1:] + self._names
            self._turn = next(n for n in order if n in running)
            self._left = 1
        self._cv.notify_all()

    def _wait_turn(self, name: str) -> None:
        with self._cv:
            if not self._cv.wait_for(lambda: self._turn == name, timeout=10):
                raise SchedulerError(f"lock-step: {name} waited 10 s for its turn")

    def point(self, label: str) -> None:
        name = threading.current_thread().name
        if name not in self._names:
            return
        self.steps += 1
        if self.steps > self.max_steps:
            raise SchedulerError(f"lock-step: no end after {self.max_steps} points at {label}")
        self._left -= 1
        if self._left > 0:
            return
        with self._cv:
            self._hand_over(name)
        self._wait_turn(name)

    def wait_until(self, cond: Callable[[], Any], what: str,
                   timeout: float | None = None) -> bool:
        if threading.current_thread().name not in self._names:
            return super().wait_until(cond, what, timeout)
        waited = 0
        while not cond():
            if timeout is not None and waited >= timeout:
                return False
            self._left = 1           # blocked: end the burst
            self.point(f"wait: {what}")
            waited += 1
        return True

    def sleep(self, seconds: float) -> None:
        self.point("sleep")

    def now(self) -> float:
        return float(self.steps)


class Node:
    """A published object; ``dead`` once retired after a grace period."""

    __slots__ = ("dead", "gen")

    def __init__(self, gen: int) -> None:
        self.gen = gen
        self.dead = False


BURSTS = st.lists(st.tuples(st.integers(0, 2), st.integers(1, 80)), max_size=24)


def interleaving_problems(cls: type[SRCU], bursts: Sequence[tuple[int, int]],
                          mode: str = CHECKED) -> list[str]:
    """Two readers (one nests) and an updater in lock-step; the oracles' complaints."""
    domain = cls("lockstep", mode=mode)
    cell = [Node(0)]
    clock = [0]                                   # advanced by the token holder only
    sections: list[tuple[str, int, int]] = []     # (name, began, ended) in clock ticks
    syncs: list[tuple[int, int]] = []             # (called, returned)
    problems: list[str] = []

    def tick() -> int:
        clock[0] += 1
        return clock[0]

    def use(name: str) -> None:
        sched.point("test:load")
        node = cell[0]
        sched.point("test:use")
        if node.dead:
            problems.append(f"{name} used node {node.gen} after it was retired")

    def section(name: str, body: Callable[[], None]) -> None:
        idx = domain.read_lock()
        began = tick()                            # after the lock count: inside
        body()
        sections.append((name, began, tick()))    # before the unlock count: inside
        domain.read_unlock(idx)

    def reader() -> None:
        for n in range(2):
            section(f"r0.{n}", lambda: use("r0"))

    def nesting_reader() -> None:
        def outer() -> None:
            use("r1")
            section("r1.inner", lambda: use("r1"))
            use("r1")
        section("r1.outer", outer)

    def updater() -> None:
        for gen in (1, 2):
            sched.point("test:publish")
            old, cell[0] = cell[0], Node(gen)
            called = tick()
            domain.synchronize()
            syncs.append((called, tick()))
            sched.point("test:retire")
            old.dead = True

    lockstep = Lockstep(bursts)
    with sched.install(lockstep):
        lockstep.run({"r0": reader, "r1": nesting_reader, "updater": updater})
    problems += [f"{name} raised {exc!r}" for name, exc in lockstep.errors]
    problems += [f"synchronize() [{called}, {returned}] returned while {name} "
                 f"[{began}, {ended}], begun before it, was open"
                 for called, returned in syncs for name, began, ended in sections
                 if began < called and ended > returned]
    return problems


@pytest.mark.parametrize("cls, expect_caught, mode", [
    case(SRCU, False), case(mutants.SRCUSkipOldIndex, True), case(mutants.SRCUNoWait, True),
    case(SRCU, False, FAST), case(mutants.SRCUSkipOldIndex, True, FAST)])
def test_interleavings_keep_the_grace_period_guarantee(cls: type[SRCU], expect_caught: bool,
                                                       mode: str) -> None:
    problems = caught(cls, BURSTS, functools.partial(interleaving_problems, mode=mode))
    assert bool(problems) is expect_caught, problems
