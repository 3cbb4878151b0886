"""The oracles the harness feeds: grace periods, the pipeline, lockdep-style checks.

They decide from events alone (docs/design.md, invariant 1): the harness tells them when a
read-side section begins and ends, when a grace period begins and ends, what was
retired and what was read; no flavor's internal state is ever consulted.

Readers take no lock
--------------------
Every reader event (``section_begin``, ``section_end``, ``deref``, ``on_read``) touches
only the calling thread's own state (``_threads``: its chain of open sections and its
counters, found through a ``threading.local``, or handed in by a caller that bound it
once for its thread: ``thread_state``, ``begin``, ``end``) and *loads* shared state that updaters
write (the key's completed grace periods, the retired-object table). No reader ever
writes a location another reader writes, so readers run in parallel on free-threaded
CPython, as rcutorture's readers do with per-CPU counters. Updater events
(``gp_begin``, ``gp_end``, ``retire``) take ``_lock``; the statistics are summed over
the threads when asked for (and folded when a thread leaves).

Why the grace-period check has no false positive and no false negative
------------------------------------------------------------------------
The harness emits ``section_begin`` after ``read_lock()`` returns and ``section_end``
before ``read_unlock()`` is called, ``gp_begin`` before ``synchronize()`` is called and
``gp_end`` after it returns. So an observed section lies inside the real one and an
observed grace period contains the real one.

``section_begin`` builds the section record completely, then publishes it with one
store to its thread's ``top`` (P). ``section_end`` sets the record's ``ended`` with one
store (E), before the flavor's unlock. ``gp_begin`` scans every registered thread:
one load of ``top`` (S) per thread, keeping the records of its key not yet ended; that
list is the grace period's snapshot. ``gp_end`` reports every record of the snapshot
whose ``ended`` is still False.

* Cannot miss a section a grace period ends under. Take a section that was open when
  ``gp_begin`` was called and is still open when ``gp_end`` runs. Its P came before
  ``gp_begin`` was called, hence before the scan's S of its thread; P and S are a
  store and a load of one attribute, which are atomic, so S returns this record or a
  newer one whose ``outer`` chain (written before *that* record's P, never changed)
  leads to it. Its thread registered before its first P, so the scan, which loads
  the registry after ``gp_begin`` was called, finds the thread. So the record is in the
  snapshot, its E has not happened, and it is reported.
* No false positive. A record in the snapshot was published before the scan, so its
  ``read_lock`` returned before ``synchronize()`` was called. If ``gp_end`` loads
  ``ended`` as False, E had not happened when ``synchronize()`` returned, so the
  flavor's ``read_unlock`` had not been called: the flavor let a grace period end
  under a reader that began before it. (This relies on E reaching ``gp_end`` in the
  same order the flavor's own unlock reaches its ``synchronize``: E is stored before
  the unlock in the reader's program order and ``ended`` is loaded after the wait in
  the updater's, the message passing any correct flavor already relies on; under the
  GIL, trivially.)
* A section published after the scan began after ``gp_begin`` was called: the grace
  period need not wait for it, whatever its outcome, exactly as the definition says.

What it relies on in CPython, GIL or free-threaded: one load or store of one attribute
is atomic (never torn), a thread's two stores are seen in program order, and the
registry is a tuple replaced whole under a lock, never mutated while iterated (a dict
or list changed by one thread while another iterates it is not safe: a dict raises, a
list can skip an item). See ``_threads`` for the per-thread side.

The obvious simpler check is wrong: "a section during which a grace period of its key
completed is a violation" reports this legal run::

    updater: gp_begin                            (grace period g begins)
    reader:                 section_begin        (after g began: g need not wait)
    updater: gp_end                              (g ends inside the section: legal)
    reader:                 section_end

Such completions are what ``Reader Batch`` counts. Wall-clock stamps would be wrong
too: two threads can read the same clock value, and controlled mode must not see time.
And one global event counter, the previous design, made every reader write one shared
word under one lock: correct, but the readers then run one at a time.

Pipeline (rcutorture's ``Reader Pipe``)
---------------------------------------
``retire(obj, key)`` marks ``obj`` removed from reach: pipe count 1. Each grace period of
``key`` that *began* after the retirement bumps it when it ends (one that began before
does not protect the reader, so it must not count). Grace periods of a key are numbered
as they begin, under ``_lock``, and a retirement records the number begun so far under
the same lock, which orders the two. A read of ``obj`` sees its count; more than 1
means a full grace period passed after removal while a reader could still reach it:
reported as ``pipeline``. Records are keyed by ``id()`` of the target and keep it
alive, so an id is never reused while its record exists; a re-initialized target (new
generation) reads as not retired. Readers only look records up (a test and a load,
each safe against a concurrent insert on both builds; a record evicted between the two
reads as not retired, as it would a moment later) and load their counts.

Locks and ordering
------------------
``Oracles._lock`` (a private ``threading.Lock``) guards ``_keys`` (inserts only;
readers test and load), every ``KeyState`` counter, ``_retired`` and every
``GracePeriod.ended``. It is held for bookkeeping only: no schedule point, no wait, no
report inside, and no reader takes it after its first section of a key. The registry's
lock is a leaf. The allocator's and the collector's locks are never held while another
is taken. Reports go to the collector after ``_lock`` is released: the collector calls
back into :meth:`Oracles.stats` for its context lines.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from .. import sched
from ..errors import UnbalancedUnlockError, UsageError
from . import _stack
from ._threads import (COMPLETED_AT_BEGIN, COUNTS, ENDED, KEY, OUTER, SERIAL, Counts,
                       Section, ThreadRegistry, ThreadState)
from .collector import Collector
from .kinds import Kind
from .memory import Tracked, generation, new_ref, unwrap
from .memory import _Ref as Ref
from .stats import PIPE_LEN, KeyStats, OracleStats
from .violation import Violation

__all__ = ["GracePeriod", "Oracles"]

T = TypeVar("T")


class GracePeriod:
    """A grace period in progress: the token ``gp_begin`` returns and ``gp_end`` takes.

    ``begin`` numbers it among the grace periods of its key (1, 2, ...); ``snapshot``
    holds the sections of its key that were open when it began.
    """

    __slots__ = ("begin", "ended", "key", "snapshot", "thread")

    def __init__(self, key: str, thread: str, begin: int,
                 snapshot: list[tuple[ThreadState, Section]]) -> None:
        self.key = key
        self.thread = thread
        self.begin = begin
        self.snapshot = snapshot
        self.ended = False

    def __repr__(self) -> str:
        state = "ended" if self.ended else "running"
        return f"<GracePeriod #{self.begin} of {self.key} by {self.thread} {state}>"


class _Retired:
    """A retired object and the full grace periods of its key since."""

    __slots__ = (
        "begun",
        "dropped",
        "full",
        "generation",
        "key",
        "stack",
        "target",
        "thread",
    )

    def __init__(self, target: Any, key: str, begun: int, gen: int | None, thread: str,
                 stack: _stack.Stack) -> None:
        self.target = target
        self.key = key
        self.begun = begun          # grace periods of key begun before the retirement
        self.generation = gen
        self.thread = thread
        self.stack = stack
        self.full = 0               # grace periods begun after the retirement and ended
        self.dropped = False        # pushed out of the bounded record table


class KeyState:
    """What the oracle knows about one flavor or domain beyond the threads' counts."""

    __slots__ = ("begun", "completed", "key", "retired", "retired_count", "sleepable")

    def __init__(self, key: str, sleepable: bool | None) -> None:
        self.key = key
        self.sleepable = sleepable
        self.begun = 0                              # grace periods begun
        self.completed = 0                          # grace periods ended
        self.retired_count = 0
        self.retired: list[_Retired] = []           # records still moving down the pipe


