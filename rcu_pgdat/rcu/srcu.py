"""SRCU: sleepable read-side domains (the kernel's ``srcu_struct``), classic two-index form.

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
The grace-period owner (holding ``_gp_mutex``) is the only writer of ``_idx``.

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

A grace period (``_drain``), with ``c`` the index current at its start:

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

Locks, what they guard, and their order
---------------------------------------
``_gp_mutex`` serializes grace periods and guards ``_idx`` and ``_gp`` writes (the
kernel's ``srcu_struct.mutex``). ``_registry_lock`` guards the registry list: appends,
snapshots, and pruning (which replaces the list object). Order: ``_gp_mutex`` before
``_registry_lock``; nothing else is called with ``_registry_lock`` held.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NoReturn

from .. import sched
from ..errors import (
    CleanupBusyError,
    ShutdownError,
    SynchronizeInReaderError,
    UnbalancedUnlockError,
    UsageError,
    WrongIndexError,
)
from ._callbacks import CallbackWorker
from ._gpseq import GPSequence

__all__ = ["SRCU"]

# Schedule-point labels. Reader side:
LABEL_READ_LOCK = "srcu_read_lock"
#: Between the load of the current index and the lock-count increment: the late-reader
#: window of the module comment.
LABEL_INDEX_LOADED = "srcu_read_lock:index_loaded"
LABEL_LOCKED = "srcu_read_lock:locked"            # (R1)
LABEL_READ_UNLOCK = "srcu_read_unlock"            # (R2)
LABEL_UNLOCKED = "srcu_read_unlock:unlocked"
# Updater side:
LABEL_SYNC = "synchronize_srcu"
LABEL_SNAPSHOT = "synchronize_srcu:snapshot"
LABEL_SUM_UNLOCKS = "synchronize_srcu:sum_unlocks"
LABEL_BETWEEN_SUMS = "synchronize_srcu:between_sums"   # (U1)
LABEL_SUM_LOCKS = "synchronize_srcu:sum_locks"
LABEL_FLIP = "synchronize_srcu:flip"                   # (U2), before the store
LABEL_FLIPPED = "synchronize_srcu:flipped"             # (U2), after the store
LABEL_GET_STATE = "get_state_synchronize_srcu"


class _ReaderRecord:
    """One thread's counters in one domain; see the invariant in the module comment.

    Written only by the owning thread (``lock``/``unlock`` items); read by the
    grace-period owner and, for diagnostics, by ``cleanup()`` and ``repr``.
    ``thread`` tells the grace period whether a thread died inside a section.
    """

    __slots__ = ("lock", "name", "thread", "unlock")

    def __init__(self, thread: threading.Thread) -> None:
        self.name = thread.name
        self.thread = thread
        self.lock = [0, 0]
        self.unlock = [0, 0]

    def open_on(self, idx: int) -> int:
        """Open sections on ``idx`` (exact for the owner, a snapshot for others)."""
        unlocks = self.unlock[idx]      # unlock first: never below the true count
        return self.lock[idx] - unlocks

    def open_sections(self) -> int:
        """Open sections on both indices."""
        return self.open_on(0) + self.open_on(1)

    def __repr__(self) -> str:
        return (f"<srcu reader {self.name} lock={self.lock} unlock={self.unlock} "
                f"open={self.open_sections()}>")


def _sum(records: list[_ReaderRecord], counter: str, idx: int, label: str) -> int:
    """Sum one counter (``"lock"`` or ``"unlock"``) of index ``idx`` over ``records``."""
    total = 0
    for rec in records:
        sched.point(label)          # each record's load is its own step
        counts: list[int] = getattr(rec, counter)
        total += counts[idx]
    return total


class SRCU:
    """An SRCU domain: ``srcu_read_lock``/``srcu_read_unlock``/``synchronize_srcu``/...

    Implements :class:`rcu_pgdat.rcu.protocol.SRCUDomain`. Readers may block inside
    their sections; sections nest, and sections of different domains may overlap.
    Each method's docstring names the error it raises on misuse.
    """

    def __init__(self, name: str = "srcu") -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"SRCU name must be a non-empty str, got {name!r}")
        self.name = name
        #: The current index; written only by the grace-period owner (``_gp_mutex``).
        self._idx = 0
        self._gp = GPSequence()                      # written under _gp_mutex only
        self._gp_mutex = sched.Mutex(f"srcu {name}: grace period")
        self._registry_lock = sched.Mutex(f"srcu {name}: registry")
        self._registry: list[_ReaderRecord] = []     # guarded by _registry_lock
        self._tls = threading.local()                # .rec: this thread's record
        self._dead = False                           # written once, by cleanup()
        #: Set when a grace period found a thread that exited inside a section.
        self._broken: str | None = None
        self._worker = CallbackWorker(self.synchronize, f"srcu-{name}-callbacks")

    # -- read side -----------------------------------------------------------------

    def read_lock(self) -> int:
        """Begin a read-side section; return the index to pass to ``read_unlock()``.

        Nestable. Raises ``ShutdownError`` after ``cleanup()``.
        """
        sched.point(LABEL_READ_LOCK)
        try:
            rec = self._tls.rec
        except AttributeError:
            rec = self._register()
        if self._dead:
            raise ShutdownError(f"srcu_read_lock({self.name}) after cleanup(): "
                                "the domain is torn down; use a live SRCU domain")
        idx = self._idx
        # The late-reader window: a flip (and whole grace periods) may happen here.
        sched.point(LABEL_INDEX_LOADED)
        rec.lock[idx] += 1
        # (R1): the section's loads come after the increment; pairs with (U1).
        sched.point(LABEL_LOCKED)
        return idx

    def read_unlock(self, idx: int) -> None:
        """End a section begun in this thread by the ``read_lock()`` that returned ``idx``.

        Raises ``WrongIndexError`` (``idx`` not an int in {0, 1}, or not one this
        thread holds), ``UnbalancedUnlockError`` (this thread holds no section).
        """
        try:
            rec: _ReaderRecord = self._tls.rec
        except AttributeError:
            self._bad_unlock(None, idx)
        if type(idx) is not int or not 0 <= idx <= 1 or rec.lock[idx] == rec.unlock[idx]:
            self._bad_unlock(rec, idx)
        # (R2): the section's loads are done before the unlock can be counted.
        sched.point(LABEL_READ_UNLOCK)
        rec.unlock[idx] += 1
        sched.point(LABEL_UNLOCKED)

    # -- update side -----------------------------------------------------------------

    def synchronize(self) -> None:
        """Wait until every section of this domain begun before the call has ended.

        Raises ``SynchronizeInReaderError`` inside a section of this domain (it would
        wait for itself), ``ShutdownError`` after ``cleanup()``.
        """
        self._check_usable("synchronize_srcu")
        sched.point(LABEL_SYNC)
        cookie = self._gp.snap()
        with self._gp_mutex:
            # A grace period that began after our snap() and has ended covers us
            # (see _gpseq): callers queued behind one grace period share the next.
            if self._gp.done(cookie):
                return
            self._gp.start()
            self._drain(self._snapshot())
            self._gp.end()

    def call_srcu(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` in the domain's worker after a full grace period from now.

        Legal inside a section. Raises ``ShutdownError`` after ``cleanup()``.
        """
        self._check_usable("call_srcu", reader_ok=True)
        self._worker.enqueue(callback)

    def barrier(self) -> None:
        """Wait until every callback queued by ``call_srcu()`` before this call has run.

        Raises ``SynchronizeInReaderError`` inside a section of this domain.
        """
        self._check_usable("srcu_barrier")
        self._worker.barrier()

    def cleanup(self) -> None:
        """Run pending callbacks and tear the domain down; every later call raises.

        Raises ``CleanupBusyError`` (saying how many sections, in which threads) while
        readers are inside; nothing changes then. As in the kernel, the caller must
        also make sure no new reader starts while ``cleanup()`` runs: a ``read_lock()``
        racing with it is not detected.
        """
        if self._dead:
            raise ShutdownError(f"cleanup_srcu_struct({self.name}) called twice")
        with self._registry_lock:
            sched.point(LABEL_SNAPSHOT)
            records = list(self._registry)
        sections = self._readers_active(records, 0) + self._readers_active(records, 1)
        if sections:
            holders = sorted(r.name for r in records if r.open_sections())
            raise CleanupBusyError(
                f"cleanup_srcu_struct({self.name}): {sections} read-side section(s) "
                f"still open in {len(holders)} thread(s) ({', '.join(holders)}); "
                "end them with read_unlock() (and join those threads) first")
        self._worker.shutdown()
        self._dead = True

    # -- polled grace periods ----------------------------------------------------------

    def get_state(self) -> int:
        """A cookie for a full grace period from now (``get_state_synchronize_srcu``)."""
        self._check_usable("get_state_synchronize_srcu", reader_ok=True)
        sched.point(LABEL_GET_STATE)
        return self._gp.snap()

    def poll_state(self, cookie: int) -> bool:
        """Whether the grace period promised by ``cookie`` (from ``get_state``) is over."""
        if type(cookie) is not int:
            raise UsageError(f"poll_state_synchronize_srcu({self.name}): the cookie must "
                             f"be the int get_state() returned, got {cookie!r}")
        self._check_usable("poll_state_synchronize_srcu", reader_ok=True)
        sched.point(LABEL_GET_STATE)
        return self._gp.done(cookie)

    @property
    def completed(self) -> int:
        """Grace periods completed so far (``srcu_batches_completed``)."""
        return self._gp.completed

    # -- the grace period ------------------------------------------------------------

    def _drain(self, records: list[_ReaderRecord]) -> None:
        """Wait for both indices (module comment, steps 1-3); ``_gp_mutex`` held."""
        idx = self._idx
        self._wait_for_readers(records, idx ^ 1)     # step 1: late readers
        self._flip(idx)                              # step 2
        self._wait_for_readers(records, idx)         # step 3

    def _flip(self, idx: int) -> None:
        """Make ``idx ^ 1`` the index new readers use (owner only)."""
        sched.point(LABEL_FLIP)        # (U2): step 1's loads are done before the flip
        self._idx = idx ^ 1
        sched.point(LABEL_FLIPPED)     # (U2): the flip is visible before step 3's loads

    def _readers_active(self, records: list[_ReaderRecord], idx: int) -> int:
        """``L - U`` for ``idx`` over ``records``, unlocks first; 0 means drained."""
        unlocks = _sum(records, "unlock", idx, LABEL_SUM_UNLOCKS)
        sched.point(LABEL_BETWEEN_SUMS)    # (U1): pass 1 entirely before pass 2
        locks = _sum(records, "lock", idx, LABEL_SUM_LOCKS)
        return locks - unlocks

    def _wait_for_readers(self, records: list[_ReaderRecord], idx: int) -> None:
        """Block until no section on ``idx`` that began before this call is open."""
        def drained() -> bool:
            return self._readers_active(records, idx) == 0 or self._dead_reader(records, idx)

        sched.wait_until(drained, f"srcu {self.name}: readers of index {idx}")
        if self._broken is not None:
            raise UsageError(self._broken)

    def _dead_reader(self, records: list[_ReaderRecord], idx: int) -> bool:
        """Whether a thread exited inside a section on ``idx``; records why in ``_broken``.

        Such a section never ends, so the grace period would wait forever. A dead
        thread's counters no longer change, so the check is stable once true.
        """
        for rec in records:
            if not rec.thread.is_alive() and rec.open_on(idx):
                self._broken = (
                    f"srcu {self.name}: thread {rec.name} exited inside "
                    f"{rec.open_on(idx)} read-side section(s) on index {idx}; no grace "
                    "period can end. End every section with read_unlock() before the "
                    "thread exits (try/finally).")
                return True
        return False

    # -- registry and checks -------------------------------------------------------------

    def _register(self) -> _ReaderRecord:
        """Create, publish and return the calling thread's record (first read_lock).

        This takes the registry mutex, a short critical section that never waits for
        readers or grace periods; the might-sleep hook still sees it, once per thread.
        """
        rec = _ReaderRecord(threading.current_thread())
        with self._registry_lock:
            sched.point(LABEL_SNAPSHOT)
            self._registry.append(rec)
        self._tls.rec = rec
        return rec

    def _snapshot(self) -> list[_ReaderRecord]:
        """The records a grace period checks; drops those of exited, balanced threads.

        A record registered after this snapshot belongs to a thread whose first section
        began after the grace period did, so leaving it out is safe. An exited thread's
        counters never change again; when balanced they add the same amount to ``L``
        and ``U`` of every later check, so dropping them changes no verdict.
        """
        with self._registry_lock:
            sched.point(LABEL_SNAPSHOT)
            live = [r for r in self._registry if r.thread.is_alive() or r.open_sections()]
            if len(live) != len(self._registry):
                self._registry = live        # replace, never shrink in place (see repr)
            return list(live)

    def _check_usable(self, what: str, reader_ok: bool = False) -> None:
        if self._dead:
            raise ShutdownError(f"{what}({self.name}) after cleanup(): the domain is torn "
                                "down; use a live SRCU domain")
        if self._broken is not None:
            raise UsageError(self._broken)
        rec: _ReaderRecord | None = getattr(self._tls, "rec", None)
        if not reader_ok and rec is not None and rec.open_sections():
            raise SynchronizeInReaderError(
                f"{what}({self.name}) inside a read-side section of the same domain "
                f"(thread {rec.name} holds {rec.open_sections()}): it would wait for "
                "itself. Call it after read_unlock(), or from another thread.")

    def _bad_unlock(self, rec: _ReaderRecord | None, idx: object) -> NoReturn:
        """Raise the error that explains why ``read_unlock(idx)`` is wrong."""
        where = f"srcu_read_unlock({self.name}, {idx!r})"
        if self._dead:
            raise ShutdownError(f"{where} after cleanup(): the domain is torn down")
        if type(idx) is not int:
            raise WrongIndexError(f"{where}: idx must be the int read_lock() returned, "
                                  f"got a {type(idx).__name__}")
        if not 0 <= idx <= 1:
            raise WrongIndexError(f"{where}: idx out of range; read_lock() returns 0 or 1")
        me = threading.current_thread().name
        if rec is None or not rec.open_sections():
            raise UnbalancedUnlockError(
                f"{where} in thread {me} without a matching read_lock(): this thread "
                "holds no section of this domain (a section ends in the thread that "
                "began it)")
        raise WrongIndexError(
            f"{where} in thread {me}: this thread's open sections use index {idx ^ 1} "
            f"({rec.open_on(idx ^ 1)} open), none uses {idx}; pass the value read_lock() "
            "returned")

    def __repr__(self) -> str:
        # Diagnostics only: no lock (repr must work while one is held). Items are read
        # one by one; the list only grows in place (pruning replaces it).
        registry = self._registry
        active = [0, 0]
        for pos in range(len(registry)):
            rec = registry[pos]
            active[0] += rec.open_on(0)
            active[1] += rec.open_on(1)
        state = " cleaned up" if self._dead else ""
        return (f"<SRCU {self.name} idx={self._idx} active={active} "
                f"gp_seq={self._gp.seq} completed={self._gp.completed}{state}>")
