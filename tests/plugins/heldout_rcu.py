"""Held-out RCUs written as the README tells a plug-in author to (``sched.point`` between
shared accesses, ``sched.yield_point`` in wait loops, ``sched.Mutex``): three correct
RCUs and, for each, one broken twin whose bug is a kind that reached real RCU code.
Nothing in the harness was set for them. (Plain-threading ones: heldout_plain_rcu.py.)

Why the correct ones are correct:

* ``FlipRCU``: two reader counters and an index. A reader's outermost ``read_lock``
  loads the index, then increments that counter, and remembers which; its outermost
  ``read_unlock`` decrements the counter it remembered. A grace period (one at a
  time) flips the index and waits for the old counter to drain, twice: a reader that
  loaded the index before the first flip and counted itself after it is on the
  counter the second flip drains.
* ``NestRCU``: each reader has a sequence number, odd while inside a section, and a
  nesting count of its own; only the outermost lock and unlock change the number. A
  grace period snapshots every published reader and waits, for each odd number, until
  it changed.
* ``MaskQSBR``: quiescent-state-based RCU with a bit per registered reader. A grace
  period (one at a time) sets, under the mask lock, the bits of the readers that are
  online, and waits for the mask to clear. A reader clears its own bit under the same
  lock when it reports a quiescent state (outside every section) or goes offline; a
  reader that comes online is not in the mask of a grace period under way, and may
  not be: its sections begin after that grace period did.
"""

from __future__ import annotations

import threading

from rcu_pgdat import sched


class FlipRCU:
    """Correct: a counter pair flipped twice per grace period."""

    name = "flip"

    def __init__(self) -> None:
        self._tls = threading.local()
        self._idx = 0
        self._count = [0, 0]
        self._count_lock = sched.Mutex("flip.count")   # the counters' atomic add
        self._gp_lock = sched.Mutex("flip.gp")

    def _add(self, idx: int, delta: int) -> None:
        with self._count_lock:
            self._count[idx] += delta

    def read_lock(self) -> None:
        tls = self._tls
        depth = getattr(tls, "depth", 0)
        if depth == 0:
            sched.point("flip:lock:idx")
            idx = self._idx
            self._add(idx, 1)
            tls.idx = idx
        tls.depth = depth + 1

    def read_unlock(self) -> None:
        tls = self._tls
        tls.depth -= 1
        if tls.depth == 0:
            self._add(tls.idx, -1)

    def synchronize(self) -> None:
        with self._gp_lock:
            for _ in range(2):
                sched.point("flip:flip")
                old = self._idx
                self._idx = old ^ 1
                while self._count[old]:
                    sched.yield_point("flip:drain")


class UnlockNowIdxRCU(FlipRCU):
    """Broken: ``read_unlock`` decrements the counter of the index the flavor has now,
    not the one its ``read_lock`` counted on.

    The real bug: an SRCU-style unlock that recomputes the index instead of using the
    one the lock returned (the reason ``srcu_read_unlock()`` takes ``idx``). A reader
    whose section spans a flip leaves the old counter up for good (a grace period that
    never ends) and takes one off the new counter, which then drains while another
    reader is still counted on it.
    """

    name = "flip-unlock-now-idx"

    def read_unlock(self) -> None:
        tls = self._tls
        tls.depth -= 1
        if tls.depth == 0:
            sched.point("flip:unlock:idx")
            self._add(self._idx, -1)


class _Nest:
    __slots__ = ("depth",)

    def __init__(self) -> None:
        self.depth = 0


class _Slot(_Nest):
    __slots__ = ("seq",)

    def __init__(self) -> None:
        super().__init__()
        self.seq = 0           # odd while inside a section (written by its thread only)


