"""Controlled scheduling: exactly one model thread runs between two schedule points.

Why this is correct
-------------------
Model threads are real threads. Each owns a private semaphore it parks on; a single
*token* says which one may run. The token holder runs model code until its next
schedule point (``point``, a blocking ``wait_until`` or ``sleep``, the end of the
thread); there, holding the scheduler lock, it makes the next decision itself
(:meth:`ControlledScheduler._dispatch_locked`): ask the strategy, hand the token to the
chosen thread by releasing that thread's semaphore, then park on its own. Invariant T:
at most one model thread is outside its semaphore and not finished, so between two
points exactly one thread touches model state, and every decision is a function of the
strategy and of the model state alone (never of the OS), which makes runs repeatable.

Blocked threads. ``wait_until(cond)`` evaluates ``cond`` in the waiting thread only
(it may claim what it waited for: ``lock.acquire(False)``). A false ``cond`` parks the
thread as *blocked* and records the step counter (``epoch``) it saw. Its condition can
become true only through another thread's step, so it is offered to the strategy again
only once ``epoch`` has moved (invariant B: a blocked thread whose epoch is current is
certainly still blocked). When picked it re-evaluates ``cond`` holding the token: true
is a real step (recorded), false is no step at all and the same decision is made again
without it. A false ``cond`` must have no side effect (``acquire(False)`` failing has
none), which is what lets a replay skip those probes. Deadlock is then exact: no
candidate, no timed waiter, some live thread.

Probes in place. A *pure* condition (``PureCond``: no side effect, the same answer in
any thread) is probed by the deciding thread itself, which holds the token and the
lock, so nothing can change between its evaluation and the waiter's. False: the
decider does exactly what the woken waiter would have done (note it in this decision's
``blocked``, bring its epoch up to date, decide again), so the strategy sees the same
questions in the same order and the schedule is the same, byte for byte, minus a
hand-over to the waiter and one back. Deciding again keeps the other candidates as they
were: nothing ran in between, so their (pure) ready tests would answer as before. True
(or an error): the waiter is woken to evaluate it itself as before, and takes the step.

The simpler designs this replaces, and why they are wrong:

* A global "baton" lock that threads take at each point: the releasing thread can take
  it straight back (``release(); acquire()`` wins the race against a parked waiter), so
  the OS, not the seed, picks who runs.
* Evaluating blocked conditions in the scheduler (or in whichever thread decides):
  ``cond`` claims the lock in the wrong thread. Step 5: A holds mutex m; B waits. A
  releases m and decides; if A evaluated B's ``m.acquire(False)`` then m is held with
  ``owner`` never written by B, and A's next ``acquire`` deadlocks against itself.
* Re-evaluating every blocked thread before every decision: one hand-over per blocked
  thread per step, and if counted as steps a deadlock looks like a busy livelock.

Time is the step counter: ``now()`` is the clock, each step adds one, and when every
live thread waits for time the clock jumps to the earliest deadline (those skipped
steps count against ``max_steps``). A thread that blocks where the scheduler cannot see
it (a ``threading.Lock``, a C call) keeps the token forever: :meth:`wait` watches the
wall clock between hand-overs and ends the run as a *hang* after ``hang_timeout``
seconds, with that thread's stack. To end a run early every parked thread is woken and
raises :class:`RunStopped` (a ``BaseException``) from its schedule point, so ``finally``
blocks run and no thread stays parked; while unwinding, points are no-ops and waits
that cannot be satisfied at once raise again.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import math
import queue
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from ..errors import UsageError
from . import _osched, _real
from ._base import PureCond, ReadyCond, Scheduler
from .accesses import Access, AccessLog, explain
from ._report import interleaving_table, thread_stack
from .decision import Decision, Strategy
from .trace import Step, Trace

__all__ = ["ControlledScheduler", "RunStopped", "Outcome", "RunResult", "ThreadError"]


def _step_of(fields: tuple[int, str, str], _new: Callable[[type], Any] = object.__new__) -> Step:
    """``Step(*fields)`` at about half the cost: a frozen dataclass's ``__init__`` sets
    each field through ``object.__setattr__``. A run records its steps as plain tuples
    (cheaper at every step) and builds the trace's ``Step`` objects once, at its end."""
    step = _new(Step)
    d = step.__dict__
    d["step"], d["thread"], d["label"] = fields
    return step


def _probe(cond: Callable[[], Any]) -> bool | None:
    """Evaluate a waiter's pure condition in the deciding thread (lock held, decider
    marked as inside a condition), as ``_eval`` does in the waiter; ``None`` on an
    error, which the waiter, woken to evaluate it itself, will meet."""
    try:
        return bool(cond())
    except Exception:  # noqa: BLE001 - the waiter's own evaluation reports it
        return None


class RunStopped(BaseException):
    """Raised in a model thread at its next schedule point when the run ends early.

    A ``BaseException`` so that ``except Exception`` in model code does not swallow it;
    ``finally`` blocks run as usual.
    """


