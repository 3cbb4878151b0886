"""SRCU: sleepable read-side domains (the kernel's ``srcu_struct``), classic two-index form.

Everything but the reader counters and the drain (the registry, dead readers, broken
state, the grace-period sequence and its recovery, polled cookies, callbacks, shutdown)
is the flavor base's (``_flavor``), shared with QSBR and memb.

What it guarantees
------------------
``synchronize()`` on a domain returns only after every read-side section *of that
domain* that had begun before the call has ended, however long the reader blocks
inside (sleeps, waits on events, takes locks). Sections of other domains are never
waited for. A section begins at its lock-count increment in ``read_lock()`` and ends at
its unlock-count increment in ``read_unlock()``.

The counters and the invariant
------------------------------
Each thread that reads a domain owns one record with two pairs of counters,
``lock[i]`` and ``unlock[i]`` for index ``i`` in {0, 1}. Only the owner writes them
(one list-item store each, never a read-modify-write by two threads), they only grow,
and the owner increments ``unlock[i]`` only for a section it counted in ``lock[i]``
earlier. Hence, for every record and index, at all times::

    unlock[i] <= lock[i]            and            lock[i] - unlock[i] = open sections on i

``read_lock()`` loads the domain's current index ``_idx``, increments ``lock[_idx]`` of
its own record and returns the index; ``read_unlock(idx)`` increments ``unlock[idx]``.
The grace-period owner (holding ``_gp_lock``) is the only writer of ``_idx``.

Draining one index (``_readers_active``): sum ``unlock[i]`` over the records (pass 1,
record r read at time u_r), then sum ``lock[i]`` (pass 2, record r read at v_r > u_r).
For each record, ``unlock(u_r) <= lock(u_r) <= lock(v_r)``, so ``U <= L``, and ``L == U``
holds only if every record had no section open on ``i`` at u_r and began none on ``i``
between u_r and v_r. So when ``L == U``, every section on ``i`` that was open when the
check began has ended. Unlocks first is what makes this true; summing locks first is
wrong::

    updater (locks first)          reader A           reader B (late: loaded idx i earlier)
    L: A.lock[i] -> 1              inside, on i
    L: B.lock[i] -> 0  (L = 1)
                                                      B.lock[i] += 1 ... B.unlock[i] += 1
    U: A.unlock[i] -> 0
    U: B.unlock[i] -> 1  (U = 1)   still inside       -> L == U: "drained" while A reads

B's unlock is counted but its lock is not, and it cancels A's open section. Counting
unlocks first, an unlock that is counted was preceded by its lock, which pass 2 sees.

A grace period (``_drain``, the flavor's reader wait), with ``c`` the index current at
its start:

1. wait until index ``c ^ 1`` (the inactive one) has drained;
2. flip: ``_idx = c ^ 1`` -- readers that load the index from now on use ``c ^ 1``;
3. wait until index ``c`` has drained.

Safety: a section that began before ``synchronize()`` was called is on ``c`` or on
``c ^ 1``, and is open when the check of its index begins unless it has already ended;
so that check passes only after it ended. Liveness: new readers load ``c`` during step 1
and ``c ^ 1`` during step 3, so the index being waited for receives increments only from
*late* readers, threads that loaded it before the last flip and had not yet
incremented; each thread is at most one such increment behind, so the wait ends once
the finite set of sections already on that index ends. Waiting on the current index
without a flip (a single counter) is also safe, but can starve: a relay of overlapping
new readers keeps it from ever draining. The flip is there for liveness; the two
waits, one per index, are there for safety. Nested sections simply count twice.

The late reader, and why step 1 cannot be skipped
-------------------------------------------------
A reader may be preempted between loading the index and incrementing ``lock``, here for
as long as the OS likes. The "flip, then wait for the old index" shortcut then frees
memory a reader still uses::

    reader R                            updater
    idx = _idx              (0)
    ...preempted...                     gp = new1; synchronize():
                                          flip 0 -> 1; wait index 0: R not counted, done
                                        free(old)           -- fine, R has read nothing
    lock[0] += 1            (begins, on 0, while _idx is 1)
    p = gp                  (new1)
                                        gp = new2; synchronize():
                                          shortcut: flip 1 -> 0; wait index 1: empty, done
                                        free(new1)          -- R still uses new1
                                          classic: step 1 waits for index 0 first, which
                                          holds R, so new1 is freed only after R ends.

Python integers never overflow. The kernel's counters are ``unsigned long``, so a false
``L == U`` could also come from the lock counts wrapping between the two passes; the
kernel's own comment on this check calls that a "possible bug", because nothing bounds
how many sections may still use the old index between the passes. Here ``L == U`` is
exact arithmetic: safety needs no bound on late readers at all, only liveness does (one
per thread, as above), and the window between loading the index and incrementing may
be as long as a reader likes (in the kernel, with preemption disabled, it is short).

Ordering points
---------------
Each ``sched.point`` below separates two shared accesses; the labels are module
constants (tests and controlled schedulers park threads on them). They stand where the
kernel has ``smp_mb()``, and the model assumes, as the whole harness does, that Python
loads and stores between points happen in one total order. Possible gap: free-threaded
CPython documents atomicity of one list-item or attribute load/store, not that a store
followed by a load of another location is never reordered by the hardware; the kernel
needs full barriers exactly there (store-buffering pattern of B and A).

* (R1) after the lock increment, before the section's loads (kernel B): pairs with (U1).
  If pass 2 missed our increment, our section's loads come after pass 2, hence after
  the update that preceded ``synchronize()``: we cannot hold what it frees.
* (R2) after the section's loads, before the unlock increment (kernel C): once pass 1
  counts our unlock, our section has finished reading.
* (U1) between pass 1 and pass 2 (kernel A): the order that makes ``U <= L``.
* (U2) around the flip store (kernel D): pairs with the reader's index load; the window
  between that load and (R1) is the late-reader window, ``LABEL_INDEX_LOADED``.

The fast read side
------------------
In ``fast`` mode ``read_lock`` is one load of ``_idx`` and one increment of the
record's ``lock[idx]``; ``read_unlock(idx)`` one increment of ``unlock[idx]``. These are
exactly the accesses the argument above uses; the checked mode adds schedule points
(R1, R2 and the late-reader window, so controlled runs can preempt there, as the OS may
anyway) and checks that ``idx`` is an index this thread holds. A wrong index in fast
mode breaks the invariant ``unlock[i] <= lock[i]`` instead of raising, as it would in
the kernel. What it relies on, with or without the GIL: one atomic load of ``_idx``,
and list-item loads and stores of the owner's counters (one writer each).

A fast record's two methods are closures bound to its domain and to the very ``lock``
and ``unlock`` lists the record exposes (``_fast_reader``), so a pair does no attribute
load on the record: on an interpreter that does not specialize bytecode (free-threaded
3.13) each such load is a generic lookup, and they were most of the pair's cost. The
lists are the same objects the drain sums, so the invariant above is unchanged; a
record whose methods counted elsewhere would be invisible to every grace period
(``tests/test_srcu.py`` builds one and checks that a grace period returns under it).

Locks, what they guard, and their order
---------------------------------------
``_gp_lock`` (the base's) serializes grace periods and guards ``_idx`` and ``_gp``
writes (the kernel's ``srcu_struct.mutex``); the registry has its own leaf lock. Order:
``_gp_lock`` before the registry lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NoReturn

from .. import sched
from ..errors import WrongIndexError
from ._flavor import CHECKED, FAST, FlavorBase
from ._registry import ReaderRecord

__all__ = ["CheckedSRCUReader", "SRCU", "SRCUReader"]

# Schedule-point labels. Reader side:
LABEL_READ_LOCK = "srcu_read_lock"
#: Between the load of the current index and the lock-count increment: the late-reader
#: window of the module comment.
LABEL_INDEX_LOADED = "srcu_read_lock:index_loaded"
LABEL_LOCKED = "srcu_read_lock:locked"            # (R1)
LABEL_READ_UNLOCK = "srcu_read_unlock"            # (R2)
LABEL_UNLOCKED = "srcu_read_unlock:unlocked"
# Updater side:
LABEL_SUM_UNLOCKS = "synchronize_srcu:sum_unlocks"
LABEL_BETWEEN_SUMS = "synchronize_srcu:between_sums"   # (U1)
LABEL_SUM_LOCKS = "synchronize_srcu:sum_locks"
LABEL_FLIP = "synchronize_srcu:flip"                   # (U2), before the store
LABEL_FLIPPED = "synchronize_srcu:flipped"             # (U2), after the store


class SRCUReader(ReaderRecord):
    """One thread's counters in one domain and its reader handle, ``fast`` mode.

    ``lock``/``unlock`` items are written only by the owning thread; the grace-period
    owner loads them (see the invariant in the module comment).
    """

    __slots__ = ("lock", "unlock")
    flavor: SRCU

    def __init__(self, flavor: SRCU, lock: list[int] | None = None,
                 unlock: list[int] | None = None) -> None:
        super().__init__(flavor)
        self.lock = [0, 0] if lock is None else lock
        self.unlock = [0, 0] if unlock is None else unlock

    def read_lock(self) -> int:
        """Begin a section; return the index to pass to ``read_unlock()``."""
        idx = self.flavor._idx
        self.lock[idx] += 1
        return idx

    def read_unlock(self, idx: int) -> None:
        """End a section begun with ``idx`` (which must be right: not checked)."""
        self.unlock[idx] += 1

    def open_on(self, idx: int) -> int:
        """Open sections on ``idx`` (exact for the owner, a snapshot for others)."""
        unlocks = self.unlock[idx]      # unlock first: never below the true count
        return self.lock[idx] - unlocks

    def depth(self) -> int:
        """Open sections on both indices."""
        return self.open_on(0) + self.open_on(1)

    def __repr__(self) -> str:
        return (f"<srcu reader {self.name} lock={self.lock} unlock={self.unlock} "
                f"open={self.depth()}>")


class CheckedSRCUReader(SRCUReader):
    """An SRCU record in ``checked`` mode: schedule points and the index check."""

    __slots__ = ()

    def read_lock(self) -> int:
        """Begin a section; return the index. Raises ``ShutdownError`` after shutdown."""
        sched.point(LABEL_READ_LOCK)
        flavor = self.flavor
        flavor._check_alive("read_lock()")
        idx = flavor._idx
        # The late-reader window: a flip (and whole grace periods) may happen here.
        sched.point(LABEL_INDEX_LOADED)
        self.lock[idx] += 1
        # (R1): the section's loads come after the increment; pairs with (U1).
        sched.point(LABEL_LOCKED)
        return idx

    def read_unlock(self, idx: int) -> None:
        """End a section begun in this thread by the ``read_lock()`` that returned ``idx``.

        Raises ``WrongIndexError`` (``idx`` not an int in {0, 1}, or not one this
        thread holds), ``UnbalancedUnlockError`` (this thread holds no section).
        """
        if type(idx) is not int or not 0 <= idx <= 1 or self.lock[idx] == self.unlock[idx]:
            self.flavor._bad_unlock(self, idx)
        # (R2): the section's loads are done before the unlock can be counted.
        sched.point(LABEL_READ_UNLOCK)
        self.unlock[idx] += 1
        sched.point(LABEL_UNLOCKED)


def _fast_reader(domain: SRCU) -> SRCUReader:
    """A ``fast`` record whose read side is bound to its domain and its own counters.

    The same accesses as ``SRCUReader.read_lock``/``read_unlock``, on the same list
    objects the record exposes to the drain, with no attribute load on the record (the
    module comment's "The fast read side"). One class per record: its methods close
    over that record's lists.
    """
    lock = [0, 0]
    unlock = [0, 0]

    class BoundSRCUReader(SRCUReader):
        __slots__ = ()

        def read_lock(self) -> int:
            idx = domain._idx
            lock[idx] += 1
            return idx

        def read_unlock(self, idx: int) -> None:
            unlock[idx] += 1

    return BoundSRCUReader(domain, lock, unlock)


def _sum(records: list[SRCUReader], counter: str, idx: int, label: str) -> int:
    """Sum one counter (``"lock"`` or ``"unlock"``) of index ``idx`` over ``records``."""
    total = 0
    for rec in records:
        sched.point(label)          # each record's load is its own step
        counts: list[int] = getattr(rec, counter)
        total += counts[idx]
    return total


def _open_now(records: list[SRCUReader], idx: int) -> int:
    """``L - U`` of ``idx`` over ``records`` in one go: ``_readers_active``'s value when
    nothing runs between its loads (no points: for ready tests)."""
    return sum([rec.lock[idx] - rec.unlock[idx] for rec in records])


class SRCU(FlavorBase[SRCUReader]):
    """An SRCU domain: ``srcu_read_lock``/``srcu_read_unlock``/``synchronize_srcu``/...

    Implements :class:`rcu_pgdat.rcu.protocol.SRCUDomain`. Readers may block inside
    their sections; sections nest, and sections of different domains may overlap.
    Each method's docstring names the error it raises on misuse. ``mode="fast"`` drops
    the read side's checks and schedule points (module comment).
    """

    name = "srcu"
    _reader_types: ClassVar = {CHECKED: CheckedSRCUReader, FAST: _fast_reader}

    def __init__(self, name: str = "srcu", *, mode: str = CHECKED) -> None:
        super().__init__(name, mode=mode)
        #: The current index; written only by the grace-period owner (``_gp_lock``).
        self._idx = 0

    @property
    def index(self) -> int:
        """The index ``read_lock()`` hands out now (flipped by every grace period)."""
        return self._idx

    # -- read side -----------------------------------------------------------------

    def read_unlock(self, idx: int) -> None:  # type: ignore[override]  # SRCU protocol
        """End a section begun in this thread by the ``read_lock()`` that returned ``idx``."""
        try:
            rec = self._tls.rec
        except AttributeError:
            self._bad_unlock(None, idx)
        rec.read_unlock(idx)

    # -- the kernel's names ----------------------------------------------------------

    def call_srcu(self, callback: Callable[[], Any]) -> None:
        """The kernel's name for :meth:`call_rcu` (legal inside a section)."""
        self.call_rcu(callback)

    def cleanup(self) -> None:
        """The kernel's ``cleanup_srcu_struct()``: :meth:`shutdown`, once.

        Raises ``CleanupBusyError`` (saying how many sections, in which threads) while
        readers are inside; nothing changes then. As in the kernel, the caller must
        also make sure no new reader starts while it runs, and calling it twice is a
        bug (``ShutdownError``).
        """
        self._check_alive("cleanup()")
        self.shutdown()

    # -- the grace period ------------------------------------------------------------

    def _wait_for_readers(self) -> None:
        self._drain(self._registry.snapshot())

    def _drain(self, records: list[SRCUReader]) -> None:
        """Wait for both indices (module comment, steps 1-3); ``_gp_lock`` held.

        A protected hook: subclasses that get the drain wrong override it (the
        catalogue's ``srcu-skip-old-index``).
        """
        idx = self._idx
        self._wait_for_index(records, idx ^ 1)       # step 1: late readers
        self._flip(idx)                              # step 2
        self._wait_for_index(records, idx)           # step 3

    def _flip(self, idx: int) -> None:
        """Make ``idx ^ 1`` the index new readers use (owner only)."""
        sched.point(LABEL_FLIP)        # (U2): step 1's loads are done before the flip
        self._idx = idx ^ 1
        sched.point(LABEL_FLIPPED)     # (U2): the flip is visible before step 3's loads

    def _readers_active(self, records: list[SRCUReader], idx: int) -> int:
        """``L - U`` for ``idx`` over ``records``, unlocks first; 0 means drained."""
        unlocks = self._sum_unlocks(records, idx)
        sched.point(LABEL_BETWEEN_SUMS)    # (U1): pass 1 entirely before pass 2
        return self._sum_locks(records, idx) - unlocks

    @staticmethod
    def _sum_unlocks(records: list[SRCUReader], idx: int) -> int:
        """Pass 1: the unlock counts of ``idx``."""
        return _sum(records, "unlock", idx, LABEL_SUM_UNLOCKS)

    @staticmethod
    def _sum_locks(records: list[SRCUReader], idx: int) -> int:
        """Pass 2: the lock counts of ``idx``."""
        return _sum(records, "lock", idx, LABEL_SUM_LOCKS)

    def _wait_for_index(self, records: list[SRCUReader], idx: int) -> None:
        """Block until no section on ``idx`` that began before this call is open.

        The ready test sums without the passes' points (``_open_now``): with no other
        thread running in between, both passes read every counter at one instant, and
        ``L - U`` is the same whatever the order. Only for this class's own passes: a
        subclass that changes them keeps its own for the ready test too.
        """
        cls = type(self)
        own = (cls._readers_active is SRCU._readers_active
               and cls._sum_locks is SRCU._sum_locks and cls._sum_unlocks is SRCU._sum_unlocks)
        self._wait_for(records, lambda: self._readers_active(records, idx) == 0,
                       f"srcu {self.name}: readers of index {idx}",
                       holds=lambda rec: rec.open_on(idx),
                       passed_now=(lambda: _open_now(records, idx) == 0) if own else None)

    # -- misuse ------------------------------------------------------------------------

    def _bad_unlock(self, rec: SRCUReader | None, idx: object) -> NoReturn:
        """Raise the error that explains why ``read_unlock(idx)`` is wrong."""
        where = f"srcu_read_unlock({self.name}, {idx!r})"
        self._check_alive(f"read_unlock({idx!r})")
        if type(idx) is not int:
            raise WrongIndexError(f"{where}: idx must be the int read_lock() returned, "
                                  f"got a {type(idx).__name__}")
        if not 0 <= idx <= 1:
            raise WrongIndexError(f"{where}: idx out of range; read_lock() returns 0 or 1")
        if rec is None or not rec.depth():
            raise self._no_matching_lock(rec)
        raise WrongIndexError(
            f"{where} in thread {rec.name!r}: this thread's open sections use index "
            f"{idx ^ 1} ({rec.open_on(idx ^ 1)} open), none uses {idx}; pass the value "
            "read_lock() returned")

    def _repr_state(self) -> str:
        # Diagnostics only: no lock (repr must work while one is held).
        active = [0, 0]
        for rec in self._registry.peek():
            active[0] += rec.open_on(0)
            active[1] += rec.open_on(1)
        return f" idx={self._idx} active={active}"
