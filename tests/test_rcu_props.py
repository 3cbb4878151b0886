"""Property tests: random programs run against a model of each flavor.

1. Single-thread semantics: a random sequence of calls in one thread; the model
   predicts, for each call, the exception it must raise (or none), and for
   ``poll_state`` the answer.
2. Interleavings: several logical threads (real threads that each run one command
   when told, so the order of operations is the program's order) and one updater
   thread. The model knows, for the grace period in flight, which threads it must
   wait for (memb: those inside a section when it began; QSBR: those online when it
   began), and checks that ``synchronize()`` is blocked exactly while one of them has
   not yet done what releases it, and that ``poll_state`` is true exactly when a grace
   period that began after ``get_state`` has ended.

Each property also runs against broken variants, which it must catch. Those runs are
derandomized and skip shrinking, so they are fast and always find the same bug. Both
run in both modes; in ``fast`` mode, which detects no misuse, the single-thread
property performs only the calls the model says are legal and checks their results.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rcu_pgdat import sched
from rcu_pgdat.errors import (
    ShutdownError,
    SynchronizeInReaderError,
    UnbalancedUnlockError,
    UnregisteredThreadError,
    UsageError,
)
from rcu_pgdat.rcu import CHECKED, FAST, QSBR, Memb
from test_rcu_support import (
    EAGER_COOKIE,
    HANDSHAKE,
    NO_WAIT,
    REAL,
    Background,
    FlatMemb,
    Flavor,
    WaitRecorder,
    broken,
)


def run_property(prop: Callable[..., None], strategy: st.SearchStrategy[Any],
                 is_broken: bool, examples: int) -> None:
    """Run ``prop`` under hypothesis; a broken variant must make it fail."""
    if is_broken:
        config = settings(max_examples=500, deadline=None, database=None,
                          derandomize=True, report_multiple_bugs=False,
                          phases=(Phase.explicit, Phase.generate),
                          suppress_health_check=list(HealthCheck))
    else:
        config = settings(max_examples=examples, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
    test = config(given(strategy)(prop))
    if is_broken:
        with pytest.raises(AssertionError):
            test()
    else:
        test()


# -- 1. single-thread semantics ---------------------------------------------------------

QSBR_ONLY = ("quiescent_state", "thread_offline", "thread_online")
SINGLE_OPS = ("register_thread", "unregister_thread", "read_lock", "read_lock",
              "read_unlock", "read_unlock", "synchronize", "cond_synchronize", "barrier",
              "get_state", "poll_state") + QSBR_ONLY
#: A program, with ``shutdown`` inserted at one place in a quarter of them.
single_programs = st.tuples(
    st.lists(st.sampled_from(SINGLE_OPS), min_size=6, max_size=30),
    st.one_of(st.none(), st.none(), st.none(), st.integers(0, 30)),
).map(lambda p: p[0] if p[1] is None else p[0][:p[1]] + ["shutdown"] + p[0][p[1]:])


@dataclass
class ThreadModel:
    """What one thread's state must be, for either flavor."""

    qsbr: bool
    registered: bool = False
    online: bool = False
    nesting: int = 0
    shut_down: bool = False
    grace_periods: int = 0
    #: For each cookie: the number of grace periods completed when it was taken.
    cookies: list[int] = field(default_factory=list)

    def expect(self, op: str) -> type[Exception] | None:
        """The exception ``op`` must raise now, or ``None``; updates the model."""
        if op == "shutdown":
            if self.nesting and not self.shut_down:
                return SynchronizeInReaderError
            self.shut_down = True
            return None
        if self.shut_down:
            return ShutdownError
        check: Callable[[], type[Exception] | None] = getattr(self, f"_{op}")
        return check()

    def _register_thread(self) -> type[Exception] | None:
        if self.registered and self.qsbr:
            return UsageError
        self.registered = self.online = True
        return None

    def _unregister_thread(self) -> type[Exception] | None:
        if not self.registered:
            return UnregisteredThreadError
        if self.nesting:
            return UsageError
        self.registered = self.online = False
        return None

    def _read_lock(self) -> type[Exception] | None:
        if self.qsbr and not self.registered:
            return UnregisteredThreadError
        if self.qsbr and not self.online:
            return UsageError
        self.registered = self.online = True
        self.nesting += 1
        return None

    def _read_unlock(self) -> type[Exception] | None:
        if not self.nesting:
            return UnbalancedUnlockError
        self.nesting -= 1
        return None

    def _wait(self, needed: bool) -> type[Exception] | None:
        if self.nesting:
            return SynchronizeInReaderError
        self.grace_periods += needed
        return None

    def _synchronize(self) -> type[Exception] | None:
        return self._wait(True)

    def _cond_synchronize(self) -> type[Exception] | None:
        return self._wait(not self.poll())

    def _barrier(self) -> type[Exception] | None:
        return self._wait(False)

    def _get_state(self) -> type[Exception] | None:
        self.cookies.append(self.grace_periods)
        return None

    def _poll_state(self) -> type[Exception] | None:
        return None

    def poll(self) -> bool:
        """The answer ``poll_state`` must give for the latest cookie."""
        return bool(self.cookies) and self.grace_periods > self.cookies[-1]

    def _quiescent_state(self) -> type[Exception] | None:
        if not self.registered:
            return UnregisteredThreadError
        if self.nesting or not self.online:
            return UsageError
        return None

    def _thread_offline(self) -> type[Exception] | None:
        error = self._quiescent_state()
        if error is None:
            self.online = False
        return error

    def _thread_online(self) -> type[Exception] | None:
        if not self.registered:
            return UnregisteredThreadError
        if self.online:
            return UsageError
        self.online = True
        return None