class Outcome(str, enum.Enum):
    """How a controlled run ended."""

    OK = "ok"                  # every model thread finished
    FAILED = "failed"          # a model thread raised (or the program's check failed)
    DEADLOCK = "deadlock"      # every live thread blocked, none waits for time
    LIVELOCK = "livelock"      # no progress() within livelock_steps
    HANG = "hang"              # a thread blocked where the scheduler cannot see it
    BUDGET = "budget"          # max_steps ran out first
    STOPPED = "stopped"        # stop() or uninstalled before the end
    ABANDONED = "abandoned"    # the strategy gave up (exploration pruned the run)


#: Outcomes that mean the program under test is wrong.
FAILURES = frozenset({Outcome.FAILED, Outcome.DEADLOCK, Outcome.LIVELOCK, Outcome.HANG})

# Thread states; transitions are made by the token holder under the scheduler lock.
_RUNNABLE = "runnable"   # parked at a schedule point (or not started yet)
_RUNNING = "running"     # holds the token
_BLOCKED = "blocked"     # parked in wait_until/sleep: cond false or time not due
_FINISHED = "finished"

# Why a parked thread was woken.
_RUN, _PROBE, _STOP = "run", "probe", "stop"


@dataclass
class ThreadError:
    """An exception that ended a model thread during the run."""

    thread: str
    step: int
    exc: BaseException
    traceback: str

    def summary(self) -> str:
        text = str(self.exc).splitlines()[0] if str(self.exc) else ""
        return f"{type(self.exc).__name__}: {text}" if text else type(self.exc).__name__


@dataclass
class RunResult:
    """What a controlled (or free-running) run found; ``trace`` replays it."""

    outcome: Outcome
    trace: Trace | None
    errors: list[ThreadError] = field(default_factory=list)
    report: str = ""
    stuck: list[str] = field(default_factory=list)
    #: For each step, the non-preemptive choice the strategy had (``Decision.default``).
    defaults: tuple[str, ...] = ()
    #: The most recent shared accesses the run observed (``sched.accesses``).
    accesses: tuple[Access, ...] = ()

    @property
    def failed(self) -> bool:
        """Whether the run shows a bug: an error, deadlock, livelock or hang."""
        return self.outcome in FAILURES

    @property
    def steps(self) -> int:
        """Number of steps taken (0 for a free-running run)."""
        return len(self.trace.steps) if self.trace else 0

    @property
    def preemptions(self) -> int:
        """Number of preemptions in the schedule."""
        return len(self.trace.preemptions) if self.trace else 0

    def table(self, context: int = 20) -> str:
        """The interleaving around the end of the run (see ``interleaving_table``)."""
        return interleaving_table(self.trace, context) if self.trace else "(no schedule)"

    def explanation(self, culprit: str | None = None) -> str:
        """The conflicting accesses behind the failure, data-race style ("" if none).

        ``culprit`` is the thread the failure is charged to (default: the trace's
        failing thread; a harness that stopped the run at a violation names its thread).
        """
        if self.outcome is Outcome.OK or not self.accesses:
            return ""
        if culprit is None and self.trace is not None and self.trace.failure:
            culprit = self.trace.failure.get("thread")
        return explain(self.accesses, culprit if culprit != "check" else None)

    def describe(self, context: int = 20) -> str:
        """Outcome, report, first error's traceback and the interleaving table."""
        parts = [f"--- {self.outcome.value} after {self.steps} steps "
                 f"({self.preemptions} preemptions)"]
        if self.trace is not None and self.trace.strategy:
            parts.append(f"strategy: {self.trace.strategy}")
        if self.report:
            parts.append(self.report)
        if self.errors:
            err = self.errors[0]
            parts.append(f"thread {err.thread} raised at step {err.step}:\n{err.traceback}")
        if self.stuck:
            parts.append(f"threads that did not stop: {', '.join(self.stuck)}")
        if self.trace is not None:
            parts.append(self.table(context))
        why = self.explanation()
        if why:
            parts.append(why)
        return "\n".join(p.rstrip("\n") for p in parts)


