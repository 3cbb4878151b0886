"""General-purpose RCU, liburcu's ``urcu-memb`` flavor: readers announce their sections.

What it guarantees
------------------
A ``synchronize()`` that begins after a read-side section began (after ``read_lock()``
returned) does not return before that section ends. Readers need no quiescent states
and may do anything outside their sections; a thread is registered automatically by
its first ``read_lock()`` (``register_thread()`` may be called first, and is harmless if
repeated), and ``unregister_thread()`` drops its record (a thread that exits without it,
outside any section, is dropped by the registry once it is gone; one that exits inside
a section makes grace periods raise, see ``_flavor``).

The invariant
-------------
``_gp_ctr`` holds a phase bit (``PHASE``) and, in its low bits, a count of one. Each
reader record's ``ctr`` holds the nesting depth in its low bits (``NEST_MASK``) and, while
the depth is non-zero, the phase the thread loaded from ``_gp_ctr`` when it entered its
outermost section. The outermost ``read_lock()`` *loads* ``_gp_ctr`` and *stores* it as
its own ``ctr`` (count one, phase of that moment); nested ones only add one; the
outermost ``read_unlock()`` makes the depth zero. A grace period (under ``_gp_lock``)
does, twice: flip the phase of ``_gp_ctr``, then wait for every registered reader until
it is not "active in the old phase" (depth zero, or its phase equals the new one).

The interleaving that makes one flip wrong
------------------------------------------
The load of ``_gp_ctr`` and the store to the thread's own ``ctr`` are two steps, and a
reader can be preempted between them (the ``memb:read_lock:store`` point):

1. Reader R loads ``_gp_ctr`` (phase 0) and is preempted before its store.
2. Grace period 1 flips to phase 1 and scans: R's ``ctr`` is still 0 (no section), so
   it does not wait for R. That is fine so far: R has not yet read anything.
3. R stores phase 0 as its ``ctr``, enters its section and picks up pointer P.
4. An updater unlinks P and starts grace period 2, which flips back to phase 0 and
   scans: R's phase *equals* the current phase, which a single flip takes to mean "R
   began after the flip". It does not wait, P is freed, and R uses freed memory.

With two flips per grace period, grace period 2 flips to phase 0 (R looks current, not
waited), then flips to phase 1: now R's phase 0 is old and it *is* waited for. In
general, a reader's stale stamp can be behind by at most one flip (it loaded before one
flip and stored after it; the flips are serialized by ``_gp_lock``), and of two
consecutive flips one of them makes any reader that entered before the grace period
began look old. ``tests/test_rcu_memb.py`` forces exactly this interleaving against a
single-flip subclass and shows the use-after-free.

Ordering points: the outermost ``read_lock``'s store (B) precedes the section's loads
and pairs with the scan's load of ``ctr`` (D); the scan comes after the flip's store (C),
which pairs with the reader's load (A). The outermost ``read_unlock``'s store comes
after the section's loads and pairs with D as well. Nested lock/unlock change neither
the depth's zeroness nor the phase, so no interleaving can tell them apart and they
carry no schedule point.

``quiescent_state``/``thread_offline``/``thread_online`` are not provided: memb needs no
quiescent states, and a no-op would hide misuse (``quiescent_state()`` inside a section
is an error under QSBR but would pass silently here). The harness treats all three as
optional (``protocol.RCU_OPTIONAL``) and skips them when absent.

The fast read side
------------------
In ``fast`` mode the read side is the same algorithm without the schedule points and
without the unbalanced-unlock check: the outermost ``read_lock`` loads ``_gp_ctr`` and
stores it as the record's ``ctr``, a nested one adds one, ``read_unlock`` subtracts one.
That is all the argument above uses (the points only let a controlled scheduler
preempt between A and B, which a free-running thread may be anyway), so it is still
correct; an unlock without a lock corrupts the count instead of raising. What it
relies on, with or without the GIL: one load of ``_gp_ctr`` (A) and one store of the
record's ``ctr`` (B), each atomic, and stores by the owner only. (Free-threaded CPython
documents atomic attribute loads and stores; like the rest of the harness, the model
assumes they are also ordered, where liburcu's ``urcu-memb`` needs ``membarrier``.)
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from .. import sched
from ._flavor import CHECKED, FAST, FlavorBase
from ._registry import ReaderRecord

__all__ = ["NEST_MASK", "PHASE", "CheckedMembReader", "Memb", "MembReader"]

#: The grace-period phase bit of ``_gp_ctr`` and of an active reader's ``ctr``. Below
#: 2**30, so counters stay one-digit ints (CPython's fast path for small ints).
PHASE = 1 << 29
#: The nesting depth of a reader's ``ctr``.
NEST_MASK = PHASE - 1


class MembReader(ReaderRecord):
    """A memb thread's record and reader handle, ``fast`` mode (module comment).

    ``ctr`` is written by the owner only.
    """

    __slots__ = ("ctr",)
    flavor: Memb

    def __init__(self, flavor: Memb) -> None:
        super().__init__(flavor)
        self.ctr = 0

    def read_lock(self) -> None:
        """Begin a (nestable) read-side section."""
        ctr = self.ctr
        if ctr & NEST_MASK:
            self.ctr = ctr + 1
        else:
            self.ctr = self.flavor._gp_ctr      # A then B, see the module comment

    def read_unlock(self) -> None:
        """End the innermost read-side section (which must exist: not checked)."""
        self.ctr -= 1

    def depth(self) -> int:
        """The nesting depth."""
        return self.ctr & NEST_MASK

    def __repr__(self) -> str:
        ctr = self.ctr
        nesting = ctr & NEST_MASK
        phase = f" phase={int(bool(ctr & PHASE))}" if nesting else ""
        return f"<MembReader {self.name} nesting={nesting}{phase}>"


class CheckedMembReader(MembReader):
    """A memb record in ``checked`` mode: schedule points and the unlock check."""

    __slots__ = ()

    def read_lock(self) -> None:
        """Begin a (nestable) read-side section."""
        ctr = self.ctr
        if ctr & NEST_MASK:
            self.ctr = ctr + 1          # nested: see the module comment
            return
        sched.point("memb:read_lock:load")
        gp = self.flavor._gp_ctr        # A: pairs with the flip's store (C)
        sched.point("memb:read_lock:store")   # the two-flip window (module comment)
        self.ctr = gp                   # B: before the section's loads; pairs with D
        sched.point("memb:read_lock:enter")

    def read_unlock(self) -> None:
        """End the innermost read-side section; raises when none is open."""
        ctr = self.ctr
        depth = ctr & NEST_MASK
        if depth > 1:
            self.ctr = ctr - 1
        elif depth == 1:
            sched.point("memb:read_unlock")   # the section's loads come first
            self.ctr = ctr - 1          # pairs with D: the reader is inactive from here
            sched.point("memb:read_unlock:done")
        else:
            raise self.flavor._no_matching_lock(self)


class Memb(FlavorBase[MembReader]):
    """General-purpose RCU with per-thread counters and a two-flip grace period.

    ``mode="fast"`` drops the read side's checks and schedule points (module comment).
    """

    name = "memb"
    _reader_types: ClassVar = {CHECKED: CheckedMembReader, FAST: MembReader}

    def __init__(self, name: str | None = None, *, mode: str = CHECKED) -> None:
        super().__init__(name, mode=mode)
        self._gp_ctr = 1   # count one, phase 0; written under _gp_lock, loaded by readers

    # -- grace periods ------------------------------------------------------------------

    def _wait_for_readers(self) -> None:
        readers = self._registry.snapshot()   # later registrants began after us
        self._flip_and_wait(readers)
        self._flip_and_wait(readers)          # the second flip: see the module comment

    def _flip_and_wait(self, readers: list[MembReader]) -> None:
        """Flip the phase, then wait until no reader is active in the old phase.

        A protected hook: one flip and its wait, for subclasses that change how many
        (the catalogue's ``memb-single-flip``).
        """
        sched.point("memb:gp:flip")
        gp = self._gp_ctr ^ PHASE
        self._gp_ctr = gp               # C: pairs with A
        for rec in readers:
            sched.point("memb:gp:scan")
            self._wait_for([rec], partial(self._passed, rec, gp),
                           f"{self.name} waits for reader {rec.name}")

    def _passed(self, rec: MembReader, gp: int) -> bool:
        return not self._active_old(rec, gp)

    @staticmethod
    def _active_old(rec: MembReader, gp: int) -> bool:
        ctr = rec.ctr                   # D: one load, pairs with B and read_unlock
        return bool(ctr & NEST_MASK) and bool((ctr ^ gp) & PHASE)

    def _repr_state(self) -> str:
        return f" phase={int(bool(self._gp_ctr & PHASE))}"
