"""The harness's wrapper around any RCU flavor or SRCU domain: calls in, events out.

docs/design.md, invariant 1: the oracles never read an implementation's own bookkeeping.
Instead every implementation, ours or a user's plug-in, is driven through these
wrappers, which report what the *caller* can observe:

* a read-side section begins when ``read_lock`` has returned and ends just before
  ``read_unlock`` is called (the narrowest span the implementation must protect);
* a grace period spans ``synchronize()``: it begins before the call and ends after it
  returns (the widest span, so the oracle never blames a correct implementation);
* a ``call_rcu`` callback's grace period begins when it is queued and ends when the
  callback starts;
* a polled cookie's grace period begins before ``get_state`` and ends when
  ``poll_state`` first says it is done (or ``cond_synchronize`` returns);
* ``barrier()`` must not return before every callback queued before it has run:
  checked by counting, and reported as a too-short grace period of the barrier.

With these spans, "a grace period that began after a section began ended before the
section ended" is a fact about the implementation alone.
"""

from __future__ import annotations

import collections
import sys
import threading
from typing import Any, Callable

from .. import sched
from ..check import Kind, Oracles, Violation
from ..rcu import CallbackWorker
from ..rcu._flavor import FlavorBase

__all__ = ["CheckedRCU", "CheckedSRCU", "LATENCY_SAMPLES"]

#: Grace-period latencies kept per wrapper (the newest; bounds a long run's memory).
LATENCY_SAMPLES = 20000