class _Thread:
    """The scheduler's record of one model thread. Fields other than ``gate`` and
    ``permit`` are guarded by the scheduler lock (``unwinding`` is touched by the thread
    only).

    ``gate`` is a ``SimpleQueue`` that is empty while the thread may not run: a ``put``
    hands the thread the token, the thread's own ``get`` parks it. It holds at most one
    item: ``permit`` says a hand-over is pending (set under the scheduler lock by the
    releaser, cleared by the thread once it passed the gate; see ``_hand``). Not a plain
    lock: free-threaded CPython's lock spins (yielding the CPU) before it parks a waiter,
    and the waiter then wakes late, which made a hand-over there cost up to a millisecond
    on a loaded machine; a ``SimpleQueue`` parks at once and wakes as fast on every
    build (``bench --only controlled``).
    """

    __slots__ = ("name", "target", "thread", "gate", "permit", "status", "label", "what",
                 "waits", "ready", "pure", "deadline", "epoch", "wake", "last_step",
                 "unwinding", "error", "in_cond", "yielded")

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        self.name = name
        self.target = target
        self.thread: threading.Thread | None = None
        self.gate: queue.SimpleQueue[None] = _real.SimpleQueue()  # parks here between steps
        self.permit = False                   # a hand-over through gate is pending
        self.status = _RUNNABLE
        self.label = "start"                  # the point it waits at / ran from
        self.what = ""                        # what a blocked thread waits for
        self.waits = False                    # blocked on a condition (not only time)
        self.ready: Callable[[], Any] | None = None   # the waiter's pure "may go on" test
        self.pure: Callable[[], Any] | None = None    # its condition, when pure (PureCond)
        self.deadline: int | None = None      # step at which a timed wait is due
        self.epoch = 0                        # scheduler epoch of its last false cond
        self.wake = _RUN
        self.last_step = -1
        self.unwinding = False
        self.error: str | None = None
        self.in_cond = False                  # evaluating a wait condition (atomic)
        self.yielded = False                  # stopped at a voluntary yield point


class _ModelThread(threading.Thread):
    """A thread whose ``start()`` registers it with the controlled scheduler first."""

    def __init__(self, owner: ControlledScheduler, rec: _Thread) -> None:
        super().__init__(name=rec.name, daemon=True)
        self._owner = owner
        self._rec = rec
        rec.thread = self

    def start(self) -> None:
        self._owner._register(self._rec)
        super().start()

    def run(self) -> None:
        self._owner._thread_main(self._rec)


