"""QSBR: quiescent-state-based RCU (liburcu's ``urcu-qsbr``, the RFC's ``synchronize_sched``).

What it guarantees
------------------
A ``synchronize()`` that begins after a read-side section began does not return before
that section ends. Readers pay nothing for it: ``read_lock``/``read_unlock`` touch only
the calling thread's nesting count, which exists to catch misuse. The price is paid by
the reader threads' *owners*: every registered thread must announce quiescent states
(``quiescent_state()``) outside its sections, or go offline (``thread_offline()``)
before it blocks for long; an online thread that does neither stalls every grace
period, by design.

The invariant
-------------
``_gp_ctr`` is a global grace-period counter (starts at 1, only the grace-period owner
writes it, under ``_gp_lock``). Each registered thread has a record whose ``ctr`` is

* ``0`` while the thread is offline (it promises to be outside every section), or
* a value of ``_gp_ctr`` the thread loaded at its last quiescent state (or when it came
  online): it was outside every section at that moment.

A grace period increments ``_gp_ctr`` to ``g`` and then waits, for each record of a
registry snapshot taken after the increment, until ``ctr`` is ``0`` or ``g``. A record
shows ``g`` only after its thread loaded ``g``, which happened after the increment, at
a quiescent state, so the thread left every section it had open when the grace period
began. ``0`` means offline, which is also outside every section. Sections are never
open across ``quiescent_state``/``thread_offline``/``unregister_thread``: those raise
``UsageError`` inside a section, which is what makes the argument hold. Python
integers do not wrap, so unlike liburcu on 32-bit machines one counter phase suffices.

Interleavings that make simpler versions wrong
----------------------------------------------
*A registered updater that stays online while it waits* deadlocks. Two registered,
online threads A and B both call ``synchronize()``: A takes ``_gp_lock``, increments the
counter and waits for B's stamp; B queues on ``_gp_lock`` and will announce nothing
until it gets it. So a registered caller goes offline (``ctr`` 0, which A accepts)
*before* it queues on ``_gp_lock``, and comes back online (a fresh stamp) after the
wait, as liburcu does; ``barrier()``, ``cond_synchronize()`` and ``shutdown()`` too.
``tests/test_rcu_qsbr.py`` shows the deadlock with a variant that stays online.

*A quiescent state allowed inside a section* ends that section's protection: the
stamp says "outside every section" while the thread still holds a pointer, and the
grace period frees it. That is why ``quiescent_state``, ``thread_offline`` and
``unregister_thread`` raise ``UsageError`` inside a section rather than trusting the
caller.

*A stale stamp* is safe, not a bug: a reader that loads the old counter in
``quiescent_state``, is preempted across the increment and then stores it is simply
waited for until its next quiescent state (its stamp is older than ``g``).

Callbacks may use read-side sections: the callback worker registers itself before each
batch and unregisters after it (``before_batch``/``after_batch``), so it is offline,
hence never blocks a grace period, while it waits for the next one.

The fast read side is empty
---------------------------
In ``fast`` mode ``read_lock``/``read_unlock`` do nothing at all, as in liburcu's
``urcu-qsbr`` outside debug builds. That is still a correct RCU: the argument above never
reads the nesting count. A grace period waits on stamps, and a thread's stamp changes
only in ``quiescent_state``, ``thread_offline``, ``thread_online`` and
``unregister_thread``; a reader is protected because it does not call them inside a
section. The nesting count exists only to *check* that promise (and to tell a thread
that exited inside a section from one that exited outside): the fast mode trusts the
caller instead, so misuse (a quiescent state inside a section, a read while offline)
goes unnoticed there, and a thread that exits inside a section is simply forgotten
(it can no longer touch memory). What it relies on, with or without the GIL: readers
touch no shared state; ``quiescent_state`` is one load of ``_gp_ctr`` and one store to
the thread's own record; the grace period loads each record's ``ctr`` once per check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial

from typing import ClassVar

from .. import sched
from ..errors import UsageError
from ._flavor import CHECKED, FAST, FlavorBase
from ._registry import ReaderRecord

__all__ = ["QSBR", "QSBRReader", "CheckedQSBRReader"]

#: ``ctr`` of an offline thread; ``_gp_ctr`` starts above it and only grows.
OFFLINE = 0


class QSBRReader(ReaderRecord):
    """A QSBR thread's record and reader handle (``fast`` mode: an empty read side).

    ``ctr`` is written by the owner only.
    """

    __slots__ = ("ctr",)
    flavor: QSBR

    def __init__(self, flavor: QSBR) -> None:
        super().__init__(flavor)
        self.ctr = OFFLINE

    def read_lock(self) -> None:
        """Begin a section: nothing to do (see "The fast read side is empty")."""

    def read_unlock(self) -> None:
        """End a section: nothing to do."""

    def quiescent_state(self) -> None:
        """Announce that this thread is outside every section (``QSBR.quiescent_state``)."""
        self.flavor._quiescent_state(self)

    def depth(self) -> int:
        """0: the fast mode keeps no count (see the module comment)."""
        return 0

    def __repr__(self) -> str:
        state = "offline" if self.ctr == OFFLINE else f"online ctr={self.ctr}"
        return f"<QSBRReader {self.name} {state} nesting={self.depth()}>"


class CheckedQSBRReader(QSBRReader):
    """A QSBR record in ``checked`` mode: it counts nesting to check every call."""

    __slots__ = ("nesting",)

    def __init__(self, flavor: QSBR) -> None:
        super().__init__(flavor)
        self.nesting = 0

    def read_lock(self) -> None:
        """Begin a (nestable) section; the thread must be registered and online."""
        if self.ctr and not self.flavor._shut_down:
            self.nesting += 1
            return
        self.flavor._check_alive("read_lock()")
        raise UsageError(f"{self.flavor.name}: read_lock() in thread {self.name!r}, which "
                         "is offline: its section would not be protected; call "
                         "thread_online() first")

    def read_unlock(self) -> None:
        """End the innermost section; raises when none is open."""
        nesting = self.nesting
        if nesting:
            self.nesting = nesting - 1
        else:
            raise self.flavor._no_matching_lock(self)

    def depth(self) -> int:
        """The nesting depth (owner's view)."""
        return self.nesting


class QSBR(FlavorBase[QSBRReader]):
    """Quiescent-state-based RCU. Threads must register before reading.

    Register with ``register_thread()``, report ``quiescent_state()`` between sections
    (or go ``thread_offline()`` around blocking), ``unregister_thread()`` before exit.
    ``mode="fast"`` empties the read side (see the module comment).
    """

    name = "qsbr"
    _reader_types: ClassVar = {CHECKED: CheckedQSBRReader, FAST: QSBRReader}

    def __init__(self, name: str | None = None, *, mode: str = CHECKED) -> None:
        super().__init__(name, mode=mode, before_batch=self.register_thread,
                         after_batch=self.unregister_thread)
        self._gp_ctr = 1   # guarded by _gp_lock for writes; loaded by any thread

    def _first_use(self, what: str) -> QSBRReader:
        raise self._lookup_failed(what)

    # -- thread states ----------------------------------------------------------------

    def register_thread(self) -> None:
        """Make the calling thread a reader; it comes online."""
        self._check_alive("register_thread()")
        if self._own_record() is not None:
            raise UsageError(f"{self.name}: thread {sched.current_name()!r} is already "
                             "registered; register once per thread")
        rec = self._register_self("register_thread()")   # offline (ctr 0) until:
        self._store_gp_ctr(rec)

    def unregister_thread(self) -> None:
        """Stop being a reader; the thread must be outside every section."""
        rec = self._quiescent_record("unregister_thread()", "unregistering")
        self._store_offline(rec)        # before removal: a snapshot holding rec sees 0
        self._remove_record(rec)

    def quiescent_state(self) -> None:
        """Announce that the calling thread is outside every section (and online)."""
        self._quiescent_state(self._registered_record("quiescent_state()"))

    def _quiescent_state(self, rec: QSBRReader) -> None:
        self._check_quiescent(rec, "quiescent_state()", "a quiescent state",
                              "offline; call thread_online() instead")
        self._store_gp_ctr(rec)

    def thread_offline(self) -> None:
        """Promise to stay outside sections until ``thread_online()`` (e.g. to block)."""
        rec = self._quiescent_record("thread_offline()", "going offline",
                                     "already offline")
        self._store_offline(rec)

    def thread_online(self) -> None:
        """Come back online after ``thread_offline()``; this is also a quiescent state."""
        rec = self._registered_record("thread_online()")
        if rec.ctr != OFFLINE:
            raise UsageError(f"{self.name}: thread_online() in thread {rec.name!r}, which "
                             "is already online")
        self._store_gp_ctr(rec)

    def _registered_record(self, what: str) -> QSBRReader:
        self._check_alive(what)
        rec = self._own_record()
        if rec is None:
            raise self._lookup_failed(what)
        return rec

    def _quiescent_record(self, what: str, act: str,
                          if_offline: str | None = None) -> QSBRReader:
        """The caller's record, checked by ``_check_quiescent``."""
        rec = self._registered_record(what)
        self._check_quiescent(rec, what, act, if_offline)
        return rec

    def _check_quiescent(self, rec: QSBRReader, what: str, act: str,
                         if_offline: str | None) -> None:
        """Refuse ``what`` inside a section (and offline, unless ``if_offline`` is
        ``None``: then it says what an offline thread is told)."""
        self._check_outside(rec, what, act)
        if if_offline is not None and rec.ctr == OFFLINE:
            raise UsageError(f"{self.name}: {what} in thread {rec.name!r}, which is "
                             f"{if_offline}")

    def _store_offline(self, rec: QSBRReader) -> None:
        sched.point("qsbr:offline")     # the thread's earlier accesses come first
        rec.ctr = OFFLINE               # pairs with the wait's load of ctr (D)
        sched.point("qsbr:offline:done")

    def _store_gp_ctr(self, rec: QSBRReader) -> None:
        """Stamp ``rec`` with the current counter: a quiescent state (or coming online).

        A protected hook: the only way a thread announces a quiescent state, for
        subclasses that change *when* (the catalogue's ``qsbr-qs-in-reader``).
        """
        sched.point("qsbr:qs:load")     # the thread's earlier accesses come first
        ctr = self._gp_ctr              # A: pairs with the increment (C) in the wait
        sched.point("qsbr:qs:store")    # a loaded-old, stored-late stamp is only older
        rec.ctr = ctr                   # B: pairs with the wait's load of ctr (D)
        sched.point("qsbr:qs:done")

    # -- grace periods ----------------------------------------------------------------

    def synchronize_sched(self) -> None:
        """The RFC's name for :meth:`synchronize`."""
        self.synchronize()

    @contextlib.contextmanager
    def _quiescent_while_blocked(self) -> Iterator[None]:
        rec = self._own_record()
        if rec is None or rec.ctr == OFFLINE:
            yield
            return
        self.thread_offline()           # before queueing on _gp_lock; module comment
        try:
            yield
        finally:
            self.thread_online()

    def _wait_for_readers(self) -> None:
        sched.point("qsbr:gp:inc")
        gp = self._gp_ctr + 1
        self._gp_ctr = gp               # C: pairs with A; later stamps are >= gp
        for rec in self._registry.snapshot():   # after C: see registry's comment
            sched.point("qsbr:gp:scan")
            self._wait_for([rec], partial(self._passed, rec, gp),
                           f"{self.name} waits for reader {rec.name}")

    @staticmethod
    def _passed(rec: QSBRReader, gp: int) -> bool:
        ctr = rec.ctr                   # D: one load, pairs with B and with offline
        return ctr == OFFLINE or ctr == gp

    def _repr_state(self) -> str:
        return f" gp_ctr={self._gp_ctr}"