class NestRCU:
    """Correct: per-thread sequence numbers, per-thread nesting."""

    name = "nest"

    def __init__(self) -> None:
        self._tls = threading.local()
        self._slots: list[_Slot] = []
        self._registry = sched.Mutex("nest.registry")

    def _slot(self) -> _Slot:
        slot = getattr(self._tls, "slot", None)
        if slot is None:
            slot = self._tls.slot = _Slot()
            with self._registry:
                self._slots = [*self._slots, slot]
        return slot

    def _nesting(self, slot: _Slot) -> _Nest:
        """Where the calling thread's nesting count lives."""
        return slot

    def read_lock(self) -> None:
        slot = self._slot()
        nest = self._nesting(slot)
        sched.point("nest:lock:depth")
        depth = nest.depth
        if depth == 0:
            sched.point("nest:lock:seq")
            slot.seq += 1
        nest.depth = depth + 1

    def read_unlock(self) -> None:
        slot = self._slot()
        nest = self._nesting(slot)
        sched.point("nest:unlock:depth")
        depth = nest.depth - 1
        nest.depth = depth
        if depth == 0:
            sched.point("nest:unlock:seq")
            slot.seq += 1

    def synchronize(self) -> None:
        sched.point("nest:snapshot")
        for slot, seq in [(s, s.seq) for s in self._slots]:
            while seq & 1 and slot.seq == seq:
                sched.yield_point("nest:wait")


class SharedNestingRCU(NestRCU):
    """Broken: one nesting count for all readers.

    The real bug: a read-side nesting count kept per CPU (or per object) where a reader
    can be preempted or migrate inside its section, so readers share it; the kernel's
    preemptible RCU keeps it per task for this reason. Here a reader entering while
    another is inside sees a nonzero depth, takes itself for nested and never marks
    its section; unlocks that reach zero mark the wrong reader's.
    """

    name = "nest-shared"

    def __init__(self) -> None:
        super().__init__()
        self._shared = _Nest()

    def _nesting(self, slot: _Slot) -> _Nest:
        return self._shared


class _QSReader:
    __slots__ = ("bit", "online", "depth")

    def __init__(self, bit: int) -> None:
        self.bit = bit
        self.online = True     # guarded by MaskQSBR._mask_lock
        self.depth = 0         # nesting, for read_lock/read_unlock (owner only)


class MaskQSBR:
    """Correct: QSBR with a bit mask of the readers a grace period waits for."""

    name = "mask-qsbr"

    def __init__(self) -> None:
        self._tls = threading.local()
        self._readers: list[_QSReader] = []
        self._mask_lock = sched.Mutex("mask-qsbr.mask")   # _readers, _pending, online
        self._gp_lock = sched.Mutex("mask-qsbr.gp")
        self._pending = 0

    def _me(self) -> _QSReader:
        rec = getattr(self._tls, "rec", None)
        if rec is None:
            with self._mask_lock:
                rec = _QSReader(1 << len(self._readers))
                self._readers = [*self._readers, rec]
            self._tls.rec = rec
        return rec

    def register_thread(self) -> None:
        self._me()

    def unregister_thread(self) -> None:
        self.thread_offline()

    def read_lock(self) -> None:
        self._me().depth += 1

    def read_unlock(self) -> None:
        self._me().depth -= 1

    def quiescent_state(self) -> None:
        rec = self._me()
        with self._mask_lock:
            self._pending &= ~rec.bit

    def thread_offline(self) -> None:
        rec = self._me()
        with self._mask_lock:
            rec.online = False
            self._pending &= ~rec.bit

    def thread_online(self) -> None:
        rec = self._me()
        with self._mask_lock:
            rec.online = True

    def synchronize(self) -> None:
        with self._gp_lock:
            with self._mask_lock:
                mask = 0
                for rec in self._readers:
                    if rec.online:
                        mask |= rec.bit
                self._pending = mask
            while self._pending:
                sched.yield_point("mask-qsbr:wait")


class StaleQSReportQSBR(MaskQSBR):
    """Broken: a quiescent state is reported without the mask lock, by a load of the
    mask and a store of it without the reporter's bit.

    The real bug: a quiescent-state report that is not tied to the grace period it was
    observed in (the kernel checks, under the node lock, that a report is for the
    current grace period before clearing a bit). A report loaded during one grace
    period and stored after the next one set its mask writes the old mask back: it
    clears, on behalf of other readers, bits of readers still inside sections.
    """

    name = "mask-qsbr-stale-report"

    def quiescent_state(self) -> None:
        rec = self._me()
        sched.point("mask-qsbr:qs:load")
        pending = self._pending
        if pending & rec.bit:
            sched.point("mask-qsbr:qs:store")
            self._pending = pending & ~rec.bit
