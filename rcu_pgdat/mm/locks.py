"""Locks of the model: a spin lock, a sequence count and a reader-writer semaphore.

``SpinLock`` and ``SeqCount`` may be used inside a non-sleepable read-side section, as
``spin_lock`` and ``read_seqcount_begin`` may in the kernel, so their waits do not
announce themselves to the might-sleep hook. They still wait through the active
scheduler (never a GIL-holding spin): in controlled mode a spinning thread is simply
not runnable until the holder lets go.

``RWSem`` (``struct rw_semaphore``) sleeps: its writer side announces the wait to the
might-sleep hook. Why it is correct, and why its writer claim is a count:

* Every change of ``readers``, ``writer`` and ``writers_waiting`` happens in one claim
  method under ``_guard``, a ``threading.Lock`` only ever taken with ``acquire(False)``
  (a claim that finds it taken fails and is retried by the scheduler's wait), so each
  check-and-update is one step, with or without the GIL.
* Exclusion: a writer gets in only when ``readers == 0`` and no writer holds it; a
  reader only when no writer holds it. So ``writer`` and ``readers > 0`` never hold
  together.
* No writer starves: a reader also stays out while ``writers_waiting > 0``, and a
  writer counts itself in *before* it waits. Once a writer has announced itself, the
  readers inside drain and no new one enters, so some writer gets in.
* ``writers_waiting`` is a count, not a flag, because several writers contend (the
  remover and the fake writers): with one flag, the first writer to get in clears it
  for all, the second writer is no longer announced, and readers arriving after the
  first writer's ``up_write`` overtake it; a stream of them starves it.
"""

from __future__ import annotations

import threading

from .. import sched

__all__ = ["SpinLock", "SeqCount", "RWSem"]


class SpinLock:
    """A non-recursive lock that never counts as sleeping. ``owner``: holder's name."""

    __slots__ = ("name", "_lock", "owner")

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()     # only ever acquire(False): the claim itself
        self.owner: str | None = None

    def acquire(self) -> None:
        """Spin (through the scheduler) until the lock is ours."""
        sched.point(f"spin_lock:{self.name}")
        if not self._lock.acquire(False):
            scheduler = sched.active()
            if scheduler.controlled:
                scheduler.wait_until(
                    sched.ReadyCond(lambda: self._lock.acquire(False), self._free),
                    f"spin_lock {self.name}")
            else:
                self._lock.acquire()    # asleep in the OS until the holder lets go
        self.owner = sched.current_name()

    def _free(self) -> bool:
        return not self._lock.locked()

    def release(self) -> None:
        """Release; only the holder may."""
        me = sched.current_name()
        if self.owner != me:
            raise RuntimeError(f"cannot release spin lock {self.name}: held by "
                               f"{self.owner or 'nobody'}, not {me}")
        self.owner = None
        self._lock.release()
        sched.point(f"spin_unlock:{self.name}")

    def __enter__(self) -> "SpinLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<SpinLock {self.name} {'held by ' + str(self.owner) if self.owner else 'free'}>"


class SeqCount:
    """A sequence count (``seqcount_t``): odd while a writer is inside.

    Readers take ``begin()``, read, and retry if ``retry(seq)``; writers are serialized
    by the caller (the hotplug lock). A reader that overlapped a write sees either an
    odd start or a changed count, because the writer bumps the count before its first
    store and after its last one.
    """

    __slots__ = ("name", "seq")

    def __init__(self, name: str) -> None:
        self.name = name
        self.seq = 0

    def begin(self) -> int:
        """Wait until no write is in progress; returns the count to check against."""
        seq = self.seq
        if seq & 1:
            sched.active().wait_until(lambda: not self.seq & 1, f"seqcount {self.name}")
            seq = self.seq
        return seq & ~1   # a write that started after the wait makes retry() true

    def retry(self, start: int) -> bool:
        """Whether a write overlapped the read that began at ``start``."""
        sched.point(f"seqcount:{self.name}:retry")
        return self.seq != start

    def write_begin(self) -> None:
        """Writer: the count becomes odd before the first store."""
        self.seq += 1
        sched.point(f"seqcount:{self.name}:write")

    def write_end(self) -> None:
        """Writer: the count becomes even again after the last store."""
        sched.point(f"seqcount:{self.name}:write_end")
        self.seq += 1

    def __repr__(self) -> str:
        return f"<SeqCount {self.name} seq={self.seq}{' (writing)' if self.seq & 1 else ''}>"


class RWSem:
    """A reader-writer semaphore through the scheduler; writers wait for readers and
    readers wait behind waiting writers (see the module docstring for the invariants).

    Each claim is a bound method, so the uncontended path takes the guard once and
    builds no closure; waits go through the scheduler with the same method as their
    condition. A completed write-side section is progress for the controlled
    scheduler's livelock bound (``sched.progress``).
    """

    __slots__ = ("name", "_guard", "readers", "writer", "writers_waiting", "_labels")

    def __init__(self, name: str) -> None:
        self.name = name
        self._guard = threading.Lock()
        self.readers = 0
        self.writer = False
        self.writers_waiting = 0
        self._labels = (f"rwsem:{name}:down_read", f"rwsem:{name}:up_read",
                        f"rwsem:{name}:up_write", f"down_read {name}", f"up_read {name}",
                        f"down_write {name}", f"rwsem {name}: write section")

    def _read_in(self) -> bool:
        if not self._guard.acquire(False):
            return False
        try:
            if self.writer or self.writers_waiting:
                return False
            self.readers += 1
            return True
        finally:
            self._guard.release()

    def _read_out(self) -> bool:
        if not self._guard.acquire(False):
            return False
        self.readers -= 1
        self._guard.release()
        return True

    def _announce_writer(self) -> bool:
        if not self._guard.acquire(False):
            return False
        self.writers_waiting += 1
        self._guard.release()
        return True

    def _write_in(self) -> bool:
        if not self._guard.acquire(False):
            return False
        try:
            if self.writer or self.readers:
                return False
            self.writer = True
            self.writers_waiting -= 1          # this writer's own announcement only
            return True
        finally:
            self._guard.release()

    @property
    def progress_kind(self) -> str:
        """What ``up_write`` notes as progress (``sched.progress``)."""
        return self._labels[6]

    def down_read(self) -> None:
        """Take the read side; waits while a writer holds or wants the lock."""
        sched.point(self._labels[0])
        if not self._read_in():
            sched.active().wait_until(self._read_in, self._labels[3])

    def up_read(self) -> None:
        """Release the read side."""
        if not self._read_out():
            sched.active().wait_until(self._read_out, self._labels[4])
        sched.point(self._labels[1])

    def down_write(self) -> None:
        """Take the write side: announce, then wait until readers and writer are gone."""
        if not self._announce_writer():
            sched.wait_until(self._announce_writer, self._labels[5])
        sched.wait_until(self._write_in, self._labels[5])

    def up_write(self) -> None:
        """Release the write side."""
        self.writer = False
        sched.progress(self.progress_kind)
        sched.point(self._labels[2])

    def __repr__(self) -> str:
        return (f"<RWSem {self.name} readers={self.readers} writer={self.writer} "
                f"waiting={self.writers_waiting}>")