class Oracles:
    """The facade the harness feeds with events; reports go to ``collector``.

    ``retired_limit`` bounds the table of retired objects the pipeline follows (the
    oldest record is dropped first; its object then reads as "not retired").
    """

    def __init__(self, collector: Collector | None = None, *,
                 retired_limit: int = 4096) -> None:
        self.collector = collector if collector is not None else Collector()
        self.retired_limit = retired_limit
        self._lock = threading.Lock()
        self._keys: dict[str, KeyState] = {}
        self._retired: dict[int, _Retired] = {}     # id(target) -> record, oldest first
        self._registry = ThreadRegistry()
        self._tls = threading.local()               # this thread's ThreadState
        self.collector.add_context(self.stats_text)

    # -- threads ------------------------------------------------------------------------

    def _thread(self) -> ThreadState:
        """The calling thread's state, registered on first use (identity: the thread)."""
        try:
            state: ThreadState = self._tls.state
            return state
        except AttributeError:
            pass
        state = ThreadState(threading.current_thread(), sched.current_name())
        self._registry.add(state)
        self._tls.state = state
        return state

    def thread_state(self) -> ThreadState:
        """The calling thread's state, for the fast read-side calls (:meth:`begin`,
        :meth:`end`) of a caller that binds it once per thread (a task, at its start).
        Only the calling thread may pass it; it is valid until its ``thread_exit``."""
        return self._thread()

    def thread_exit(self) -> None:
        """The calling thread ends: report any section it left open, then forget it."""
        state = self._thread()
        state.warned = None
        leaked = state.close_all()
        self._registry.remove(state)
        del self._tls.state
        if leaked:
            self._report_leak(state.name, leaked, _stack.capture(), "it exits")

    def finish(self) -> None:
        """End of run, after the workers were joined: report every section still open."""
        for state in self._registry.states:
            leaked = state.close_all()
            if leaked:
                self._report_leak(state.name, leaked, _stack.of(state.thread),
                                  "the run ended (it never called thread_exit)")

    def _report_leak(self, name: str, leaked: list[Section], stack: _stack.Stack,
                     when: str) -> None:
        keys = ", ".join(sec.describe() for sec in leaked)
        self.collector.report(Violation(
            kind=Kind.SECTION_LEAK, subject=f"in {name}: read-side section {keys} left open",
            thread=name, stack=stack,
            what=f"Thread {name} is inside read-side section(s) {keys} when {when}",
            details="\n".join(f"Its section #{sec.serial} of {sec.key} is still open."
                              for sec in leaked)))

    @contextlib.contextmanager
    def boot(self) -> Iterator[None]:
        """Mark the calling thread as boot code for the block (nestable).

        The RFC adds no read lock to boot code, "because pgdat hot-removing will not
        work at boot time"; inside this block ``deref`` outside a section is allowed
        and counted (``derefs exempted`` in the statistics) instead of reported.
        """
        state = self._thread()
        state.boot += 1
        try:
            yield
        finally:
            state.boot -= 1

    # -- keys --------------------------------------------------------------------------------

    def _key(self, key: str, sleepable: bool | None) -> KeyState:
        """The state of ``key``, created on first use. Raises on a sleepable mismatch."""
        with self._lock:
            return self._key_locked(key, sleepable)

    def _key_locked(self, key: str, sleepable: bool | None) -> KeyState:
        ks = self._keys[key] if key in self._keys else None  # not dict.get: design.md, sec. 6
        if ks is None:
            ks = self._keys[key] = KeyState(key, sleepable)
        elif sleepable is not None and ks.sleepable != sleepable:
            if ks.sleepable is not None:
                raise UsageError(f"section_begin({key!r}, sleepable={sleepable}): {key} was "
                                 f"first used with sleepable={ks.sleepable}; one key is one "
                                 "flavor or domain, use a different key")
            ks.sleepable = sleepable
        return ks

    # -- read-side sections ----------------------------------------------------------------

    def section_begin(self, key: str, sleepable: bool) -> int:
        """The calling thread entered a read-side section of ``key`` (after read_lock).

        ``sleepable`` is True for SRCU domains. Returns a handle for ``section_end``.
        """
        try:
            state: ThreadState = self._tls.state
        except AttributeError:
            state = self._thread()
        return self.begin(state, key, sleepable)

    def begin(self, state: ThreadState, key: str, sleepable: bool) -> int:
        """:meth:`section_begin` in the thread that owns ``state`` (:meth:`thread_state`):
        the same check and record without the per-thread lookup."""
        counts = state.counts.get(key)
        if counts is None or counts.sleepable != sleepable:
            counts = self._counts(state, key, sleepable)
        serial = counts.sections = counts.sections + 1
        # (P) one store publishes the complete record: see the opening comment.
        state.top = Section((key, counts, serial, counts.keystate.completed, state.top,
                             False))
        return serial

    def section_end(self, key: str, handle: int | None = None) -> None:
        """The calling thread leaves a section of ``key`` (before read_unlock).

        Without ``handle`` the innermost open section of ``key`` ends; with the handle
        ``section_begin`` returned, that one (SRCU sections need not nest).
        """
        try:
            state: ThreadState = self._tls.state
        except AttributeError:
            state = self._thread()
        self.end(state, key, handle)

    def end(self, state: ThreadState, key: str, handle: int | None = None) -> None:
        """:meth:`section_end` in the thread that owns ``state`` (:meth:`thread_state`)."""
        sec = state.top
        while sec is not None:
            if sec[KEY] == key and not sec[ENDED] and (handle is None or sec[SERIAL] == handle):
                break
            sec = sec[OUTER]
        else:
            which = f"with handle {handle}" if handle is not None else "at all"
            raise UnbalancedUnlockError(
                f"section_end({key!r}) in thread {state.name}, which has no open section of "
                f"{key} {which}; emit section_end once per section_begin, in the same thread")
        counts = sec[COUNTS]
        batch = counts.keystate.completed - sec[COMPLETED_AT_BEGIN]
        counts.batch[batch if batch < PIPE_LEN else PIPE_LEN] += 1
        sec[ENDED] = True                               # (E)
        if sec is state.top:                            # pop what has ended off the head
            top = sec[OUTER]
            while top is not None and top[ENDED]:
                top = top[OUTER]
            state.top = top

    def _counts(self, state: ThreadState, key: str, sleepable: bool | None) -> Counts:
        """The calling thread's counts of ``key``, the key created or its kind checked
        (a section's first begin, or a read, per thread and key)."""
        ks = self._key(key, sleepable)
        counts = state.counts.get(key)
        if counts is None:
            counts = Counts(key, ks, ks.sleepable)
            state.add_counts(counts)
        counts.sleepable = ks.sleepable
        return counts

    def reader_context(self) -> str:
        """Where the calling thread is, for reports: ``inside read-side section ...``."""
        state = self._thread()
        sections = state.open_sections()
        if sections:
            return "inside read-side section(s) " + ", ".join(
                sec.describe() for sec in sections)
        if state.boot:
            return "in boot code, outside any read-side section"
        return "outside any read-side section"

    # -- grace periods ----------------------------------------------------------------------

    def gp_begin(self, key: str, *, blocking: bool = True) -> GracePeriod:
        """A grace period of ``key`` begins (just before ``synchronize()`` is called).

        ``blocking``: the caller is about to wait for it, which is checked like a sleep
        (and for a wait inside a section of ``key`` itself: a self-deadlock). Pass
        False for a grace period nobody waits for here: ``call_rcu``'s callback, a
        polled cookie (legal inside a read-side section).
        """
        state = self._thread()
        if blocking:
            self._check_may_block(state, f"grace-period wait of {key}", key)
        snapshot = []
        for st in self._registry.states:                # (S) one load of top per thread
            sec = st.top
            while sec is not None:
                if sec[KEY] == key and not sec[ENDED]:
                    snapshot.append((st, sec))
                sec = sec[OUTER]
        with self._lock:
            ks = self._key_locked(key, None)
            ks.begun += 1
            return GracePeriod(key, state.name, ks.begun, snapshot)

    def completed(self, key: str) -> int:
        """Grace periods of ``key`` ended so far (``gp_end`` calls; 0 before the first).

        One load and no lock, so a reader may poll it inside its section: how many
        grace periods a section has seen end is what ``Reader Batch`` counts.
        """
        ks = self._keys[key] if key in self._keys else None  # not dict.get: design.md, sec. 6
        return 0 if ks is None else ks.completed

    def gp_counts(self) -> dict[str, tuple[int, int]]:
        """Per key, the grace periods begun and ended so far (``gp_begin``/``gp_end``
        calls): begun above ended means some are pending (a watchdog's view)."""
        with self._lock:
            return {key: (ks.begun, ks.completed) for key, ks in self._keys.items()}

    def gp_end(self, gp: GracePeriod) -> None:
        """The grace period ``gp`` has ended (synchronize returned): check it."""
        if not isinstance(gp, GracePeriod):
            raise UsageError(f"gp_end() takes the token gp_begin() returned, got {gp!r}")
        with self._lock:
            if gp.ended:
                raise UsageError(f"gp_end() twice for {gp!r}; call it once per gp_begin()")
            gp.ended = True
            ks = self._keys[gp.key]
            ks.completed += 1
            moving = []
            for rec in ks.retired:
                if rec.dropped:
                    continue
                if rec.begun < gp.begin:
                    rec.full += 1
                if rec.full < PIPE_LEN:
                    moving.append(rec)
            ks.retired = moving
        # Sections open when the grace period began and still open now.
        victims = [(st, sec) for st, sec in gp.snapshot if not sec[ENDED]]
        gp.snapshot = []
        if victims:
            self._report_gp_too_short(gp, victims)

    def _report_gp_too_short(self, gp: GracePeriod,
                             victims: list[tuple[ThreadState, Section]]) -> None:
        head = (f"Grace period #{gp.begin} of {gp.key} (gp_begin by thread {gp.thread}) "
                f"has ended, but these read-side sections of {gp.key} were open when it "
                "began and are still open:")
        paragraphs = [head]
        for st, sec in victims:
            paragraphs.append(f"Reader {st.name}: its section #{sec.serial}; its stack "
                              f"now:\n{_stack.format_stack(_stack.of(st.thread))}")
        names = ", ".join(sorted({st.name for st, _ in victims}))
        me = sched.current_name()
        self.collector.report(Violation.capture(
            Kind.GP_TOO_SHORT, f"in {gp.key}: grace period ended while {names} still read",
            me, what=f"Grace period of {gp.key} ended (gp_end) by thread {me}, "
                     f"{self.reader_context()}",
            details="\n\n".join(paragraphs)))

    # -- the pipeline ------------------------------------------------------------------------

    def retire(self, obj: Any, key: str) -> None:
        """``obj`` was removed from readers' reach; grace periods of ``key`` now count."""
        target = unwrap(obj)
        gen = generation(target) if isinstance(target, Tracked) else None
        thread, stack = sched.current_name(), _stack.capture()
        with self._lock:
            ks = self._key_locked(key, None)
            rec = _Retired(target, key, ks.begun, gen, thread, stack)
            old = self._retired.pop(id(target), None)
            if old is not None:
                old.dropped = True
            self._retired[id(target)] = rec
            ks.retired.append(rec)
            ks.retired_count += 1
            while len(self._retired) > self.retired_limit:
                self._retired.pop(next(iter(self._retired))).dropped = True
            if len(ks.retired) > self.retired_limit:
                ks.retired = [r for r in ks.retired if not r.dropped]

    def on_read(self, obj: Any, key: str) -> int:
        """A reader under ``key`` read ``obj``: count it in Reader Pipe; returns its pipe.

        :meth:`deref` calls this; call it directly for reads that need no deref check.
        """
        return self._count_read(self._thread(), obj, key, None)

    def _count_read(self, state: ThreadState, obj: Any, key: str,
                    counts: Counts | None) -> int:
        """Count a read of ``obj`` under ``key`` (``counts``: the thread's, if known)."""
        target = obj._obj if isinstance(obj, Ref) else obj
        ident = id(target)
        try:                # not dict.get: docs/design.md, section 6
            rec = self._retired[ident] if ident in self._retired else None
        except KeyError:    # evicted between the test and the load: not retired now
            rec = None
        pipe = 0
        if rec is not None:
            if rec.generation is not None and rec.generation != generation(target):
                rec = None          # re-initialized since it was retired
            else:
                pipe = 1 + rec.full
                if rec.key != key:
                    key, counts = rec.key, None
        if counts is None:
            counts = state.counts.get(key) or self._counts(state, key, None)
        counts.pipe[pipe if pipe < PIPE_LEN else PIPE_LEN] += 1
        if pipe > 1 and rec is not None:
            self._report_pipeline(target, rec, pipe)
        return pipe

    def _report_pipeline(self, target: Any, rec: _Retired, pipe: int) -> None:
        name = target._meta.label if isinstance(target, Tracked) else type(target).__name__
        me = sched.current_name()
        self.collector.report(Violation.capture(
            Kind.PIPELINE,
            f"in {rec.key}: {name} read {pipe - 1} grace period(s) after it was retired",
            me, what=f"Read of {name} by thread {me}, {self.reader_context()}",
            details=f"Retired by thread {rec.thread} after grace period #{rec.begun} of "
                    f"{rec.key} had begun; since then {rec.full} grace period(s) of "
                    f"{rec.key} began and ended, so no reader should still reach it:\n"
                    f"{_stack.format_stack(rec.stack)}"))

    # -- lockdep-style checks ------------------------------------------------------------------

    def deref(self, obj: T, keys: str | Sequence[str], *, held: bool = False) -> T:
        """``rcu_dereference(obj)``: check the caller may, count the read, return it.

        ``keys``: the flavors/domains whose sections protect ``obj`` (any one will do).
        Outside all of them it is "suspicious RCU usage" unless ``held`` (the caller
        holds the update-side lock, like ``rcu_dereference_protected``) or the thread
        is in :meth:`boot`. A tracked object comes back as a generation-checked
        reference (see ``memory``); anything else as is.
        """
        if type(keys) is not tuple and isinstance(keys, str):
            keys = (keys,)
        try:
            state: ThreadState = self._tls.state
        except AttributeError:
            state = self._thread()
        found = None
        sec = state.top
        while sec is not None:          # the outermost protecting section counts the read
            if sec[KEY] in keys and not sec[ENDED]:
                found = sec
            sec = sec[OUTER]
        if found is None:
            self._deref_outside(state, obj, keys, held)
        if obj is None:
            return obj
        target = obj._obj if isinstance(obj, Ref) else obj
        if found is None:
            self._count_read(state, obj, keys[0], None)
        elif id(target) in self._retired:   # retired (or just evicted): the pipeline
            self._count_read(state, obj, found[KEY], found[COUNTS])
        else:
            found[COUNTS].pipe[0] += 1      # _count_read's case of an object not retired
        if target is obj and isinstance(obj, Tracked):
            return new_ref(obj)             # ref_to(obj): a reference is returned as is
        return obj

    def _deref_outside(self, state: ThreadState, obj: Any, keys: Sequence[str],
                       held: bool) -> None:
        if held:
            state.held_derefs += 1
            return
        if state.boot:
            state.boot_derefs += 1
            return
        name = (obj._meta.label if isinstance(obj, Tracked) and hasattr(obj, "_meta")
                else type(obj).__name__)
        needs = " or ".join(keys)
        self.collector.report(Violation.capture(
            Kind.RCU_DEREF_OUTSIDE_READER,
            f"(suspicious RCU usage): {name} dereferenced outside {needs}", state.name,
            what=f"rcu_dereference of {name} by thread {state.name}, "
                 f"{self.reader_context()}",
            details=f"It is protected by a read-side section of {needs}. Take one, pass "
                    "held=True under the update-side lock, or mark boot code with "
                    "Oracles.boot()."))

    def might_sleep(self, what: str) -> None:
        """The might-sleep hook: ``what`` may block; report it inside an atomic section.

        Reported once per innermost section (a ``gp_begin`` and the wait inside the
        ``synchronize`` that follows it are one offence).
        """
        self._check_may_block(self._thread(), what, None)

    def _check_may_block(self, state: ThreadState, what: str, gp_key: str | None) -> None:
        if state.top is None:
            return
        sections = state.open_sections()
        if not sections or state.warned is sections[-1]:
            return      # once per innermost section: synchronize's own wait would repeat it
        if gp_key is not None and any(sec.key == gp_key for sec in sections):
            state.warned = sections[-1]
            self.collector.report(Violation.capture(
                Kind.DEADLOCK, f"in {state.name}: {what} inside its own read-side section",
                state.name, what=f"{what} by thread {state.name}, {self.reader_context()}",
                details=f"A grace period of {gp_key} waits for this very section to end: "
                        "a self-deadlock (lockdep: \"Illegal synchronize in read-side "
                        "critical section\")."))
            return
        atomic = [sec.describe() for sec in sections if not sec.counts.sleepable]
        if atomic:
            state.warned = sections[-1]
            self.collector.report(Violation.capture(
                Kind.SLEEP_IN_ATOMIC, f"in {state.name}: {what} inside {', '.join(atomic)}",
                state.name, what=f"{what} by thread {state.name}, {self.reader_context()}",
                details="A blocking call inside a non-sleepable RCU read-side section "
                        "(\"sleeping function called from invalid context\"); only SRCU "
                        "sections may block."))

    @contextlib.contextmanager
    def might_sleep_checks(self) -> Iterator[Oracles]:
        """Install :meth:`might_sleep` as the scheduler's hook for the block (chained to
        the previous hook, which is restored on exit). Install while no model thread
        runs (see ``rcu_pgdat.sched``)."""
        previous: Callable[[str], None]

        def hook(what: str) -> None:
            previous(what)
            self.might_sleep(what)

        previous = sched.set_might_sleep_hook(hook)
        try:
            yield self
        finally:
            sched.set_might_sleep_hook(previous)

    # -- statistics --------------------------------------------------------------------------

    def stats(self) -> OracleStats:
        """A snapshot of the counts and histograms, keys sorted (summed over threads)."""
        counts, boot, held = self._registry.totals()
        with self._lock:
            keys = [self._keys[k] for k in sorted(self._keys)]
            snapshot = []
            for ks in keys:
                c = counts.get(ks.key)
                sections, pipe, batch = ((c.sections, tuple(c.pipe), tuple(c.batch))
                                         if c is not None else
                                         (0, (0,) * (PIPE_LEN + 1), (0,) * (PIPE_LEN + 1)))
                snapshot.append(KeyStats(ks.key, ks.sleepable, sections, ks.completed,
                                         ks.retired_count, pipe, batch))
        return OracleStats(tuple(snapshot), boot, held)

    def stats_text(self) -> str:
        """The statistics as report lines (the collector adds them to every report)."""
        return self.stats().format()

    def __repr__(self) -> str:
        states = self._registry.states
        n = sum(len(st.open_sections()) for st in states)
        with self._lock:
            begun = sum(ks.begun for ks in self._keys.values())
            return (f"<Oracles {len(self._keys)} key(s), {len(states)} thread(s), "
                    f"{n} open section(s), {begun} grace period(s) begun>")
