"""The oracles the harness feeds: grace periods, the pipeline, lockdep-style checks.

They decide from events alone (DESIGN.md, invariant 1): the harness tells them when a
read-side section begins and ends, when a grace period begins and ends, what was
retired and what was read; no flavor's internal state is ever consulted.

Why the grace-period check has no false positive and no false negative
------------------------------------------------------------------------
The harness emits ``section_begin`` after ``read_lock()`` returns and ``section_end``
before ``read_unlock()`` is called, ``gp_begin`` before ``synchronize()`` is called and
``gp_end`` after it returns. So an observed section lies inside the real one and an
observed grace period contains the real one. Each begin event takes a stamp from a
counter under ``_lock``, so stamp order is the order in which events reached the oracle.

At ``gp_end(g)`` the oracle reports every section of ``g``'s key that is still open
and whose begin stamp is below ``g``'s. No false positive: such a section really began
before ``synchronize()`` was called (read_lock returned before the section's stamp,
which is below g's, taken before synchronize was called) and really is still open
(read_unlock not yet called), while synchronize has returned: the flavor broke its
guarantee. No false negative for what the oracle can see: a grace period that began
after a section began and ended before it ended is, in observed events, exactly an
open section with a smaller stamp at ``gp_end``.

The obvious simpler check is wrong: "a section during which a grace period of its key
completed is a violation" reports this legal run::

    updater: gp_begin                            (grace period g begins)
    reader:                 section_begin        (after g began: g need not wait)
    updater: gp_end                              (g ends inside the section: legal)
    reader:                 section_end

Such completions are what ``Reader Batch`` counts. Wall-clock stamps would be wrong
too: two threads can read the same clock value, and controlled mode must not see time.

Pipeline (rcutorture's ``Reader Pipe``)
---------------------------------------
``retire(obj, key)`` marks ``obj`` removed from reach: pipe count 1. Each grace period of
``key`` that *began* after the retirement bumps it when it ends (one that began before
does not protect the reader, so it must not count). A read of ``obj`` sees its count;
more than 1 means a full grace period passed after removal while a reader could still
reach it: reported as ``pipeline``. Records are keyed by ``id()`` of the target and keep
it alive, so an id is never reused while its record exists; a re-initialized target (new
generation) reads as not retired.

Locks and ordering
------------------
``Oracles._lock`` (a private ``threading.Lock``) guards ``_clock``, ``_keys`` (every
``_KeyState``: its open sections, counts, retired list, histograms), ``_threads``,
``_retired``, ``_boot_derefs``, ``_held_derefs`` and every ``GracePeriod.ended``. It is
held for bookkeeping only: no schedule point, no wait, no report inside. Each
``_ThreadState.stack`` is changed only by its own thread (under ``_lock``, because
grace-period ends iterate the same sections through ``_KeyState.open``), so its owner
reads it without the lock (``deref``, the might-sleep hook, report context). Reports go
to the collector after ``_lock`` is released: the collector calls back into
:meth:`Oracles.stats` for its context lines. Because no schedule point or wait sits
inside it, a controlled scheduler never parks a thread that holds it, so taking it
never blocks there; free-running, a contended acquire waits for a few dict updates.
The same holds for the allocator's and the collector's locks. Lock order: none of the
three is ever held while another is taken.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from .. import sched
from ..errors import UnbalancedUnlockError, UsageError
from . import _stack
from .collector import Collector
from .kinds import Kind
from .memory import Tracked, generation, ref_to, unwrap
from .stats import PIPE_LEN, KeyStats, OracleStats
from .violation import Violation

__all__ = ["GracePeriod", "Oracles"]

T = TypeVar("T")


class _Section:
    """An open read-side section as the oracle saw it begin."""

    __slots__ = ("begin", "completed_at_begin", "key", "sleepable", "thread", "warned")

    def __init__(self, key: str, thread: str, sleepable: bool, begin: int,
                 completed_at_begin: int) -> None:
        self.key = key
        self.thread = thread
        self.sleepable = sleepable
        self.begin = begin                          # stamp of section_begin
        self.completed_at_begin = completed_at_begin
        self.warned = False     # a blocking call in it was reported (owner writes)

    def describe(self) -> str:
        return f"{self.key} (sleepable)" if self.sleepable else self.key


class _ThreadState:
    """One thread's view: its open sections (outermost first) and boot nesting."""

    __slots__ = ("boot", "name", "stack")

    def __init__(self, name: str) -> None:
        self.name = name
        self.stack: list[_Section] = []
        self.boot = 0