def run_single_thread(cls: type[Flavor], program: list[str], mode: str) -> None:
    flavor = cls(mode=mode)
    model = ThreadModel(qsbr=isinstance(flavor, QSBR))
    cookies: list[int] = []
    try:
        for step, op in enumerate(program):
            if op in QSBR_ONLY and not model.qsbr:
                assert not hasattr(flavor, op), f"memb has no {op}"
                continue
            if op in ("poll_state", "cond_synchronize") and not cookies:
                continue
            expected = model.expect(op)
            if expected is not None and mode == FAST:
                continue                # misuse: undefined in fast mode, not performed
            args = (cookies[-1],) if op in ("poll_state", "cond_synchronize") else ()
            try:
                result = getattr(flavor, op)(*args)
            except UsageError as exc:
                assert type(exc) is expected, f"step {step} {op}: raised {exc!r}"
                continue
            assert expected is None, f"step {step} {op}: should raise {expected.__name__}"
            if op == "get_state":
                cookies.append(result)
            if op == "poll_state":
                assert result == model.poll(), f"step {step}: poll_state() is {result}"
    finally:
        with contextlib.suppress(UsageError):      # (a broken flavor may disagree)
            for _ in range(model.nesting):
                flavor.read_unlock()
        flavor.shutdown()


class LaxQSBR(QSBR):
    """Broken: quiescent_state() inside a section is accepted."""

    def quiescent_state(self) -> None:
        rec = self._registered_record("quiescent_state()")
        self._store_gp_ctr(rec)


class DoneCookie:
    """Broken: the cookie is the current sequence, so it polls done at once."""

    _gp: Any

    def get_state(self) -> int:
        return int(self._gp.seq)


DONE_COOKIE = broken(DoneCookie)


@pytest.mark.parametrize(("cls", "is_broken", "mode"), [
    pytest.param(QSBR, False, CHECKED, id="qsbr"),
    pytest.param(Memb, False, CHECKED, id="memb"),
    pytest.param(LaxQSBR, True, CHECKED, id="qsbr-lax-quiescent-state"),
    pytest.param(FlatMemb, True, CHECKED, id="memb-flat-nesting"),
    pytest.param(QSBR, False, FAST, id="qsbr-fast"),
    pytest.param(Memb, False, FAST, id="memb-fast"),
    pytest.param(DONE_COOKIE["qsbr"], True, FAST, id="qsbr-fast-done-cookie"),
    pytest.param(DONE_COOKIE["memb"], True, FAST, id="memb-fast-done-cookie"),
])
def test_single_thread_semantics(cls: type[Flavor], is_broken: bool, mode: str) -> None:
    run_property(lambda program: run_single_thread(cls, program, mode),
                 single_programs, is_broken, 150)


