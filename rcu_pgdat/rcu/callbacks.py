"""Deferred callbacks behind grace periods: ``call_rcu`` / ``call_srcu`` and the barrier.

Why it is correct
-----------------
Callbacks are queued on ``_pending`` (a list, guarded by ``_lock``). The worker thread
repeatedly takes the *whole* list (swap under ``_lock``), then calls ``synchronize()``,
then runs the batch in queue order.

* Grace period: every callback in a batch was appended before the swap, and the swap
  happens before ``synchronize()`` is called; so each callback's grace period began
  after it was queued, and the callback runs after that grace period ended. A callback
  queued during the wait lands in the next batch, behind the next grace period. The
  obvious shortcut, running the callbacks that arrived *while* a grace period was
  already in flight at its end, is wrong: that grace period began before they were
  queued and need not cover readers that saw the old pointer.
* Barrier: ``barrier()`` queues a marker callback that sets an event. Batches run in
  order, and within a batch callbacks run in queue order, so when the marker runs every
  callback queued before it has already run. Waiting for the marker is a grace-period
  wait, so it is illegal inside a read-side section and from the worker itself.
* Shutdown: ``shutdown()`` drains with a barrier, then asks the worker to exit and waits
  for it through the scheduler; every later ``enqueue`` raises ``ShutdownError``.

An exception in a callback is not lost and does not kill the worker: it goes to
``threading.excepthook`` (the harness installs a collector there), and the next callback
runs. An exception from ``synchronize()`` itself (the flavor refuses: a reader thread
died inside a section, say) is reported the same way, but then no grace period can be
promised any more: the batch is dropped, the worker stops, and every ``barrier()``
waiting or to come raises instead of hanging.

Lock order: ``_lock`` is a leaf; nothing is called with it held.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from .. import sched
from ..errors import ShutdownError, UsageError

__all__ = ["CallbackWorker"]

Callback = Callable[[], Any]


class CallbackWorker:
    """A worker thread that runs queued callbacks, each batch after a fresh grace period.

    ``synchronize`` is the grace-period wait of the owning flavor or domain.
    ``before_batch``/``after_batch`` run in the worker around each batch of callbacks
    (QSBR uses them to put the worker online while callbacks may read).
    """

    def __init__(self, synchronize: Callable[[], None], name: str,
                 before_batch: Callable[[], None] | None = None,
                 after_batch: Callable[[], None] | None = None) -> None:
        self.name = name
        self._synchronize = synchronize
        self._before_batch = before_batch
        self._after_batch = after_batch
        self._lock = sched.Mutex(f"{name}.lock")
        # Guarded by _lock: _pending, _stopping, _shut_down, _thread.
        self._pending: list[Callback] = []
        self._stopping = False
        self._shut_down = False
        self._thread: threading.Thread | None = None
        self._exited = sched.Event(f"{name}.exited")
        #: Set (once, by the worker) when ``synchronize()`` raised: see the module doc.
        self.broken: BaseException | None = None
        #: Counters for statistics (written by the worker only).
        self.batches = 0
        self.invoked = 0

    # -- producers ---------------------------------------------------------------

    def enqueue(self, callback: Callback) -> None:
        """Queue ``callback`` to run after a grace period that begins after this call."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        with self._lock:
            if self._shut_down:
                raise ShutdownError(f"{self.name}: callback queued after shutdown(); "
                                    "queue callbacks before shutting the flavor down")
            self._pending.append(callback)
            if self._thread is None:
                self._thread = sched.spawn(self._run, self.name)
                self._thread.start()

    def barrier(self) -> None:
        """Return once every callback queued before this call has run."""
        if self._in_worker():
            raise UsageError(f"{self.name}: barrier() from inside a callback would wait "
                             "for itself; call it from another thread")
        with self._lock:
            if self._thread is None or self._shut_down:
                return  # nothing was ever queued, or shutdown already drained everything
        if self.broken is not None:
            raise ShutdownError(f"{self.name}: the grace period failed ({self.broken!r})")
        done = sched.Event(f"{self.name}.barrier")
        self.enqueue(done.set)
        sched.wait_until(lambda: done.is_set() or self.broken is not None,
                         f"{self.name}: barrier", pure=True)
        if not done.is_set():
            raise ShutdownError(f"{self.name}: the grace period failed ({self.broken!r}); "
                                "callbacks queued before this barrier will not run")

    def shutdown(self) -> None:
        """Run everything queued, stop the worker and refuse later callbacks. Idempotent."""
        if self._in_worker():
            raise UsageError(f"{self.name}: shutdown() from inside a callback")
        self.barrier()
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            self._stopping = True
            started = self._thread is not None
        if started:
            self._exited.wait()

    @property
    def pending(self) -> int:
        """Callbacks queued and not yet run (a snapshot)."""
        return len(self._pending)

    # -- the worker --------------------------------------------------------------

    def _in_worker(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def _has_work(self) -> bool:
        return bool(self._pending) or self._stopping

    def _run(self) -> None:
        try:
            while self._next_batch():
                pass
        finally:
            self._exited.set()

    def _next_batch(self) -> bool:
        """Wait for work, then run one batch behind a fresh grace period.

        Returns False when the worker must stop (asked to, or its grace period failed).
        A protected hook: the order of the swap and the grace period here is the whole
        correctness argument (module comment); the catalogue's ``call-rcu-joins-gp``
        overrides it to take the batch after the grace period instead.
        """
        sched.wait_until(self._has_work, f"{self.name}: callbacks to run",
                         ready=self._has_work)
        batch, stopping = self._take_batch()
        if not batch:
            return not stopping
        # The swap above happened before this grace period starts: every callback in
        # the batch is covered (see the module comment).
        if not self._grace_period():
            return False
        self._invoke(batch)
        return True

    def _take_batch(self) -> tuple[list[Callback], bool]:
        """Swap out every queued callback; also whether the worker is asked to stop."""
        with self._lock:
            batch, self._pending = self._pending, []
            return batch, self._stopping

    def _grace_period(self) -> bool:
        """One grace period of the owner; False (reported) when the owner refuses."""
        try:
            self._synchronize()
        except Exception as exc:
            _report(exc)
            self.broken = exc
            return False
        return True

    def _invoke(self, batch: list[Callback]) -> None:
        if self._before_batch is not None:
            self._before_batch()
        try:
            for callback in batch:
                sched.point("callback:invoke")
                try:
                    callback()
                except Exception as exc:
                    _report(exc)
                self.invoked += 1
        finally:
            if self._after_batch is not None:
                self._after_batch()
        self.batches += 1

    def __repr__(self) -> str:
        if self.broken is not None:
            state = "broken"
        else:
            state = "shut down" if self._shut_down else ("running" if self._thread else "idle")
        return (f"<CallbackWorker {self.name} {state} pending={len(self._pending)} "
                f"batches={self.batches} invoked={self.invoked}>")


def _report(exc: BaseException) -> None:
    """Hand an exception caught in the worker to ``threading.excepthook``."""
    threading.excepthook(threading.ExceptHookArgs(  # type: ignore[call-arg,unused-ignore]
        (type(exc), exc, exc.__traceback__, threading.current_thread())))