class GracePeriod:
    """A grace period in progress: the token ``gp_begin`` returns and ``gp_end`` takes."""

    __slots__ = ("begin", "ended", "key", "thread")

    def __init__(self, key: str, thread: str, begin: int) -> None:
        self.key = key
        self.thread = thread
        self.begin = begin
        self.ended = False

    def __repr__(self) -> str:
        state = "ended" if self.ended else "running"
        return f"<GracePeriod {self.key} began at event #{self.begin} by {self.thread} {state}>"


class _Retired:
    """A retired object and the full grace periods of its key since."""

    __slots__ = (
        "dropped",
        "full",
        "generation",
        "key",
        "stack",
        "stamp",
        "target",
        "thread",
    )

    def __init__(self, target: Any, key: str, stamp: int, gen: int | None, thread: str,
                 stack: _stack.Stack) -> None:
        self.target = target
        self.key = key
        self.stamp = stamp
        self.generation = gen
        self.thread = thread
        self.stack = stack
        self.full = 0               # grace periods begun after stamp and ended
        self.dropped = False        # pushed out of the bounded record table


class _KeyState:
    """Everything the oracle knows about one flavor or domain."""

    __slots__ = (
        "batch",
        "completed",
        "key",
        "open",
        "pipe",
        "retired",
        "retired_count",
        "sections",
        "sleepable",
    )

    def __init__(self, key: str, sleepable: bool | None) -> None:
        self.key = key
        self.sleepable = sleepable
        self.open: dict[int, _Section] = {}         # begin stamp -> section, oldest first
        self.completed = 0                          # grace periods ended
        self.sections = 0
        self.retired_count = 0
        self.retired: list[_Retired] = []           # records still moving down the pipe
        self.pipe = [0] * (PIPE_LEN + 1)
        self.batch = [0] * (PIPE_LEN + 1)

    def snapshot(self) -> KeyStats:
        return KeyStats(self.key, self.sleepable, self.sections, self.completed,
                        self.retired_count, tuple(self.pipe), tuple(self.batch))


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
        self._clock = 0
        self._keys: dict[str, _KeyState] = {}
        self._threads: dict[str, _ThreadState] = {}
        self._retired: dict[int, _Retired] = {}     # id(target) -> record, oldest first
        self._boot_derefs = 0
        self._held_derefs = 0
        self._tls = threading.local()               # caches this thread's _ThreadState
        self.collector.add_context(self.stats_text)

    # -- threads ------------------------------------------------------------------------

    def _thread(self) -> _ThreadState:
        """The calling thread's state, created on first use (identity: its name)."""
        try:
            return self._tls.state
        except AttributeError:
            pass
        state = _ThreadState(sched.current_name())
        with self._lock:
            old = self._threads.get(state.name)
            leaked = self._close_sections(old) if old is not None else []
            self._threads[state.name] = state
        self._tls.state = state
        if leaked:
            self._report_leak(state.name, leaked, _stack.capture(),
                              "a new thread took its name (the old one ended inside it)")
        return state

    def _close_sections(self, state: _ThreadState) -> list[_Section]:
        """Forget ``state``'s open sections; returns them. Called under ``_lock``."""
        leaked = list(state.stack)
        for sec in leaked:
            del self._keys[sec.key].open[sec.begin]
        state.stack.clear()
        return leaked

    def thread_exit(self) -> None:
        """The calling thread ends: report any section it left open, then forget it."""
        state = self._thread()
        with self._lock:
            leaked = self._close_sections(state)
            if self._threads.get(state.name) is state:
                del self._threads[state.name]
        del self._tls.state
        if leaked:
            self._report_leak(state.name, leaked, _stack.capture(), "it exits")

    def finish(self) -> None:
        """End of run, after the workers were joined: report every section still open."""
        with self._lock:
            leaks = [(st.name, self._close_sections(st)) for st in self._threads.values()
                     if st.stack]
        for name, leaked in leaks:
            self._report_leak(name, leaked, _stack.of_thread(name),
                              "the run ended (it never called thread_exit)")

    def _report_leak(self, name: str, leaked: list[_Section], stack: _stack.Stack,
                     when: str) -> None:
        keys = ", ".join(sec.describe() for sec in leaked)
        self.collector.report(Violation(
            kind=Kind.SECTION_LEAK, subject=f"in {name}: read-side section {keys} left open",
            thread=name, stack=stack,
            what=f"Thread {name} is inside read-side section(s) {keys} when {when}",
            details="\n".join(f"Section of {sec.key} began at event #{sec.begin}."
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

    # -- read-side sections ----------------------------------------------------------------

    def _key(self, key: str, sleepable: bool | None) -> _KeyState:
        """The state of ``key``; called under ``_lock``. Raises on a sleepable mismatch."""
        ks = self._keys.get(key)
        if ks is None:
            ks = self._keys[key] = _KeyState(key, sleepable)
        elif sleepable is not None and ks.sleepable != sleepable:
            if ks.sleepable is not None:
                raise UsageError(f"section_begin({key!r}, sleepable={sleepable}): {key} was "
                                 f"first used with sleepable={ks.sleepable}; one key is one "
                                 "flavor or domain, use a different key")
            ks.sleepable = sleepable
        return ks

    def section_begin(self, key: str, sleepable: bool) -> int:
        """The calling thread entered a read-side section of ``key`` (after read_lock).

        ``sleepable`` is True for SRCU domains. Returns a handle for ``section_end``.
        """
        state = self._thread()
        with self._lock:
            ks = self._keys.get(key)
            if ks is None or ks.sleepable != sleepable:
                ks = self._key(key, sleepable)
            self._clock += 1
            sec = _Section(key, state.name, sleepable, self._clock, ks.completed)
            ks.open[sec.begin] = sec
            ks.sections += 1
            state.stack.append(sec)
        return sec.begin

    def section_end(self, key: str, handle: int | None = None) -> None:
        """The calling thread leaves a section of ``key`` (before read_unlock).

        Without ``handle`` the innermost open section of ``key`` ends; with the handle
        ``section_begin`` returned, that one (SRCU sections need not nest).
        """
        state = self._thread()
        stack = state.stack
        with self._lock:
            for i in range(len(stack) - 1, -1, -1):
                sec = stack[i]
                if sec.key == key and (handle is None or sec.begin == handle):
                    del stack[i]
                    ks = self._keys[key]
                    del ks.open[sec.begin]
                    ks.batch[min(ks.completed - sec.completed_at_begin, PIPE_LEN)] += 1
                    return
        which = f"with handle {handle}" if handle is not None else "at all"
        raise UnbalancedUnlockError(
            f"section_end({key!r}) in thread {state.name}, which has no open section of "
            f"{key} {which}; emit section_end once per section_begin, in the same thread")

    def reader_context(self) -> str:
        """Where the calling thread is, for reports: ``inside read-side section ...``."""
        state = self._thread()
        if state.stack:
            return "inside read-side section(s) " + ", ".join(
                sec.describe() for sec in state.stack)
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
        with self._lock:
            self._key(key, None)
            self._clock += 1
            return GracePeriod(key, state.name, self._clock)

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
            # Sections of this key begun before the grace period and still open.
            victims = [(sec.thread, sec.begin) for sec in ks.open.values()
                       if sec.begin < gp.begin]
            moving = []
            for rec in ks.retired:
                if rec.dropped:
                    continue
                if rec.stamp < gp.begin:
                    rec.full += 1
                if rec.full < PIPE_LEN:
                    moving.append(rec)
            ks.retired = moving
        if victims:
            self._report_gp_too_short(gp, victims)

    def _report_gp_too_short(self, gp: GracePeriod, victims: list[tuple[str, int]]) -> None:
        head = (f"The grace period began at event #{gp.begin} (gp_begin by thread "
                f"{gp.thread}) and has ended, but these read-side sections of {gp.key} "
                "began before it and are still open:")
        paragraphs = [head]
        for thread, begin in victims:
            paragraphs.append(f"Reader {thread}: section began at event #{begin}; "
                              f"its stack now:\n{_stack.format_stack(_stack.of_thread(thread))}")
        names = ", ".join(sorted({thread for thread, _ in victims}))
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
            ks = self._key(key, None)
            self._clock += 1
            rec = _Retired(target, key, self._clock, gen, thread, stack)
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
        target = unwrap(obj)
        with self._lock:
            rec = self._retired.get(id(target))
            if rec is not None and rec.generation is not None and \
                    rec.generation != generation(target):
                rec = None          # re-initialized since it was retired
            pipe = 0 if rec is None else 1 + rec.full
            counted = key if rec is None else rec.key
            ks = self._keys.get(counted) or self._key(counted, None)
            ks.pipe[min(pipe, PIPE_LEN)] += 1
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
            details=f"Retired (event #{rec.stamp}) by thread {rec.thread}; since then "
                    f"{rec.full} grace period(s) of {rec.key} began and ended, so no reader "
                    f"should still reach it:\n{_stack.format_stack(rec.stack)}"))

    # -- lockdep-style checks ------------------------------------------------------------------

    def deref(self, obj: T, keys: str | Sequence[str], *, held: bool = False) -> T:
        """``rcu_dereference(obj)``: check the caller may, count the read, return it.

        ``keys``: the flavors/domains whose sections protect ``obj`` (any one will do).
        Outside all of them it is "suspicious RCU usage" unless ``held`` (the caller
        holds the update-side lock, like ``rcu_dereference_protected``) or the thread
        is in :meth:`boot`. A tracked object comes back as a generation-checked
        reference (see ``memory``); anything else as is.
        """
        if isinstance(keys, str):
            keys = (keys,)
        state = self._thread()
        key = None
        for sec in state.stack:                 # outermost first; any protecting one will do
            if sec.key in keys:
                key = sec.key
                break
        if key is None:
            self._deref_outside(state, obj, keys, held)
        if obj is None:
            return obj
        self.on_read(obj, key if key is not None else keys[0])
        return ref_to(obj) if isinstance(obj, Tracked) else obj

    def _deref_outside(self, state: _ThreadState, obj: Any, keys: Sequence[str],
                       held: bool) -> None:
        if held or state.boot:
            with self._lock:
                if held:
                    self._held_derefs += 1
                else:
                    self._boot_derefs += 1
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

    def _check_may_block(self, state: _ThreadState, what: str, gp_key: str | None) -> None:
        if not state.stack:
            return
        if state.stack[-1].warned:
            return      # once per innermost section: synchronize's own wait would repeat it
        if gp_key is not None and any(sec.key == gp_key for sec in state.stack):
            state.stack[-1].warned = True
            self.collector.report(Violation.capture(
                Kind.DEADLOCK, f"in {state.name}: {what} inside its own read-side section",
                state.name, what=f"{what} by thread {state.name}, {self.reader_context()}",
                details=f"A grace period of {gp_key} waits for this very section to end: "
                        "a self-deadlock (lockdep: \"Illegal synchronize in read-side "
                        "critical section\")."))
            return
        atomic = [sec.describe() for sec in state.stack if not sec.sleepable]
        if atomic:
            state.stack[-1].warned = True
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
        """A snapshot of the counts and histograms, keys sorted."""
        with self._lock:
            keys = tuple(self._keys[k].snapshot() for k in sorted(self._keys))
            return OracleStats(keys, self._boot_derefs, self._held_derefs)

    def stats_text(self) -> str:
        """The statistics as report lines (the collector adds them to every report)."""
        return self.stats().format()

    def __repr__(self) -> str:
        with self._lock:
            n = sum(len(st.stack) for st in self._threads.values())
            return f"<Oracles {len(self._keys)} key(s), {n} open section(s), event #{self._clock}>"