# -- 2. interleavings against a grace-period model ---------------------------------------


class Actor:
    """A logical thread: a real thread that runs one command at a time when told."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._command: Callable[[], Any] | None = None
        self._posted = threading.Semaphore(0)
        self._finished = threading.Semaphore(0)
        self._result: Any = None
        self._error: BaseException | None = None
        self._stop = False
        self.bg = Background(self._loop, name)

    def _loop(self) -> None:
        while True:
            assert self._posted.acquire(timeout=HANDSHAKE * 4)
            if self._stop:
                return
            assert self._command is not None
            self._result = self._error = None
            try:
                self._result = self._command()
            except BaseException as exc:  # noqa: BLE001 - re-raised by run()
                self._error = exc
            self._finished.release()

    def run(self, command: Callable[[], Any]) -> Any:
        """Run ``command`` in this thread and return its result (or raise its error)."""
        self._command = command
        self._posted.release()
        assert self._finished.acquire(timeout=HANDSHAKE), f"{self.name} is stuck"
        if self._error is not None:
            raise self._error
        return self._result

    def stop(self) -> None:
        self._stop = True
        self._posted.release()
        self.bg.join()


READERS = ("T0", "T1", "T2")
#: Operations with weights (repeats), biased towards sections, cookies and polls.
READER_OPS = 3 * ("read_unlock", "poll_state") + 2 * (
    "read_lock", "get_state", "quiescent_state") + (
    "thread_offline", "thread_online", "register_thread", "unregister_thread")
STEPS = [(name, op) for name in READERS for op in READER_OPS] + 8 * [("U", "synchronize")]


@dataclass
class GracePeriod:
    """The grace period in flight.

    ``waits_for``: threads it must wait for and that have not yet released it; it may
    not end while this is non-empty. ``may_wait_for`` (memb only): threads that entered
    a section after it began and are still inside. memb may wait for them too (a
    reader that loaded the counter after the first flip looks old after the second),
    so the grace period is only *required* to end once both sets are empty.
    """

    began: int
    waits_for: set[str]
    call: Background
    may_wait_for: set[str] = field(default_factory=set)


class Interleaving:
    """Runs a program of steps against one flavor and checks it against the model."""

    def __init__(self, cls: type[Flavor], recorder: WaitRecorder, mode: str) -> None:
        self.flavor = cls(mode=mode)
        self.qsbr = isinstance(self.flavor, QSBR)
        self.recorder = recorder
        self.actors = {name: Actor(name) for name in READERS}
        self.threads = {name: ThreadModel(qsbr=self.qsbr) for name in READERS}
        # T0 starts registered (online), T1 registered and offline (QSBR), T2 not.
        for name, ops in (("T0", ("register_thread",)),
                          ("T1", ("register_thread", "thread_offline"))):
            for op in ops:
                if self.allowed(name, op):
                    self.actors[name].run(getattr(self.flavor, op))
                    self.threads[name].expect(op)
        self.cookies: list[tuple[int, Any]] = []     # (step taken, cookie)
        self.ended: list[int] = []                   # steps at which ended GPs began
        self.gp: GracePeriod | None = None

    def blocks(self, name: str) -> bool:
        """Whether a grace period beginning now must wait for thread ``name``."""
        t = self.threads[name]
        return t.online if self.qsbr else t.nesting > 0

    def allowed(self, name: str, op: str) -> bool:
        t = self.threads[name]
        if op in QSBR_ONLY and not self.qsbr:
            return False
        if op in ("get_state", "poll_state"):
            return op == "get_state" or bool(self.cookies)
        before = (t.registered, t.online, t.nesting)
        allowed = t.expect(op) is None
        t.registered, t.online, t.nesting = before
        return allowed

    def step(self, index: int, name: str, op: str) -> None:
        if name == "U":
            self.start_grace_period(index)
            return
        if not self.allowed(name, op):
            return
        t = self.threads[name]
        if op == "poll_state":
            began, cookie = self.cookies[-1]
            answer = self.actors[name].run(lambda: self.flavor.poll_state(cookie))
            gp = self.gp
            explained = any(b > began for b in self.ended)
            if answer and not explained and gp is not None and gp.began > began \
                    and not gp.waits_for:
                # The flavor may have ended this grace period (memb need not wait for
                # readers that began after it) while its synchronize() call is still
                # returning in the background: let it return, then record it.
                assert gp.call.done.wait(HANDSHAKE), (
                    f"step {index}: the cookie polls done but the grace period begun "
                    f"at step {gp.began} never returns")
                self.check_grace_period(index)
            assert answer == any(b > began for b in self.ended), (
                f"step {index}: poll_state of the cookie taken at step {began} is "
                f"{answer}; grace periods that ended began at steps {self.ended}")
            return
        result = self.actors[name].run(getattr(self.flavor, op))
        if op == "get_state":
            self.cookies.append((index, result))
            return
        nesting = t.nesting
        t.expect(op)                                 # update the model
        gp = self.gp
        if gp is not None:
            if self.qsbr:
                if op in ("quiescent_state", "thread_offline", "unregister_thread"):
                    gp.waits_for.discard(name)
            elif t.nesting == 0:
                gp.waits_for.discard(name)
                gp.may_wait_for.discard(name)
            elif nesting == 0:
                gp.may_wait_for.add(name)
        self.check_grace_period(index)

    def start_grace_period(self, index: int) -> None:
        if self.gp is not None:
            return
        call = Background(self.flavor.synchronize, f"U{index}")
        waits_for = {name for name in READERS if self.blocks(name)}
        self.gp = GracePeriod(index, waits_for, call)
        what = self.recorder.settle(call)
        assert what is None or not waits_for or "waits for reader" in what, what
        if waits_for:
            assert what is not None, (
                f"step {index}: synchronize() returned while {sorted(waits_for)} "
                "had not yet left the sections / quiescent states it owed")
        self.check_grace_period(index)

    def check_grace_period(self, index: int) -> None:
        gp = self.gp
        if gp is None:
            return
        if gp.waits_for:
            assert not gp.call.done.is_set(), (
                f"step {index}: the grace period begun at step {gp.began} ended while "
                f"it still owed a wait for {sorted(gp.waits_for)}")
            return
        if gp.may_wait_for and not gp.call.done.is_set():
            return
        assert gp.call.done.wait(HANDSHAKE), (
            f"step {index}: the grace period begun at step {gp.began} does not end")
        gp.call.join()
        self.ended.append(gp.began)
        self.gp = None

    def close(self) -> None:
        """Leave every section, unregister, end the grace period, stop the threads."""
        for name, t in self.threads.items():
            while t.nesting:
                self.actors[name].run(self.flavor.read_unlock)
                t.nesting -= 1
            if t.registered:
                self.actors[name].run(self.flavor.unregister_thread)
                t.registered = t.online = False
            self.actors[name].stop()
        if self.gp is not None:
            self.gp.call.join()
        self.flavor.shutdown()


def run_interleaving(cls: type[Flavor], program: list[tuple[str, str]], mode: str) -> None:
    recorder = WaitRecorder()
    with sched.install(recorder):
        run = Interleaving(cls, recorder, mode)
        try:
            for index, (name, op) in enumerate(program):
                run.step(index, name, op)
        finally:
            run.close()


@pytest.mark.parametrize("mode", [CHECKED, FAST])
@pytest.mark.parametrize(("cls", "is_broken"), [
    pytest.param(REAL["qsbr"], False, id="qsbr"),
    pytest.param(REAL["memb"], False, id="memb"),
    pytest.param(NO_WAIT["qsbr"], True, id="qsbr-no-wait"),
    pytest.param(NO_WAIT["memb"], True, id="memb-no-wait"),
    pytest.param(EAGER_COOKIE["qsbr"], True, id="qsbr-eager-cookie"),
    pytest.param(EAGER_COOKIE["memb"], True, id="memb-eager-cookie"),
])
def test_interleavings_match_the_grace_period_model(cls: type[Flavor], is_broken: bool,
                                                    mode: str) -> None:
    run_property(lambda program: run_interleaving(cls, program, mode),
                 st.lists(st.sampled_from(STEPS), min_size=12, max_size=40), is_broken, 100)