class _CheckedCallbacks:
    """What the RCU and SRCU wrappers share: the oracle key, timed grace periods, and
    the callback and barrier checks."""

    def __init__(self, impl: Any, oracles: Oracles, prefix: str) -> None:
        self.oracles = oracles
        self.name = str(getattr(impl, "name", type(impl).__name__))
        # Interned: immortal on the free-threaded build, so the readers that load it at
        # every section and dereference share no reference count (docs/design.md, sec. 6).
        self.key = sys.intern(f"{prefix}:{self.name}")
        #: What this wrapper notes as progress (``sched.progress``) for the livelock
        #: bound: a grace period that completed, a callback that ran.
        self.progress_kinds = (f"{self.key}: grace period", f"{self.key}: callback")
        self._cb_lock = threading.Lock()       # guards _queued/_started; a leaf
        self._queued = 0
        self._started = 0
        #: Grace-period latencies in scheduler time (seconds, or steps), newest last.
        self.gp_latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_SAMPLES)

    def _timed(self, synchronize: Callable[[], None]) -> None:
        token = self.oracles.gp_begin(self.key)
        start = sched.now()
        synchronize()
        self.gp_latencies.append(sched.now() - start)
        self.oracles.gp_end(token)
        sched.progress(self.progress_kinds[0])     # a grace period completed: no livelock

    def _wrap_callback(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        # Queuing a callback does not wait: legal inside a read-side section.
        token = self.oracles.gp_begin(self.key, blocking=False)

        def run() -> Any:
            self.oracles.gp_end(token)
            with self._cb_lock:
                self._started += 1
            result = callback()
            sched.progress(self.progress_kinds[1])
            return result
        return run

    def _count_queued(self) -> None:
        """Count a callback once the implementation has queued it: a barrier that
        begins later must wait for it (counting before the enqueue would blame a
        barrier for a callback another thread had not yet queued)."""
        with self._cb_lock:
            self._queued += 1

    def _checked_barrier(self, barrier: Callable[[], None]) -> None:
        with self._cb_lock:
            queued = self._queued
        barrier()
        with self._cb_lock:
            started = self._started
        if started < queued:
            self.oracles.collector.report(Violation.capture(
                Kind.GP_TOO_SHORT, f"in {self.key} barrier", sched.current_name(),
                what=(f"barrier() on {self.key} returned with {queued - started} of "
                      f"{queued} callbacks queued before it not yet invoked")))


class CheckedRCU(_CheckedCallbacks):
    """An RCU flavor (built-in or plug-in) whose every call feeds the oracles."""

    def __init__(self, flavor: Any, oracles: Oracles) -> None:
        super().__init__(flavor, oracles, "rcu")
        self.flavor = flavor
        self._fallback_worker: Any = None
        noop = _noop
        self._register = getattr(flavor, "register_thread", noop)
        self._unregister = getattr(flavor, "unregister_thread", noop)
        self._qs = getattr(flavor, "quiescent_state", noop)
        self._offline = getattr(flavor, "thread_offline", noop)
        self._online = getattr(flavor, "thread_online", noop)

    def register_thread(self) -> None:
        """Register the calling thread with the flavor, if it wants that."""
        self._register()

    def unregister_thread(self) -> None:
        """Unregister the calling thread; reports a section still open (section-leak)."""
        self.oracles.thread_exit()
        self._unregister()

    def quiescent_state(self) -> None:
        """Report a quiescent state (QSBR); a no-op for flavors without one."""
        self._qs()

    def thread_offline(self) -> None:
        """Put the calling thread offline (QSBR) around a long block."""
        self._offline()

    def thread_online(self) -> None:
        """Back online after ``thread_offline``."""
        self._online()

    def read_lock(self) -> None:
        """Begin a section; the oracles see it once the flavor's lock has returned."""
        self.flavor.read_lock()
        self.oracles.section_begin(self.key, sleepable=False)

    def read_unlock(self) -> None:
        """End a section; the oracles see it end before the flavor's unlock is called."""
        self.oracles.section_end(self.key)
        self.flavor.read_unlock()

    def reader(self) -> Any:
        """The calling thread's read side without the per-thread lookups: an object
        with ``read_lock()`` and ``read_unlock()``. The oracles are not told (the
        caller, a scheme's fast path, does: after the lock, before the unlock).

        A built-in flavor whose ``read_lock``/``read_unlock`` are the base's (a
        per-thread lookup, then the record's call) gives its reader handle, which is
        that record; any other flavor (a plug-in, a subclass that changes them) its own
        two methods, so what it does is what runs. Call it in the thread that uses it,
        once that thread is registered.
        """
        flavor = self.flavor
        cls = type(flavor)
        if (isinstance(flavor, FlavorBase) and cls.read_lock is FlavorBase.read_lock
                and cls.read_unlock is FlavorBase.read_unlock):
            return flavor.reader()
        return _Methods(flavor.read_lock, flavor.read_unlock)

    def synchronize(self) -> None:
        """A grace period, spanning the flavor's ``synchronize()``."""
        self._timed(self.flavor.synchronize)

    def call_rcu(self, callback: Callable[[], Any]) -> None:
        """Queue ``callback``; its grace period is checked when it starts."""
        wrapped = self._wrap_callback(callback)
        call = getattr(self.flavor, "call_rcu", None)
        if call is not None:
            call(wrapped)
        else:
            if self._fallback_worker is None:
                self._fallback_worker = CallbackWorker(self.flavor.synchronize,
                                                       f"{self.name}-callbacks")
            self._fallback_worker.enqueue(wrapped)
        self._count_queued()

    def barrier(self) -> None:
        """``rcu_barrier()``, checked: every earlier callback must have been invoked."""
        barrier = getattr(self.flavor, "barrier", None)
        if barrier is None:
            barrier = self._fallback_worker.barrier if self._fallback_worker else _noop
        self._checked_barrier(barrier)

    def get_state(self) -> tuple[Any, Any]:
        """A cookie: the flavor's own, paired with the oracle's grace-period token.

        A plug-in without polled grace periods gets a cookie that never polls done,
        so ``cond_synchronize`` always waits: conservative, and still correct.
        """
        token = self.oracles.gp_begin(self.key, blocking=False)
        get_state = getattr(self.flavor, "get_state", None)
        return (get_state() if get_state is not None else _NO_COOKIE, token)

    def poll_state(self, cookie: tuple[Any, Any]) -> bool:
        """Whether the cookie's grace period is over; a yes is checked by the oracle."""
        inner, token = cookie
        done = inner is not _NO_COOKIE and bool(self.flavor.poll_state(inner))
        if done:
            self.oracles.gp_end(token)
        return done

    def cond_synchronize(self, cookie: tuple[Any, Any]) -> None:
        """``synchronize()`` unless the cookie's grace period is already over."""
        inner, token = cookie
        if inner is _NO_COOKIE:
            self.flavor.synchronize()
        else:
            self.flavor.cond_synchronize(inner)
        self.oracles.gp_end(token)

    def shutdown(self) -> None:
        """Stop the flavor's (or the fallback's) callback worker."""
        if self._fallback_worker is not None:
            self._fallback_worker.shutdown()
        getattr(self.flavor, "shutdown", _noop)()

    def __repr__(self) -> str:
        return f"<CheckedRCU {self.key} {self.flavor!r}>"


class CheckedSRCU(_CheckedCallbacks):
    """An SRCU domain (built-in or plug-in) whose every call feeds the oracles."""

    def __init__(self, domain: Any, oracles: Oracles) -> None:
        super().__init__(domain, oracles, "srcu")
        self.domain = domain

    def read_lock(self) -> Any:
        """Begin a sleepable section; returns the domain's index (passed back as is)."""
        idx = self.domain.read_lock()
        self.oracles.section_begin(self.key, sleepable=True)
        return idx

    def read_unlock(self, idx: Any) -> None:
        """End the section begun with ``idx``."""
        self.oracles.section_end(self.key)
        self.domain.read_unlock(idx)

    def synchronize(self) -> None:
        """A grace period of this domain, spanning its ``synchronize()``."""
        self._timed(self.domain.synchronize)

    def call_srcu(self, callback: Callable[[], Any]) -> None:
        """Queue ``callback`` behind a grace period of this domain."""
        self.domain.call_srcu(self._wrap_callback(callback))
        self._count_queued()

    def barrier(self) -> None:
        """``srcu_barrier()``, checked like ``rcu_barrier()``."""
        self._checked_barrier(self.domain.barrier)

    def cleanup(self) -> None:
        """``cleanup_srcu_struct()``."""
        getattr(self.domain, "cleanup", _noop)()

    def __repr__(self) -> str:
        return f"<CheckedSRCU {self.key} {self.domain!r}>"


class _Methods:
    """A reader handle made of a flavor's own ``read_lock`` and ``read_unlock``."""

    __slots__ = ("read_lock", "read_unlock")

    def __init__(self, read_lock: Callable[[], Any], read_unlock: Callable[[], Any]) -> None:
        self.read_lock = read_lock
        self.read_unlock = read_unlock


#: The inner cookie of a plug-in that has no ``get_state``.
_NO_COOKIE = object()


def _noop() -> None:
    """Stands in for an optional protocol method a plug-in does not have."""
