"""A user's RCU written with plain threading only, as people write one: no rcu_pgdat
import, no schedule points. The harness checks it unchanged (interception makes its
Lock and Condition schedulable in controlled runs).

Each reader thread keeps a sequence number, odd while it is inside a read-side
section. ``synchronize()`` snapshots every reader's number and waits on a Condition,
for each one that was odd, until it changed; ``read_unlock`` notifies.
"""

from __future__ import annotations

import threading
import time


class _Reader:
    __slots__ = ("seq", "nest")

    def __init__(self) -> None:
        self.seq = 0
        self.nest = 0


class PlainRCU:
    """Correct: a grace period waits for every section open when it began."""

    name = "plain"

    def __init__(self) -> None:
        self._tls = threading.local()
        self._readers: list[_Reader] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def _me(self) -> _Reader:
        rec = getattr(self._tls, "rec", None)
        if rec is None:
            rec = self._tls.rec = _Reader()
            with self._lock:
                self._readers.append(rec)
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
            with self._changed:
                rec.seq += 1
                self._changed.notify_all()

    def synchronize(self) -> None:
        with self._changed:
            snapshot = [(rec, rec.seq) for rec in self._readers]
            for rec, seq in snapshot:
                if seq & 1:
                    self._changed.wait_for(lambda r=rec, s=seq: r.seq != s)


class SleepRCU(PlainRCU):
    """Broken: a grace period is "long enough" instead of waiting for the readers."""

    name = "plain-sleep"

    def synchronize(self) -> None:
        time.sleep(0.005)


class NoNotifyRCU(PlainRCU):
    """Broken: a reader leaves its section without waking a waiting grace period (a
    lost wake-up: the grace period waits on its Condition for good)."""

    name = "plain-no-notify"

    def read_unlock(self) -> None:
        rec = self._me()
        rec.nest -= 1
        if rec.nest == 0:
            rec.seq += 1


class CountingRCU:
    """Correct: one count of the readers inside a section, changed under a lock; a
    grace period waits until it is zero (it may wait longer than it must, never less)."""

    name = "plain-counting"

    def __init__(self) -> None:
        self._tls = threading.local()
        self._active = 0
        self._changed = threading.Condition()

    def _nest(self, delta: int) -> int:
        nest = getattr(self._tls, "nest", 0) + delta
        self._tls.nest = nest
        return nest

    def read_lock(self) -> None:
        if self._nest(1) == 1:
            with self._changed:
                self._active += 1

    def read_unlock(self) -> None:
        if self._nest(-1) == 0:
            with self._changed:
                self._active -= 1
                self._changed.notify_all()

    def synchronize(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._active == 0)


class UnlockedCountRCU(CountingRCU):
    """Broken: ``read_lock`` counts itself without the lock ("``+=`` is atomic"): two
    readers entering at once may count as one, and the grace period then ends while
    the other is still inside. Nothing but its two plain accesses separates the race
    from a correct run, so only a schedule point between them finds it."""

    name = "plain-unlocked-count"

    def read_lock(self) -> None:
        if self._nest(1) == 1:
            self._active += 1
