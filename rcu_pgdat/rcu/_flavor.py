"""What the QSBR and memb flavors share: grace-period bookkeeping around a reader wait.

Why it is correct
-----------------
A flavor supplies ``_wait_for_readers()``: wait until every read-side section that was
open when the call began has ended. Everything else is built on it here.

``synchronize()`` runs grace periods one at a time under ``_gp_lock`` and brackets the
reader wait with ``GPSequence.start()`` / ``end()``, so the sequence is odd exactly while
a reader wait is in progress. Polled cookies (``get_state``) are ``GPSequence.snap()``;
``_gpseq`` explains why a cookie taken inside a section cannot report done before the
section ends: the grace period that satisfies it calls ``start()`` after the cookie was
taken, so its reader wait began after the section did and waits for it.

Grace-period sharing: ``synchronize()`` takes a cookie *before* queueing on
``_gp_lock``. If, once it holds the lock, the cookie is already done, a full grace
period began after this call and has ended, which is everything the caller was owed,
so it returns without another reader wait. Concurrent updaters therefore share grace
periods. Waiting for the lock and then *always* returning (because "someone else just
finished one") would be wrong: that grace period may have begun before our caller
unlinked its object.

A reader thread that exits inside a section (``_wait_for``) makes every later grace
period impossible: the flavor records why in ``_broken``, the grace period raises
``UsageError`` instead of hanging or lying, and so does every later grace-period call
(as ``srcu`` does). The interrupted grace period leaves the sequence odd, so no cookie
ever reports done early. (Any other exception out of the wait, a controlled scheduler
stopping the run, also leaves it odd; a later ``synchronize()`` then completes that
grace period rather than starting a second one.)

Per-thread state lives in ``_tls`` (a ``threading.local``) for the owner's fast path and
in ``_registry`` for grace-period waiters; ``shutdown()`` replaces ``_tls`` with an empty
one, so a read-side call after shutdown fails its own lookup and raises
``ShutdownError`` without a shutdown check on the fast path.

Lock order: ``_gp_lock`` before the registry lock and the callback worker's lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic

from .. import sched
from ..errors import (
    ShutdownError,
    SynchronizeInReaderError,
    UnbalancedUnlockError,
    UnregisteredThreadError,
    UsageError,
)
from ._callbacks import CallbackWorker
from ._gpseq import GPSequence
from ._registry import R, ReaderRegistry

__all__ = ["FlavorBase"]


class FlavorBase(Generic[R]):
    """Grace periods, polled cookies, callbacks and shutdown over a flavor's reader wait.

    Subclasses implement ``_wait_for_readers`` (with ``_wait_for``) and
    ``_section_depth``, and may wrap blocking calls with ``_quiescent_while_blocked``
    (QSBR goes offline there).
    """

    #: Short name for reports; also the default instance name.
    name = "abstract"

    def __init__(self, name: str | None = None,
                 before_batch: Callable[[], None] | None = None,
                 after_batch: Callable[[], None] | None = None) -> None:
        if name is not None:
            self.name = name
        self._tls = threading.local()
        self._registry: ReaderRegistry[R] = ReaderRegistry(self.name, self._section_depth)
        self._gp = GPSequence()
        #: Guards the grace-period state: ``_gp`` writes and the flavor's global counter.
        self._gp_lock = sched.Mutex(f"{self.name}.gp_lock")
        self._shut_down = False
        #: Why no grace period can end any more (written once, under ``_gp_lock``).
        self._broken: str | None = None
        self._callbacks = CallbackWorker(self.synchronize, f"{self.name}-callbacks",
                                         before_batch, after_batch)

    # -- subclass hooks ----------------------------------------------------------------

    def _wait_for_readers(self) -> None:
        """Wait until every section open when this call began has ended (gp lock held)."""
        raise NotImplementedError

    def _section_depth(self, record: R) -> int:
        """Nesting depth of the open sections ``record`` shows (its owner's view)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _quiescent_while_blocked(self) -> Iterator[None]:
        """Context around every blocking call; QSBR goes offline inside it."""
        yield

    # -- helpers -----------------------------------------------------------------------

    def _own_record(self) -> R | None:
        """The calling thread's record, or ``None`` when it is not registered."""
        return getattr(self._tls, "rec", None)

    def _shutdown_error(self, what: str) -> ShutdownError:
        return ShutdownError(f"{self.name}: {what} after shutdown(); the flavor is gone, "
                             "create a new one")

    def _check_alive(self, what: str) -> None:
        if self._shut_down:
            raise self._shutdown_error(what)

    def _check_usable(self, what: str) -> None:
        """For grace-period calls: alive, and grace periods still possible."""
        self._check_alive(what)
        if self._broken is not None:
            raise UsageError(self._broken)

    def _lookup_failed(self, what: str, error: type[Exception] = UnregisteredThreadError,
                       hint: str = "call register_thread() first") -> Exception:
        """The exception for a fast-path call whose record lookup failed."""
        if self._shut_down:
            return self._shutdown_error(what)
        return error(f"{self.name}: {what} from thread {sched.current_name()!r}, "
                     f"which is not registered; {hint}")

    def _no_matching_lock(self, record: R | None) -> Exception:
        """The exception for ``read_unlock()`` in a thread with no open section."""
        if record is None:
            return self._lookup_failed("read_unlock()", UnbalancedUnlockError,
                                       "there is no read_lock() to match")
        return UnbalancedUnlockError(f"{self.name}: read_unlock() in thread "
                                     f"{record.name!r} without a matching read_lock()")

    def _add_record(self, record: R) -> None:
        self._registry.add(record)
        self._tls.rec = record

    def _remove_record(self, record: R) -> None:
        self._registry.remove(record)
        del self._tls.rec

    @contextlib.contextmanager
    def _blocking(self, what: str) -> Iterator[None]:
        """Checks and state around a call that may wait for a grace period."""
        self._check_usable(what)
        record = self._own_record()
        if record is not None and self._section_depth(record):
            raise SynchronizeInReaderError(
                f"{self.name}: {what} inside a read-side section of the same flavor "
                f"(thread {record.name!r}) would wait for that section to end, which "
                "never happens; call it after read_unlock()")
        with self._quiescent_while_blocked():
            yield

    def _wait_for(self, record: R, passed: Callable[[R], bool]) -> None:
        """Wait until ``passed(record)``; raise if its thread exited inside a section.

        ``passed`` reads only ``record``'s counters (one load each) and is evaluated by
        this thread alone, as ``sched.wait_until`` promises. A dead thread's counters
        never change, so the check after the wait is stable.
        """
        thread = record.thread
        died: list[bool] = []

        def passed_or_dead() -> bool:
            if passed(record):
                return True
            if not thread.is_alive():
                died.append(True)
                return True
            return False

        sched.wait_until(passed_or_dead, f"{self.name} waits for reader {record.name}")
        # Re-check only a dead thread: a live memb reader may have left its section
        # (ending the wait) and begun a new one since. (The first version re-checked
        # every reader and called live ones dead; stress/torture.py caught it.)
        if not died or passed(record) or not self._section_depth(record):
            return
        self._broken = (
            f"{self.name}: thread {record.name!r} exited inside "
            f"{self._section_depth(record)} read-side section(s); no grace period can "
            "end. End every section with read_unlock() before the thread exits "
            "(try/finally).")
        raise UsageError(self._broken)

    def readers(self) -> list[R]:
        """The registered reader records, in name order (for reports and tests)."""
        return self._registry.snapshot()

    # -- grace periods -----------------------------------------------------------------

    def synchronize(self) -> None:
        """Wait for a full grace period: every section begun before the call has ended."""
        with self._blocking("synchronize()"):
            self._synchronize()

    def _synchronize(self) -> None:
        sched.point("rcu:gp:snap")
        cookie = self._gp.snap()      # before queueing on the lock; see "sharing" above
        with self._gp_lock:
            sched.point("rcu:gp:check")
            if self._gp.done(cookie):
                return
            if self._broken is not None:      # found by the grace period we queued behind
                raise UsageError(self._broken)
            sched.point("rcu:gp:start")
            if not self._gp.seq & 1:  # odd: one was interrupted (the run was stopped)
                self._gp.start()      # pairs with get_state(): a later cookie needs more
            self._wait_for_readers()
            sched.point("rcu:gp:end")
            self._gp.end()            # after the wait: poll_state() may now say done
        sched.progress(f"{self.name}: grace period")

    def get_state(self) -> int:
        """A cookie for a full grace period that starts after this call."""
        self._check_usable("get_state()")
        sched.point("rcu:get_state")
        return self._gp.snap()

    def poll_state(self, cookie: int) -> bool:
        """Whether a full grace period has elapsed since ``get_state`` gave ``cookie``."""
        self._check_usable("poll_state()")
        sched.point("rcu:poll_state")
        return self._gp.done(cookie)

    def cond_synchronize(self, cookie: int) -> None:
        """``synchronize()`` unless the grace period of ``cookie`` has already elapsed.

        Refused inside a section even when the cookie is done: whether it would block
        must not depend on timing.
        """
        with self._blocking("cond_synchronize()"):
            sched.point("rcu:cond_synchronize")
            if not self._gp.done(cookie):
                self._synchronize()

    # -- callbacks ---------------------------------------------------------------------

    def call_rcu(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` in the worker after a full grace period from now."""
        self._check_usable("call_rcu()")
        self._callbacks.enqueue(callback)

    def barrier(self) -> None:
        """Return once every callback queued by ``call_rcu`` before this call has run."""
        with self._blocking("barrier()"):
            self._callbacks.barrier()

    def rcu_barrier(self) -> None:
        """The kernel's name for :meth:`barrier`."""
        self.barrier()

    def shutdown(self) -> None:
        """Run pending callbacks, stop the worker; later calls raise ``ShutdownError``.

        Idempotent. On a flavor whose grace periods became impossible (see the module
        comment) it still shuts down, then raises ``UsageError`` with the reason:
        callbacks still queued will never run.
        """
        if self._shut_down:
            return
        if self._broken is None:
            with self._blocking("shutdown()"):
                self._callbacks.shutdown()
        else:
            # The worker's next grace period fails and stops it; its barrier says so.
            with contextlib.suppress(ShutdownError):
                self._callbacks.shutdown()
        self._shut_down = True
        self._tls = threading.local()   # every thread's next lookup fails: ShutdownError
        if self._broken is not None:
            raise UsageError(f"{self._broken} (shut down without running the "
                             f"{self._callbacks.pending} queued callback(s))")

    # -- state -------------------------------------------------------------------------

    @property
    def gp_seq(self) -> int:
        """The grace-period sequence number (even: idle, odd: in progress)."""
        return self._gp.seq

    def _repr_state(self) -> str:
        return ""

    def __repr__(self) -> str:
        state = ("shut down" if self._shut_down else "broken" if self._broken else
                 "gp in progress" if self._gp.seq & 1 else "idle")
        return (f"<{type(self).__name__} {self.name} {state} gp_seq={self._gp.seq} "
                f"completed={self._gp.completed}{self._repr_state()} "
                f"readers={self._registry.peek()!r} "
                f"callbacks_pending={self._callbacks.pending}>")