class ControlledScheduler(Scheduler):
    """Run model threads one step at a time, in the order ``strategy`` picks.

    Use once: install it, spawn and start the model threads, call :meth:`wait` from the
    (non-model) driver thread; it starts the run and returns a :class:`RunResult` when
    every thread finished or the run ended early (see :class:`Outcome`).

    ``max_steps`` bounds the clock; ``livelock_steps`` (``None``: off) bounds the steps
    between two :meth:`progress` calls; ``hang_timeout`` is the wall-clock time a thread
    may run without reaching a schedule point. A model thread that raises ends the run
    as FAILED (``stop_on_error``); the exception is also passed on to
    ``threading.excepthook`` as a free-running thread's would be (``propagate_errors``).
    Threads the scheduler did not spawn run free: their points are no-ops. With
    ``pin_threads`` (the default) the model threads run on one CPU, the one the driver
    runs on when the scheduler is installed, as batch threads: only one runs at a time,
    and a hand-over then costs one thread switch (``_osched``; schedules do not change).
    """

    controlled = True

    def __init__(self, strategy: Strategy, *, max_steps: int = 100_000,
                 livelock_steps: int | None = None, hang_timeout: float = 5.0,
                 stop_on_error: bool = True, propagate_errors: bool = True,
                 meta: dict[str, Any] | None = None, intercept: bool = True,
                 instrument: Sequence[str] = (), pin_threads: bool = True) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        if livelock_steps is not None and livelock_steps < 1:
            raise ValueError(f"livelock_steps must be positive or None, got {livelock_steps}")
        if hang_timeout <= 0:
            raise ValueError(f"hang_timeout must be positive seconds, got {hang_timeout}")
        self.name = strategy.name
        self.strategy = strategy
        self.max_steps = max_steps
        self.livelock_steps = livelock_steps
        self.hang_timeout = hang_timeout
        self.stop_on_error = stop_on_error
        self.propagate_errors = propagate_errors
        self.meta = dict(meta or {})
        self.intercept = intercept                     # see ``intercept``
        self.instrument = tuple(instrument)            # see ``instrument``
        self.pin_threads = pin_threads                 # see ``_osched``
        self._placement: _osched.Placement | None = None   # their CPU (``_osched``)
        self.access_log = AccessLog()                  # see ``accesses``
        self._instrumented: Any = None
        self._spins: Any = None                        # see ``rescue`` (interception)
        self._lock = _real.allocate_lock()
        self._cv = _real.Condition(self._lock)         # wait() sleeps here
        self._tls = threading.local()
        # Guarded by _lock (and written only by the token holder while the run is on):
        self._threads: list[_Thread] = []              # start order, finished included
        self._live: list[_Thread] = []                 # ... the unfinished ones, same order
        # Looked up with ``in`` and ``[]``, never ``.get`` (see ``Strategy``: a lock on 3.13t).
        self._by_name: dict[str, _Thread] = {}         # latest thread of each name
        self._running: _Thread | None = None           # the token holder
        self._prev: _Thread | None = None              # ran the last step
        self._clock = 0
        self._epoch = 0                                # bumped by every step/time jump
        self._exits = 0                                # model threads finished
        self._steps: list[tuple[int, str, str]] = []   # (clock, thread, label): Step fields
        self._preemptions: list[int] = []
        self._asked_index = -1                         # decision index last asked about
        self._blocked_now: list[str] = []              # probes that failed at this index
        self._first_default = ""                       # Decision.default at its first ask
        self._defaults: list[str] = []                 # ... of every step taken
        self._last_switch = 0.0                        # wall clock of the last hand-over
        self._last_progress = 0
        self._progress_label = "(none)"
        self._started = False
        self._outcome: Outcome | None = None
        self._report = ""
        self._final: dict[str, str] = {}
        self._errors: list[ThreadError] = []
        self._internal: BaseException | None = None    # strategy error, raised by wait()
        self._culprit: str | None = None               # the hung thread
        self._adopted: dict[threading.Thread, _Thread] = {}   # lookup only, never iterated
        self._children: dict[str, int] = {}            # threads each thread adopted

    # -- the API model code calls -------------------------------------------------

    def point(self, label: str) -> None:
        self._point(label, False)

    def yield_point(self, label: str) -> None:
        self._point(label, True)

    def _point(self, label: str, yielded: bool) -> None:
        me: _Thread | None = getattr(self._tls, "me", None)
        if me is None or me.in_cond:
            return                       # not a model thread, or inside a wait condition
        with self._lock:
            if self._outcome is not None:
                self._unwind(me)
                return
            me.label = label
            me.status = _RUNNABLE
            me.yielded = yielded
            self._dispatch_locked(me)    # may pick me again: then my gate has a permit
        self._park(me)                   # pairs with _hand() in _dispatch_locked

    @staticmethod
    def _eval(me: _Thread, cond: Callable[[], Any]) -> bool:
        """Evaluate a wait condition atomically: schedule points inside it do nothing.

        A condition may call code that has points of its own (an SRCU domain sums its
        counters between points); handing the token over in the middle of a probe would
        break invariant T, and a false condition must have no effect, points included.
        """
        me.in_cond = True
        try:
            return bool(cond())
        finally:
            me.in_cond = False

    def wait_until(self, cond: Callable[[], Any], what: str,
                   timeout: float | None = None) -> bool:
        me: _Thread | None = getattr(self._tls, "me", None)
        if me is None:
            return super().wait_until(cond, what, timeout)
        # Unlocked reads: _outcome only goes from None to set, and _clock is written
        # by the token holder alone, which is this thread (invariant T).
        if self._outcome is not None:
            return self._unwind_wait(me, cond, timeout)
        if self._eval(me, cond):
            return True                  # no point: the step goes on (see module doc)
        deadline = None if timeout is None else self._clock + max(1, math.ceil(timeout))
        ready = cond.ready if isinstance(cond, ReadyCond) else None
        return self._block(me, cond, what, deadline, ready)

    def sleep(self, seconds: float) -> None:
        me: _Thread | None = getattr(self._tls, "me", None)
        if me is None:
            _real.sleep(0)               # a driver's sleep means nothing in step time
            return
        if seconds <= 0:
            self.point("sleep")
            return
        if self._outcome is not None:
            self._unwind(me)
            return
        self._block(me, None, "sleep", self._clock + math.ceil(seconds), None)

    def now(self) -> float:
        return self._clock

    def exit_mark(self) -> int | None:
        # With interception on, a model thread asking ``is_alive()`` of a model thread
        # gets ``not finished(rec)``, which changes only where ``_exits`` is bumped
        # (under the lock, with the status). Without it the OS answers: no mark.
        # Threads outside the run are the OS's either way; see ``FlavorBase._wait_for``.
        return self._exits if self.intercept else None

    def progress(self, label: str) -> None:
        # Written by the token holder (a model thread) or, before the run, the driver.
        self._last_progress = self._clock
        self._progress_label = f"{label} at step {self._clock}"

    def spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        if not isinstance(name, str) or not name:
            raise UsageError(f"a model thread needs a non-empty string name, got {name!r}")
        return _ModelThread(self, _Thread(name, target))

    # -- the driver's API -----------------------------------------------------------

    def wait(self) -> RunResult:
        """Start the run (first decision) and return its result when it is over.

        Call from the thread that installed the scheduler, after starting the model
        threads. Raises :class:`~rcu_pgdat.errors.TraceError` (or another error) when
        the strategy could not go on, after every model thread has stopped.
        """
        if getattr(self._tls, "me", None) is not None:
            raise UsageError("wait() is called by the driver, not from a model thread")
        with self._lock:
            if self._started:
                raise UsageError("a ControlledScheduler runs once; create a new one per run")
            self._started = True
            self._last_switch = _real.monotonic()
            self._dispatch_locked(None)
            poll = min(0.1, self.hang_timeout / 4)
            rescued_at = -1.0
            while self._outcome is None:
                self._cv.wait(poll)
                running = self._running
                if self._outcome is not None or running is None:
                    continue
                idle = _real.monotonic() - self._last_switch
                if idle > self.hang_timeout:
                    self._end_locked(Outcome.HANG, self._hang_report(running), running.name)
                elif (self._spins is not None and idle > self.hang_timeout / 2
                        and rescued_at != self._last_switch):
                    rescued_at = self._last_switch       # a spin? see ``rescue``
                    self._spins.rescue(running.thread)
        stuck = self._join_all()
        if self._internal is not None:
            raise self._internal
        return self._result(stuck)

    def unwinding(self) -> bool:
        """Whether the calling thread is a model thread unwinding from the run's end."""
        me: _Thread | None = getattr(self._tls, "me", None)
        return me is not None and me.unwinding

    def stop(self, reason: str = "stopped by request") -> None:
        """End the run: every model thread raises :class:`RunStopped` at its next point."""
        with self._lock:
            self._end_locked(Outcome.STOPPED, reason)

    def activate(self) -> None:
        # Interception and instrumentation are on exactly while the scheduler is
        # installed: ``install`` undoes them in its ``finally``, whatever ended the run.
        if self.pin_threads:                    # for model threads started from now on
            cpu = _osched.run_cpu()
            self._placement = None if cpu is None else _osched.Placement(cpu)
        if self.intercept:
            from . import intercept
            from .rescue import SpinRescue
            intercept.enable()
            self._spins = SpinRescue()
        if self.instrument:
            from .instrument import Instrumentation
            try:
                self._instrumented = Instrumentation(self.instrument)
                self._instrumented.enable()
            except BaseException:
                self._instrumented = None
                self._restore()
                raise

    def deactivate(self) -> None:
        # Uninstalled with threads still parked (the driver never called wait(), or
        # raised): stop them so that none is left behind.
        try:
            with self._lock:
                pending = self._outcome is None and bool(self._threads)
                if pending:
                    self._end_locked(Outcome.STOPPED, "the scheduler was uninstalled first")
            if pending:
                self._join_all()
        finally:
            self._restore()

    def _restore(self) -> None:
        if self._spins is not None:
            self._spins.close()
            self._spins = None
        if self._instrumented is not None:
            self._instrumented.disable()
            self._instrumented = None
        if self.intercept:
            from . import intercept
            intercept.disable()

    # -- blocking ----------------------------------------------------------------------

    def _block(self, me: _Thread, cond: Callable[[], Any] | None, what: str,
               deadline: int | None, ready: Callable[[], Any] | None) -> bool:
        """Park ``me`` until ``cond`` (None: only time) holds or ``deadline`` is due."""
        with self._lock:
            me.status = _BLOCKED
            me.label = what
            me.what = what if deadline is None else f"{what} (until step {deadline})"
            me.waits = cond is not None
            me.ready = ready
            inner = cond.cond if isinstance(cond, ReadyCond) else cond
            me.pure = inner.cond if isinstance(inner, PureCond) else None
            me.deadline = deadline
            while True:
                me.epoch = self._epoch           # cond is false as of now (invariant B)
                self._dispatch_locked(me)
                self._lock.release()
                try:
                    self._park(me)               # RUN: granted (due); PROBE: try cond
                    probe = me.wake == _PROBE
                    try:
                        ok = self._eval(me, cond) if cond is not None else False
                    except BaseException:
                        if probe:
                            with self._lock:
                                self._grant_locked(me)   # raising is a step too
                        raise
                finally:
                    self._lock.acquire()
                if self._outcome is not None:    # ended (a hang elsewhere) meanwhile
                    self._unwind(me)
                    return ok
                if ok or not probe:
                    if probe:
                        self._grant_locked(me)
                    me.deadline = None
                    me.waits = False
                    me.ready = None
                    me.pure = None
                    return ok
                self._blocked_now.append(me.name)  # still blocked: decide again

    def _park(self, me: _Thread) -> None:
        """Wait for the token; raise RunStopped if woken to unwind."""
        me.gate.get()                    # the releaser set me.wake first, under the lock
        me.permit = False
        if me.wake == _STOP:
            me.unwinding = True
            raise RunStopped(f"{me.name}: the run ended ({self._outcome and self._outcome.value})")

    def _unwind(self, me: _Thread) -> None:
        """A point after the run ended: raise once, then let the unwinding run free."""
        if not me.unwinding:
            me.unwinding = True
            raise RunStopped(f"{me.name}: the run ended")

    def _unwind_wait(self, me: _Thread, cond: Callable[[], Any],
                     timeout: float | None) -> bool:
        self._unwind(me)
        if self._eval(me, cond):
            return True
        if timeout is not None:
            return False
        raise RunStopped(f"{me.name}: cannot wait while the run is unwinding")

    # -- decisions (lock held, by the thread giving up the token) -----------------------

    def _candidates(self, live: list[_Thread]) -> tuple[list[_Thread], list[str], list[str]]:
        """The threads that may take the next step (invariant B decides for waiters),
        with their names and labels in the same order (what the decision is built of).

        A waiter whose epoch moved is offered only if its ``ready`` test (when it gave
        one) does not rule it out; a false ``ready`` proves the condition false as of
        now, so its epoch is brought up to date and invariant B holds again.

        Ready tests run here, in the deciding thread: pure by contract, so the thread
        that evaluates them does not matter; points inside them are no-ops (the caller,
        ``_dispatch_locked``, marks the decider as inside a condition, as ``_eval``
        does for a waiter). An error counts as "may go on": the waiter then evaluates
        its own condition and meets the error itself.
        """
        clock, epoch = self._clock, self._epoch
        out: list[_Thread] = []
        names: list[str] = []
        labels: list[str] = []
        add, add_name, add_label = out.append, names.append, labels.append
        for t in live:
            status = t.status
            if status is _BLOCKED:
                if t.deadline is None or t.deadline > clock:
                    if not t.waits or t.epoch >= epoch:
                        continue
                    ready = t.ready
                    if ready is not None:
                        try:
                            ok = ready()
                        except Exception:  # noqa: BLE001 - the waiter's evaluation reports it
                            ok = True
                        if not ok:
                            t.epoch = epoch
                            continue
            elif status is not _RUNNABLE:
                continue
            add(t)
            add_name(t.name)
            add_label(t.label)
        return out, names, labels

    def _dispatch_locked(self, me: _Thread | None) -> None:
        """Hand the token to the next thread, or end the run; ``me`` is the deciding
        thread's record (``None``: the driver, which starts the run).

        While it decides, ``me`` counts as inside a wait condition: the ready tests and
        pure conditions it evaluates for waiters see their points as no-ops and
        interception answer in the real primitives' terms, as in the waiter itself.
        """
        self._running = None
        was = False
        if me is not None:
            was, me.in_cond = me.in_cond, True
        try:
            carried = False
            cands: list[_Thread] = []
            names: list[str] = []
            labels: list[str] = []
            while self._outcome is None:
                live = self._live
                if not live:
                    self._end_locked(Outcome.OK, "")
                    return
                if not carried:
                    cands, names, labels = self._candidates(live)
                carried = False
                if not cands:
                    due = [t.deadline for t in live if t.deadline is not None]
                    if due:
                        self._clock = max(self._clock, min(due))   # idle: time jumps
                        self._epoch += 1
                        continue
                    self._end_locked(Outcome.DEADLOCK, self._deadlock_report(live))
                    return
                clock = self._clock
                if clock >= self.max_steps:
                    self._end_locked(Outcome.BUDGET, f"the budget of {self.max_steps} steps "
                                     "ran out")
                    return
                if (self.livelock_steps is not None
                        and clock - self._last_progress >= self.livelock_steps):
                    self._end_locked(Outcome.LIVELOCK, self._livelock_report(live))
                    return
                index = len(self._steps)
                first_ask = self._asked_index != index
                if first_ask:
                    self._asked_index = index
                    self._blocked_now = []
                prev = self._prev
                decision = Decision(clock, index, tuple(names),
                                    prev.name if prev is not None else None,
                                    tuple(self._blocked_now), self,
                                    prev is not None and prev.yielded
                                    and prev.status is _RUNNABLE,
                                    tuple(labels))
                if first_ask:
                    self._first_default = decision.default
                try:
                    name = self.strategy.choose(decision)
                except BaseException as exc:  # noqa: BLE001 - re-raised by wait()
                    self._internal = exc
                    self._end_locked(Outcome.STOPPED, f"the strategy failed: {exc}")
                    return
                if name is None:
                    self._end_locked(Outcome.ABANDONED, "the strategy abandoned the run")
                    return
                try:
                    at = names.index(name)
                except ValueError:
                    self._internal = UsageError(
                        f"strategy {self.strategy.name} chose {name!r} at step {clock}, "
                        f"which is not a candidate ({', '.join(decision.candidates)})")
                    self._end_locked(Outcome.STOPPED, str(self._internal))
                    return
                chosen = cands[at]
                deadline = chosen.deadline
                if chosen.status is _RUNNABLE or (deadline is not None and deadline <= clock):
                    self._grant_locked(chosen)
                    chosen.wake = _RUN
                else:
                    pure = chosen.pure
                    if pure is not None and me is not None and _probe(pure) is False:
                        # What the woken waiter would do (``_block``), without waking it.
                        # Nothing else changed: the other candidates' ready tests (pure)
                        # would give what they gave, so they stay candidates as they are.
                        self._blocked_now.append(chosen.name)
                        chosen.epoch = self._epoch
                        del cands[at], names[at], labels[at]
                        carried = True
                        continue
                    self._running = chosen           # a probe: it decides again if still blocked
                    chosen.wake = _PROBE
                if not index & 4095 and self._placement is not None:
                    self._placement.review([t.thread for t in live if t.thread is not None])
                self._last_switch = _real.monotonic()
                self._hand(chosen)                   # hand-over; pairs with _park()
                return
        finally:
            if me is not None:
                me.in_cond = was

    @staticmethod
    def _hand(t: _Thread) -> None:
        """Let ``t`` pass its gate (lock held), at most one pending release at a time.

        A release still pending when another comes (the run ends while ``t`` is being
        woken to run) is not repeated: ``t`` reads ``wake`` only after it passed the
        gate, so it sees the later reason either way.
        """
        if not t.permit:
            t.permit = True
            t.gate.put(None)

    def _grant_locked(self, t: _Thread) -> None:
        """Record the step ``t`` takes now and give it the token."""
        prev = self._prev
        if prev is not None and prev is not t and prev.status == _RUNNABLE \
                and not prev.yielded:            # a switch at a voluntary yield is free
            self._preemptions.append(self._clock)
        self._steps.append((self._clock, t.name, t.label))   # a Step at the end (_result)
        self._defaults.append(self._first_default)
        t.last_step = self._clock
        self._clock += 1
        self._epoch += 1
        self._prev = t
        self._running = t
        t.status = _RUNNING

    def _end_locked(self, outcome: Outcome, report: str, culprit: str | None = None) -> None:
        """End the run (first call wins) and wake every parked thread to unwind."""
        if self._outcome is not None:
            return
        self._culprit = culprit
        if outcome is Outcome.OK and self._errors:
            outcome = Outcome.FAILED
        self._outcome = outcome
        self._report = report
        self._final = {t.name: self.explain(t.name) for t in self._threads}
        self._running = None
        for t in self._threads:
            if t.status != _FINISHED:
                t.wake = _STOP
                self._hand(t)
        self._cv.notify_all()

    # -- threads ---------------------------------------------------------------------

    def _register(self, rec: _Thread) -> None:
        me: _Thread | None = getattr(self._tls, "me", None)
        with self._lock:
            if self._started and me is None and self._outcome is None:
                raise UsageError(f"cannot start model thread {rec.name!r} from outside the "
                                 "run while it runs: start threads before wait() or from "
                                 "model threads")
            old = self._named(rec.name)
            if old is not None and old.status != _FINISHED:
                raise UsageError(f"a model thread named {rec.name!r} is already running; "
                                 "names identify threads in traces, make them unique")
            self._threads.append(rec)
            self._live.append(rec)
            self._by_name[rec.name] = rec
            if self._outcome is not None:
                rec.wake = _STOP
                self._hand(rec)

    def _thread_main(self, rec: _Thread) -> None:
        placement = self._placement
        if placement is not None:
            _osched.settle(placement.cpu)
        self._tls.me = rec
        error: BaseException | None = None
        try:
            self._park(rec)
            rec.target()
        except RunStopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - recorded, then passed on
            error = exc
            with self._lock:
                if self._outcome is None:
                    rec.error = type(exc).__name__
                    self._errors.append(ThreadError(rec.name, rec.last_step, exc,
                                                    traceback.format_exc()))
                    if self.stop_on_error:
                        self._end_locked(Outcome.FAILED, "")
                else:
                    error = None         # raised while unwinding: not the run's result
        finally:
            with self._lock:
                rec.status = _FINISHED
                self._exits += 1                 # what exit_mark() promises
                self._live.remove(rec)
                if self._running is rec:
                    self._dispatch_locked(rec)
                self._cv.notify_all()
            self._tls.me = None
        if error is not None and self.propagate_errors:
            raise error

    def _join_all(self) -> list[str]:
        """Wait (wall clock, bounded) for every model thread to exit; the rest are stuck."""
        deadline = _real.monotonic() + max(1.0, self.hang_timeout)
        with self._lock:
            threads = [t.thread for t in self._threads if t.thread is not None]
        for thread in threads:
            thread.join(max(0.0, deadline - _real.monotonic()))
        return [t.name for t in threads if t.is_alive()]

    # -- interception hooks (see ``intercept`` and ``_hybrid``) ----------------------------

    def model_record(self) -> _Thread | None:
        """The caller's record if it is a model thread of this run taking steps (not
        evaluating a wait condition, not inside :meth:`raw`), else ``None``."""
        me: _Thread | None = getattr(self._tls, "me", None)
        return None if me is None or me.in_cond else me

    def in_model_thread(self) -> bool:
        """Whether a model thread of this run calls, also while it evaluates a wait
        condition or a ready test (what it reads must then be in scheduler terms too)."""
        return getattr(self._tls, "me", None) is not None

    @contextlib.contextmanager
    def raw(self, me: _Thread) -> Iterator[None]:
        """Let model thread ``me`` use real primitives for a moment (it keeps the token;
        points are no-ops): for waits that end without another model step."""
        previous, me.in_cond = me.in_cond, True
        try:
            yield
        finally:
            me.in_cond = previous

    def adopt(self, thread: threading.Thread, parent: _Thread) -> None:
        """Make ``thread``, about to be started by model thread ``parent``, a model
        thread of this run. Its name becomes deterministic: ``parent.K`` for the K-th
        thread ``parent`` started, plus ``:name`` when the code gave it a name without
        digits (digits often come from process-wide counters: ``Thread-7``,
        ``ThreadPoolExecutor-3_0``, which differ between two runs of one program)."""
        children, key = self._children, parent.name
        k = children[key] = (children[key] if key in children else 0) + 1
        name = f"{parent.name}.{k}"
        if not any(c.isdigit() for c in thread.name):
            name = f"{name}:{thread.name}"
        rec = _Thread(name, thread.run)
        rec.thread = thread
        thread.name = name
        thread.run = functools.partial(self._thread_main, rec)  # type: ignore[method-assign]
        self._adopted[thread] = rec
        self._register(rec)

    def record_of(self, thread: threading.Thread) -> _Thread | None:
        """The record of ``thread`` if it is a model thread of this run."""
        if isinstance(thread, _ModelThread):
            return thread._rec if thread._owner is self else None
        adopted = self._adopted
        return adopted[thread] if thread in adopted else None

    @staticmethod
    def finished(rec: _Thread) -> bool:
        """Whether the model thread took its last step."""
        return rec.status == _FINISHED

    # -- what people read ---------------------------------------------------------------

    def _named(self, name: str) -> _Thread | None:
        """The latest thread named ``name`` (``None``: none); ``in`` and ``[]``, not
        ``.get``, which locks a dict another thread made on free-threaded 3.13."""
        by_name = self._by_name
        return by_name[name] if name in by_name else None

    def label_of(self, name: str) -> str | None:
        t = self._named(name)
        return None if t is None else t.label

    def probe_only(self, name: str) -> bool:
        t = self._named(name)
        return t is not None and t.status == _BLOCKED and not (
            t.deadline is not None and t.deadline <= self._clock)

    def explain(self, name: str) -> str:
        t = self._named(name)
        if t is None:
            return "was never started"
        if t.error:
            return f"raised {t.error}"
        if t.status == _FINISHED:
            return "finished"
        if t.status == _BLOCKED:
            return f"waits for {t.what}" if t.waits else f"sleeps {t.what}"
        if t.status == _RUNNING:
            return f"runs after {t.label}"
        return f"at {t.label}"

    def _states(self, threads: list[_Thread], stacks: bool = True) -> str:
        lines = []
        for t in threads:
            lines.append(f"  {t.name}: {self.explain(t.name)} (last ran at step {t.last_step})")
            if stacks:
                lines.append(thread_stack(t.thread))
        return "\n".join(lines)

    def _deadlock_report(self, live: list[_Thread]) -> str:
        return (f"deadlock at step {self._clock}: every live model thread is blocked\n"
                + self._states(live))

    def _livelock_report(self, live: list[_Thread]) -> str:
        return (f"livelock at step {self._clock}: no progress in {self.livelock_steps} steps "
                f"(last progress: {self._progress_label})\n" + self._states(live))

    def _hang_report(self, t: _Thread) -> str:
        others = [o for o in self._threads if o is not t and o.status != _FINISHED]
        return (f"hang at step {self._clock}: model thread {t.name} ran for more than "
                f"{self.hang_timeout:g} s of wall-clock time without reaching a schedule "
                f"point (it ran from {t.label!r}). It is blocked where the scheduler cannot "
                "see it: a C call, or a lock, event or sleep that interception does not "
                "cover (created before the run began, bound at import, or the run has "
                "interception off). Create it inside the run (the program's factory, the "
                "plug-in's constructor), or wait through sched.wait_until, sched.Mutex, "
                "sched.Event or sched.sleep.\n"
                f"  {t.name} is here:\n{thread_stack(t.thread)}\n"
                + (f"other threads:\n{self._states(others, stacks=False)}" if others else ""))

    def _result(self, stuck: list[str]) -> RunResult:
        outcome = self._outcome or Outcome.STOPPED
        failure: dict[str, Any] | None = None
        if self._errors:
            err = self._errors[0]
            failure = {"thread": err.thread, "step": err.step, "error": err.summary()}
        elif outcome in FAILURES:
            culprit = self._named(self._culprit) if self._culprit else None
            step = culprit.last_step if culprit is not None else self._clock
            failure = {"thread": self._culprit, "step": step, "error": outcome.value}
        trace = Trace(steps=tuple(map(_step_of, self._steps)),
                      threads=tuple(dict.fromkeys(t.name for t in self._threads)),
                      strategy=self.strategy.describe(),
                      config={"max_steps": self.max_steps,
                              "livelock_steps": self.livelock_steps},
                      outcome=outcome.value, failure=failure, end=self._clock,
                      final=self._final, preemptions=tuple(self._preemptions),
                      meta=self.meta)
        return RunResult(outcome, trace, list(self._errors), self._report, stuck,
                         tuple(self._defaults), self.access_log.entries)
