"""Non-sleeping locks of the model: a spin lock and a sequence count.

Both may be used inside a non-sleepable read-side section, as ``spin_lock`` and
``read_seqcount_begin`` may in the kernel, so their waits do not announce themselves to
the might-sleep hook. They still wait through the active scheduler (never a GIL-holding
spin): in controlled mode a spinning thread is simply not runnable until the holder lets
go.
"""

from __future__ import annotations

import threading

from .. import sched

__all__ = ["SpinLock", "SeqCount"]


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
            sched.active().wait_until(lambda: self._lock.acquire(False),
                                      f"spin_lock {self.name}")
        self.owner = sched.current_name()

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
