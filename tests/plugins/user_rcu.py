"""A user's own RCU, as a plug-in would arrive: a small correct one and broken ones.

Each reader thread has a sequence number that is odd while it is inside a read-side
section. ``synchronize()`` snapshots every reader's number and waits, for each one that
was odd, until it changed: that reader has left the section it was in. Sections that
begin after the snapshot are not waited for, which is allowed.
"""

from __future__ import annotations

import _thread
import threading

from rcu_pgdat import sched

# A C lock held for good: acquiring it blocks where no scheduler can see (interception
# covers the threading names, not a lock allocated straight from _thread).
_HELD = _thread.allocate_lock()
_HELD.acquire()


class _Reader:
    __slots__ = ("seq", "nest")

    def __init__(self) -> None:
        self.seq = 0      # odd: inside a section (written by its thread only)
        self.nest = 0


class UserRCU:
    """Correct: waits for every section that was open when it started."""

    name = "user"

    def __init__(self) -> None:
        self._tls = threading.local()
        self._readers: list[_Reader] = []
        self._lock = sched.Mutex("user-rcu.registry")

    def _me(self) -> _Reader:
        rec = getattr(self._tls, "rec", None)
        if rec is None:
            rec = self._tls.rec = _Reader()
            with self._lock:
                self._readers = self._readers + [rec]
        return rec

    def read_lock(self) -> None:
        rec = self._me()
        if rec.nest == 0:
            rec.seq += 1
        rec.nest += 1

    def read_unlock(self) -> None:
        rec = self._me()
        rec.nest -= 1
        if rec.nest == 0:
            rec.seq += 1

    def synchronize(self) -> None:
        snapshot = [(rec, rec.seq) for rec in self._readers]
        for rec, seq in snapshot:
            if seq & 1:
                sched.wait_until(lambda r=rec, s=seq: r.seq != s, "user-rcu reader")


class NoWaitRCU(UserRCU):
    """Broken: the grace period does not wait for anyone."""

    def synchronize(self) -> None:
        pass


class StuckReaderRCU(UserRCU):
    """A reader that never comes back: iterator-0's first section blocks forever."""

    def read_lock(self) -> None:
        super().read_lock()
        if threading.current_thread().name == "iterator-0":
            _HELD.acquire()                   # outside the scheduler's sight, for good


class NoProtocol:
    """Not an RCU at all: has no read_lock."""

    name = "nothing"

    def synchronize(self) -> None:
        pass


def broken_factory() -> UserRCU:
    """A factory that raises while it builds the flavor."""
    raise RuntimeError("cannot build this flavor")


class ExitingRCU(UserRCU):
    """A grace period that calls sys.exit(): must be a violation, never a silent pass."""

    def synchronize(self) -> None:
        raise SystemExit(3)
