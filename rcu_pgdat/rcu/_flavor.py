"""What QSBR, memb and SRCU share: grace-period bookkeeping around a reader wait.

Why it is correct
-----------------
A flavor supplies ``_wait_for_readers()``: wait until every read-side section that was
open when the call began has ended (QSBR: one counter stamp per thread; memb: two phase
flips; SRCU: the two-index drain). Everything else is built on it here, once.

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
unlinked its object (``rcu_pgdat.mutants`` keeps that bug as ``rcu-gp-shared-early``).

Recovery: an exception out of the reader wait (a controlled scheduler stopping the run,
a ``KeyboardInterrupt``) releases ``_gp_lock`` and leaves the sequence odd, so no cookie
taken before reports done early. The next ``synchronize()`` finds it odd and completes
that grace period with a fresh reader wait instead of starting a second one. A fresh
wait is enough whatever state the interrupted one left (a phase flipped once, an SRCU
index flipped): each wait's safety argument starts from the moment it begins.

Dead readers and broken state: a reader thread that exits inside a section
(``_wait_for``) makes every later grace period impossible: the flavor records why in
``_broken``, the grace period raises ``UsageError`` instead of hanging or lying, and so
does every later grace-period call. The interrupted grace period leaves the sequence
odd, so no cookie ever reports done early.

Two read sides
--------------
Each flavor has two record classes, and its ``mode`` picks one for all its readers:

* ``checked`` (the default; the harness drives flavors in it): every read-side call
  checks its own use (unbalanced unlocks, a QSBR thread reading while offline, an SRCU
  index it does not hold) and raises a ``UsageError`` that says what to do instead; its
  shared accesses are separated by schedule points, so controlled runs interleave
  inside the read side.
* ``fast``: the same algorithm with the checks and the read-side schedule points left
  out, as liburcu's read side is without its debug build. Each flavor's opening comment
  says why its fast read side is still a correct RCU; misuse is then undefined, as in C.
  The update side (grace periods, callbacks, thread states) is the same in both modes.

A record is also its thread's reader handle: ``flavor.reader()`` returns it, and
``handle.read_lock()`` / ``handle.read_unlock()`` skip the per-thread lookup that
``flavor.read_lock()`` pays (a ``threading.local`` load, the floor of any pure-Python
per-thread state). A handle belongs to the thread that took it.

Per-thread state lives in ``_tls`` (a ``threading.local``) for the owner's lookups and
in ``_registry`` for grace-period waiters; ``shutdown()`` replaces ``_tls`` with an empty
one, so a read-side call after shutdown fails its own lookup and raises
``ShutdownError`` without a shutdown check on the fast path.

Lock order: ``_gp_lock`` before the registry lock and the callback worker's lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic

from .. import sched
from ..errors import (
    CleanupBusyError,
    ShutdownError,
    SynchronizeInReaderError,
    UnbalancedUnlockError,
    UnregisteredThreadError,
    UsageError,
)
from .callbacks import CallbackWorker
from ._gpseq import GPSequence
from ._registry import R, ReaderRegistry

__all__ = ["CHECKED", "FAST", "MODES", "FlavorBase"]

#: The mode that checks every read-side call (the default).
CHECKED = "checked"
#: The mode whose read side does only what the algorithm needs.
FAST = "fast"
MODES = (CHECKED, FAST)


class FlavorBase(Generic[R]):
    """Grace periods, polled cookies, callbacks, readers and shutdown over a reader wait.

    Subclasses set ``_reader_types`` (the record class of each mode) and implement
    ``_wait_for_readers`` (with ``_wait_for``); they may wrap blocking calls with
    ``_quiescent_while_blocked`` (QSBR goes offline there) and refuse a first use with
    ``_first_use`` (QSBR wants ``register_thread()`` first).
    """

    #: Short name for reports; also the default instance name.
    name = "abstract"
    #: mode -> what makes a reader's record in that mode (its class, or a factory).
    _reader_types: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}
    #: The class of the callback worker (a protected hook, for broken variants).
    _callback_worker: ClassVar[type[CallbackWorker]] = CallbackWorker

    def __init__(self, name: str | None = None, *, mode: str = CHECKED,
                 before_batch: Callable[[], None] | None = None,
                 after_batch: Callable[[], None] | None = None) -> None:
        if name is not None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"a flavor's name must be a non-empty str, got {name!r}")
            self.name = name
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        #: ``checked`` or ``fast``: see "Two read sides" in ``rcu_pgdat.rcu._flavor``.
        self.mode = mode
        self._reader_type: Callable[[Any], R] = self._reader_types[mode]
        self._tls = threading.local()
        self._registry: ReaderRegistry[R] = ReaderRegistry(self.name)
        self._gp = GPSequence()
        #: Serializes grace periods; guards ``_gp`` writes and the flavor's own state.
        self._gp_lock = sched.Mutex(f"{self.name}.gp_lock")
        self._shut_down = False
        #: Why no grace period can end any more (written once, under ``_gp_lock``).
        self._broken: str | None = None
        self._callbacks = self._callback_worker(self.synchronize, f"{self.name}-callbacks",
                                                before_batch, after_batch)

    # -- subclass hooks ----------------------------------------------------------------

    def _wait_for_readers(self) -> None:
        """Wait until every section open when this call began has ended (gp lock held)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _quiescent_while_blocked(self) -> Iterator[None]:
        """Context around every blocking call; QSBR goes offline inside it."""
        yield

    def _first_use(self, what: str) -> R:
        """The record of a thread that has none yet, on its first read-side call."""
        return self._register_self(what)

    # -- readers -----------------------------------------------------------------------

    def read_lock(self) -> Any:
        """Begin a (nestable) read-side section of the calling thread.

        Returns what the mode's record returns (SRCU: the index for ``read_unlock``).
        """
        try:
            rec = self._tls.rec
        except AttributeError:
            rec = self._first_use("read_lock()")
        return rec.read_lock()

    def read_unlock(self) -> None:
        """End the innermost read-side section of the calling thread."""
        try:
            rec = self._tls.rec
        except AttributeError:
            raise self._no_matching_lock(None) from None
        rec.read_unlock()

    def reader(self) -> R:
        """The calling thread's reader handle (its record), registering it as
        ``read_lock()`` would. Only the calling thread may use it."""
        rec = self._own_record()
        return rec if rec is not None else self._first_use("reader()")

    def register_thread(self) -> None:
        """Register the calling thread now (optional: ``read_lock`` does it on first use)."""
        if self._own_record() is None:
            self._register_self("register_thread()")

    def unregister_thread(self) -> None:
        """Drop the calling thread's record; it must be outside every section."""
        self._check_alive("unregister_thread()")
        rec = self._own_record()
        if rec is None:
            raise UnregisteredThreadError(
                f"{self.name}: unregister_thread() from thread {sched.current_name()!r}, "
                "which is not registered")
        self._check_outside(rec, "unregister_thread()", "unregistering")
        self._remove_record(rec)

    def readers(self) -> list[R]:
        """The registered reader records, in name order (for reports and tests)."""
        return self._registry.snapshot()

    # -- helpers -----------------------------------------------------------------------

    def _own_record(self) -> R | None:
        """The calling thread's record, or ``None`` when it is not registered."""
        return getattr(self._tls, "rec", None)

    def _register_self(self, what: str) -> R:
        self._check_alive(what)
        rec = self._reader_type(self)
        self._add_record(rec)
        return rec

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

    def _check_outside(self, rec: R, what: str, act: str) -> None:
        """Refuse ``what`` while ``rec`` shows an open section (``act`` would end it)."""
        if rec.depth():
            raise UsageError(
                f"{self.name}: {what} inside a read-side section (thread {rec.name!r}, "
                f"nesting {rec.depth()}): {act} would end the section's protection; "
                "call it after read_unlock()")

    def _lookup_failed(self, what: str, error: type[Exception] = UnregisteredThreadError,
                       hint: str = "call register_thread() first") -> Exception:
        """The exception for a read-side call whose record lookup failed."""
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

    def _check_not_in_section(self, what: str) -> None:
        record = self._own_record()
        if record is not None and record.depth():
            raise SynchronizeInReaderError(
                f"{self.name}: {what} inside a read-side section of the same flavor "
                f"(thread {record.name!r}): it would wait for itself, and that section "
                "never ends; call it after read_unlock(), or from another thread")

    @contextlib.contextmanager
    def _blocking(self, what: str) -> Iterator[None]:
        """Checks and state around a call that may wait for a grace period."""
        self._check_usable(what)
        self._check_not_in_section(what)
        with self._quiescent_while_blocked():
            yield

    def _wait_for(self, records: Sequence[R], passed: Callable[[], bool], what: str,
                  holds: Callable[[R], int] | None = None,
                  passed_now: Callable[[], bool] | None = None) -> None:
        """Wait until ``passed()``; raise if a thread of ``records`` exited in a section.

        ``holds(record)`` (default ``record.depth()``) counts the sections of
        ``record`` that ``passed`` waits for; the wait also ends when every thread of
        ``records`` exited holding none. ``passed`` reads only the records'
        counters (one load each) and is evaluated by this thread alone, as
        ``sched.wait_until`` promises. A dead thread's counters never change, so a
        dead record that holds a section keeps ``passed`` false for good: the wait
        can never end, and it says so.

        ``passed_now`` (default ``passed``) is what the ready test evaluates: it must
        give what ``passed()`` gives when no other thread runs during its evaluation
        (a ready test's case), and may skip the points that ``passed`` has.
        """
        count = holds if holds is not None else _depth
        quick = passed_now if passed_now is not None else passed
        dead: list[R] = []

        def passed_or_dead() -> bool:
            if passed():
                return True
            # Only dead threads: a live reader may leave its section (ending the wait)
            # and begin a new one. (The first version called live ones dead;
            # stress/torture.py caught it.) When every thread waited on exited outside
            # its sections (a QSBR thread that never unregistered), nothing is owed.
            gone = [r for r in records if not r.thread.is_alive()]
            dead.extend(r for r in gone if count(r))
            return bool(dead) or len(gone) == len(records)

        # The ready test: passed(), or some thread of records has ended. Liveness is
        # checked again only once the scheduler's exit mark moved past the one at which
        # every thread was alive: until then no is_alive() answer can have changed, so
        # the test gives what a full check would, at every evaluation, and a controlled
        # run offers the waiter at the same steps (the same schedule, less CPU). A
        # reader thread outside the run (the driver) is the OS's: when it ends was never
        # up to the schedule; it is seen at the next mark.
        alive_at: list[int | None] = [None]
        exit_mark = sched.active().exit_mark     # installed for the whole run

        def ready() -> bool:
            if quick():
                return True
            mark = exit_mark()
            if mark is not None and mark == alive_at[0]:
                return False
            if any(not r.thread.is_alive() for r in records):
                return True
            alive_at[0] = mark
            return False

        sched.wait_until(passed_or_dead, what, ready=ready)
        if dead:
            rec = dead[0]
            self._broken = (
                f"{self.name}: thread {rec.name!r} exited inside {count(rec)} read-side "
                "section(s); no grace period can end. End every section with "
                "read_unlock() before the thread exits (try/finally).")
            raise UsageError(self._broken)

    # -- grace periods -----------------------------------------------------------------

    def synchronize(self) -> None:
        """Wait for a full grace period: every section begun before the call has ended."""
        with self._blocking("synchronize()"):
            self._synchronize()

    def _synchronize(self) -> None:
        """The grace period proper, after ``synchronize()``'s checks (also the one
        ``cond_synchronize()`` runs). A protected hook: broken variants that share
        grace periods wrongly override it."""
        sched.point("rcu:gp:snap")
        cookie = self._gp.snap()      # before queueing on the lock; see "sharing" above
        # Queue until we hold the lock or the grace periods of others have covered us.
        if not self._gp_lock.acquire_unless(lambda: self._gp.done(cookie)):
            return
        try:
            sched.point("rcu:gp:check")
            if self._gp.done(cookie):
                return
            if self._broken is not None:      # found by the grace period we queued behind
                raise UsageError(self._broken)
            sched.point("rcu:gp:start")
            if not self._gp.seq & 1:  # odd: one was interrupted; see "Recovery" above
                self._gp.start()      # pairs with get_state(): a later cookie needs more
            self._wait_for_readers()
            sched.point("rcu:gp:end")
            self._gp.end()            # after the wait: poll_state() may now say done
        finally:
            self._gp_lock.release()
        sched.progress(f"{self.name}: grace period")

    def get_state(self) -> int:
        """A cookie for a full grace period that starts after this call."""
        self._check_usable("get_state()")
        sched.point("rcu:get_state")
        return self._gp.snap()

    def poll_state(self, cookie: int) -> bool:
        """Whether a full grace period has elapsed since ``get_state`` gave ``cookie``."""
        if type(cookie) is not int:
            raise UsageError(f"{self.name}: poll_state() wants the int cookie get_state() "
                             f"returned, got {cookie!r}")
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
        """Run ``callback`` in the worker after a full grace period from now.

        Legal inside a section: queueing does not wait.
        """
        self._check_usable("call_rcu()")
        self._callbacks.enqueue(callback)

    def barrier(self) -> None:
        """Return once every callback queued by ``call_rcu`` before this call has run."""
        with self._blocking("barrier()"):
            self._callbacks.barrier()

    def rcu_barrier(self) -> None:
        """The kernel's name for :meth:`barrier`."""
        self.barrier()

    # -- shutdown ----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Run pending callbacks, stop the worker; later calls raise ``ShutdownError``.

        Idempotent. Refused (``SynchronizeInReaderError``) inside the caller's own
        section, and (``CleanupBusyError``, nothing changes) while live threads are
        inside sections: their ``read_unlock()`` would fail. When a thread exited
        inside a section (grace periods became impossible, see the module comment), it
        still shuts down, then raises ``CleanupBusyError`` with the reason: callbacks
        still queued will never run.
        """
        if self._shut_down:
            return
        self._check_not_in_section("shutdown()")
        self._check_idle()
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
            raise CleanupBusyError(f"{self._broken} (shut down without running the "
                                   f"{self._callbacks.pending} queued callback(s))")

    def _check_idle(self) -> None:
        """Raise ``CleanupBusyError`` while live threads hold sections; mark a flavor
        whose dead threads hold some as broken (see ``shutdown``)."""
        holders = [r for r in self._registry.snapshot() if r.depth()]
        live = [r for r in holders if r.thread.is_alive()]
        if live:
            sections = sum(r.depth() for r in live)
            raise CleanupBusyError(
                f"{self.name}: shutdown() with {sections} read-side section(s) still "
                f"open in {len(live)} thread(s) ({', '.join(r.name for r in live)}); end "
                "them with read_unlock() (and join those threads) first")
        if holders and self._broken is None:
            rec = holders[0]
            self._broken = (f"{self.name}: thread {rec.name!r} exited inside "
                            f"{rec.depth()} read-side section(s); no grace period can end")

    # -- state -------------------------------------------------------------------------

    @property
    def gp_seq(self) -> int:
        """The grace-period sequence number (even: idle, odd: in progress)."""
        return self._gp.seq

    @property
    def completed(self) -> int:
        """Grace periods completed so far (the kernel's ``rcu_batches_completed``)."""
        return self._gp.completed

    def _repr_state(self) -> str:
        return ""

    def __repr__(self) -> str:
        state = ("shut down" if self._shut_down else "broken" if self._broken else
                 "gp in progress" if self._gp.seq & 1 else "idle")
        return (f"<{type(self).__name__} {self.name} {self.mode} {state} "
                f"gp_seq={self._gp.seq} completed={self._gp.completed}"
                f"{self._repr_state()} readers={self._registry.peek()!r} "
                f"callbacks_pending={self._callbacks.pending}>")


def _depth(record: Any) -> int:
    return int(record.depth())
