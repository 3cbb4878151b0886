"""Held-out RCUs written with plain threading only, as users write them: no rcu_pgdat
import, no schedule points. Three correct RCUs and, for each, one broken twin whose bug
is a kind that reached real RCU code. Nothing in the harness was set for them.

Why the correct ones are correct:

* ``PlainRegistryRCU``: each reader thread has a sequence number, odd while it is inside
  a section, and is published in a copy-on-write tuple of readers *before* its first
  section (registration happens in ``register_thread`` or on first use, and every
  replacement of the tuple is built and stored under one lock, so none is lost). A
  grace period reads the published tuple, snapshots every number, and waits on a
  Condition, for each odd one, until it changed: a section open when the grace period
  began belongs to a published reader whose number was odd at the snapshot.
* ``PlainCallbackRCU``: the above plus ``call_rcu`` served by one worker thread that
  takes the whole queue, waits a grace period that began after every callback in it
  was queued, and runs them. ``barrier()`` waits until the number of callbacks
  *invoked* reaches the number queued when it was called: callbacks the worker holds
  in its batch count as not yet invoked.
* ``PlainFlipRCU``: two reader counters and an index (the counter-pair RCU of the
  user-level RCU literature). A reader's outermost ``read_lock`` reads the index and
  increments that counter in one critical section of the lock that also guards the
  flip, so every section open when a grace period begins is counted on the current
  index; the grace period (one at a time) flips the index and waits for that counter
  to drain. No reader can join it after the flip, so one flip suffices.
"""

from __future__ import annotations

import threading
from typing import Any, Callable


class _Reader:
    __slots__ = ("seq", "nest")

    def __init__(self) -> None:
        self.seq = 0       # odd while inside a section (written by its thread only)
        self.nest = 0


class PlainRegistryRCU:
    """Correct: readers published under the lock, grace periods wait on a Condition."""

    name = "plain-registry"

    def __init__(self) -> None:
        self._tls = threading.local()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._readers: tuple[_Reader, ...] = ()     # replaced whole, never mutated

    def register_thread(self) -> None:
        self._me()

    def _me(self) -> _Reader:
        rec = getattr(self._tls, "rec", None)
        if rec is None:
            rec = self._tls.rec = _Reader()
            self._publish(rec)
        return rec

    def _publish(self, rec: _Reader) -> None:
        with self._lock:
            self._readers = self._readers + (rec,)

    def read_lock(self) -> None:
        rec = self._me()
        if rec.nest == 0:
            rec.seq += 1
        rec.nest += 1

    def read_unlock(self) -> None:
        rec = self._me()
        rec.nest -= 1
        if rec.nest == 0:
            with self._changed:
                rec.seq += 1
                self._changed.notify_all()

    def synchronize(self) -> None:
        snapshot = [(rec, rec.seq) for rec in self._readers]
        with self._changed:
            for rec, seq in snapshot:
                if seq & 1:
                    self._changed.wait_for(lambda r=rec, s=seq: r.seq != s)


class CopyOutsideLockRCU(PlainRegistryRCU):
    """Broken: a registration builds the new reader tuple before taking the lock and
    only stores it under the lock.

    The real bug: a copy-on-write list (an RCU-protected array of readers, a registry
    of threads) whose updater copies outside the update-side lock, so two concurrent
    registrations each copy the old list and the second store drops the first reader.
    That reader is never scanned again: its sections are not waited for.
    """

    name = "plain-copy-outside-lock"

    def _publish(self, rec: _Reader) -> None:
        readers = self._readers + (rec,)      # keep the critical section short
        with self._lock:
            self._readers = readers


class PlainCallbackRCU(PlainRegistryRCU):
    """Correct: ``call_rcu`` through a worker thread, ``barrier`` counts invocations."""

    name = "plain-callbacks"

    def __init__(self) -> None:
        super().__init__()
        self._cb = threading.Condition()
        self._queue: list[Callable[[], Any]] = []
        self._queued = 0          # callbacks ever queued
        self._invoked = 0         # callbacks ever invoked (after they returned)
        self._stopping = False
        self._worker: threading.Thread | None = None

    def call_rcu(self, callback: Callable[[], Any]) -> None:
        with self._cb:
            self._queue.append(callback)
            self._queued += 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, daemon=True,
                                                name=f"{self.name}-worker")
                self._worker.start()
            self._cb.notify_all()

    def _work(self) -> None:
        while True:
            with self._cb:
                self._cb.wait_for(lambda: bool(self._queue) or self._stopping)
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            self.synchronize()
            for callback in batch:
                callback()
            with self._cb:
                self._invoked += len(batch)
                self._cb.notify_all()

    def barrier(self) -> None:
        with self._cb:
            target = self._queued
            self._cb.wait_for(lambda: self._invoked >= target)

    def shutdown(self) -> None:
        with self._cb:
            self._stopping = True
            self._cb.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join()


class BarrierSeesQueueRCU(PlainCallbackRCU):
    """Broken: ``barrier()`` waits until the callback queue is empty.

    The real bug: an ``rcu_barrier()`` that checks the callback lists for emptiness
    instead of queueing a marker behind the last callback (as the kernel's and
    liburcu's do). Callbacks the worker has already taken off the queue, waiting for
    their grace period or being invoked, are on no list, and the barrier returns
    before they run: a module unloaded under its own callbacks.
    """

    name = "plain-barrier-sees-queue"

    def barrier(self) -> None:
        with self._cb:
            self._cb.wait_for(lambda: not self._queue)


class PlainFlipRCU:
    """Correct: a counter pair; the read side counts itself under the flip's lock."""

    name = "plain-flip"

    def __init__(self) -> None:
        self._tls = threading.local()
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._gp_lock = threading.Lock()       # one grace period at a time
        self._idx = 0
        self._count = [0, 0]

    def read_lock(self) -> None:
        tls = self._tls
        depth = getattr(tls, "depth", 0)
        if depth == 0:
            tls.idx = self._enter()
        tls.depth = depth + 1

    def _enter(self) -> int:
        with self._lock:
            idx = self._idx
            self._count[idx] += 1
        return idx

    def read_unlock(self) -> None:
        tls = self._tls
        tls.depth -= 1
        if tls.depth == 0:
            with self._drained:
                self._count[tls.idx] -= 1
                self._drained.notify_all()

    def synchronize(self) -> None:
        with self._gp_lock, self._drained:
            old = self._idx
            self._idx = old ^ 1
            self._drained.wait_for(lambda: self._count[old] == 0)


class LockFreeReadRCU(PlainFlipRCU):
    """Broken: the read side counts itself without the lock ("``+=`` on an int is
    atomic under the GIL"; it is a load, an add and a store, and without a GIL not
    even that).

    The real bugs, both at once: a reader counter incremented non-atomically (lost
    updates: a counter that drains while a reader is still counted on it, or never
    drains), and the reader's load of the index separated from its increment, so a
    flip between them leaves it counted on the index the grace period already
    drained, which the next grace period does not wait for (the reason the
    counter-pair RCUs and SRCU flip twice or count under the flip's exclusion).
    """

    name = "plain-lock-free-read"

    def _enter(self) -> int:
        idx = self._idx
        self._count[idx] += 1
        return idx
