"""Per-thread oracle state: each reader writes only its own record, as rcutorture's
readers write only per-CPU counters.

Why it is correct
-----------------
A :class:`ThreadState` belongs to one thread (its identity is the thread *object*,
never its name: two threads may carry one name, one after the other or at once). Every
field of it, and of the sections and counters it holds, is written by that thread only;
other threads only load them (a grace period's scan, the statistics, end-of-run checks
once the owner has been joined). So the read side takes no lock, and nothing here
relies on the GIL beyond this: one load or one store of one attribute or one list item
is atomic (the loader sees the old or the new reference, never a mix), which holds on
GIL builds (one bytecode at a time) and on free-threaded CPython (per-object atomic
field and item access, PEP 703), and a thread's two stores are seen by another thread
in program order.

Open sections form a chain, innermost first, through ``Section.outer``. ``outer`` is
set before a section is published and never changes, and the owner publishes and pops
by one store to ``ThreadState.top`` (the oracles' ``section_begin`` and
``section_end``). A scanner loads ``top`` once and walks a chain that nobody changes
under it: it sees every section published before its load and none published after.
A section ended out of order (SRCU's handles) is only marked ``ended``; it leaves the
chain when the sections above it have ended too.

The obvious alternative, a list per thread that the owner appends to and deletes from
while a grace period iterates it, is unsafe without a lock: iteration can skip an item
that a concurrent delete moved (the GIL does not make a loop atomic), and on
free-threaded CPython the list's own lock would be taken by every reader's begin and
end and by every scan.

The registry (:class:`ThreadRegistry`) is a tuple replaced whole under its lock when a
thread registers or leaves (rare), so a scanner iterates a tuple nobody mutates. A
thread registers before its first section, so a scan that begins after a section was
published finds its thread. Counters of a thread that leaves are folded into the
registry's totals under the same lock, so statistics never lose a count.

The lock is a leaf (nothing is called with it held) and is never taken on the read
side once a thread has registered.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .stats import PIPE_LEN

if TYPE_CHECKING:
    from .oracles import KeyState

__all__ = ["COMPLETED_AT_BEGIN", "COUNTS", "ENDED", "KEY", "OUTER", "SERIAL", "Counts", "Section",
           "Tally", "ThreadRegistry", "ThreadState"]


class Tally:
    """Counts of one key summed over threads: sections, Reader Pipe, Reader Batch."""

    __slots__ = ("batch", "pipe", "sections")

    def __init__(self) -> None:
        self.sections = 0
        self.pipe = [0] * (PIPE_LEN + 1)    # Reader Pipe histogram (see ``stats``)
        self.batch = [0] * (PIPE_LEN + 1)   # Reader Batch histogram

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to these (a snapshot of each list item)."""
        self.sections += other.sections
        for i in range(PIPE_LEN + 1):
            self.pipe[i] += other.pipe[i]
            self.batch[i] += other.batch[i]


class Counts(Tally):
    """One thread's view of one key (flavor or domain): its counts and the key's state.

    The counters are written by the owning thread only. ``sleepable`` is the key's
    kind as this thread last saw it (``None``: not yet known), so a section's begin
    checks it without going to the shared key state.
    """

    __slots__ = ("key", "keystate", "sleepable")

    def __init__(self, key: str, keystate: KeyState, sleepable: bool | None) -> None:
        super().__init__()
        self.key = key
        self.keystate = keystate
        self.sleepable = sleepable


#: A :class:`Section`'s items, by index (the readers' paths index it directly).
KEY, COUNTS, SERIAL, COMPLETED_AT_BEGIN, OUTER, ENDED = range(6)


class Section(list):
    """An open read-side section as the oracle saw it begin.

    ``Section((key, counts, serial, completed_at_begin, outer, False))``. ``serial``
    numbers the sections of its thread and key (the handle ``section_begin`` returns,
    and what reports call it). ``ended`` (item ``ENDED``) goes from False to True once,
    by the owner, before the flavor's unlock is called. ``outer`` is the next section
    down the chain and never changes.

    A list, built whole from one tuple before it is published: on the free-threaded
    build that is one allocation and no Python call (a slotted class's ``__init__``
    cost every section a call and six attribute stores), and an item is loaded and
    stored atomically as an attribute is. The readers' paths index it (``KEY`` ...);
    the properties serve the reports.
    """

    __slots__ = ()

    @property
    def key(self) -> str:
        return self[KEY]

    @property
    def counts(self) -> Counts:
        return self[COUNTS]

    @property
    def serial(self) -> int:
        return self[SERIAL]

    @property
    def outer(self) -> Section | None:
        return self[OUTER]

    @property
    def ended(self) -> bool:
        return self[ENDED]

    # A record is its own identity (a list would compare and hash by its items).
    __hash__ = object.__hash__  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def describe(self) -> str:
        return f"{self[KEY]} (sleepable)" if self[COUNTS].sleepable else self[KEY]

    def __repr__(self) -> str:
        return f"<Section #{self[SERIAL]} of {self[KEY]}{' ended' if self[ENDED] else ''}>"


class ThreadState:
    """One thread's oracle state: its open sections, counters and boot nesting.

    ``top`` is the chain's head; the oracles publish a section by storing it there and
    pop ended ones off it (the owner only). ``warned`` is the section in which a
    blocking call was last reported (reported once per innermost section).
    """

    __slots__ = ("boot", "boot_derefs", "counts", "held_derefs", "name", "thread", "top",
                 "warned")

    def __init__(self, thread: threading.Thread, name: str) -> None:
        self.thread = thread
        self.name = name
        self.top: Section | None = None     # innermost open section (the chain's head)
        self.warned: Section | None = None
        self.boot = 0
        self.boot_derefs = 0
        self.held_derefs = 0
        #: key -> this thread's counts. Replaced whole when a key is added (never
        #: mutated in place), so a reader of the statistics may iterate what it loaded.
        self.counts: dict[str, Counts] = {}

    def add_counts(self, counts: Counts) -> None:
        """Start counting ``counts.key`` (owner only)."""
        self.counts = {**self.counts, counts.key: counts}

    def chain(self) -> Iterator[Section]:
        """Sections still open, innermost first (one load of ``top``; any thread)."""
        sec = self.top
        while sec is not None:
            if not sec[ENDED]:
                yield sec
            sec = sec[OUTER]

    def open_sections(self) -> list[Section]:
        """Sections still open, outermost first."""
        sections = list(self.chain())
        sections.reverse()
        return sections

    def close_all(self) -> list[Section]:
        """End every open section; returns them, outermost first. The owner calls it,
        or anyone once the owner has stopped for good."""
        leaked = self.open_sections()
        for sec in leaked:
            sec[ENDED] = True
        self.top = None
        return leaked


class ThreadRegistry:
    """Every registered :class:`ThreadState`, and the counts of those that left."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Registered states in registration order; replaced whole under ``_lock``.
        self.states: tuple[ThreadState, ...] = ()
        self._left: dict[str, Tally] = {}       # key -> counts of departed threads
        self._left_boot = 0
        self._left_held = 0

    def add(self, state: ThreadState) -> None:
        """Register ``state``; prunes departed threads that left nothing open.

        A thread that ended *inside* a section stays registered, so that the end of
        the run reports its section (it can never end).
        """
        with self._lock:
            kept = []
            for st in self.states:
                if st.top is None and not st.thread.is_alive():
                    self._fold(st)
                else:
                    kept.append(st)
            kept.append(state)
            self.states = tuple(kept)

    def remove(self, state: ThreadState) -> None:
        """Forget ``state`` (its thread is leaving), keeping its counts."""
        with self._lock:
            if state in self.states:
                self.states = tuple(st for st in self.states if st is not state)
                self._fold(state)

    def _fold(self, state: ThreadState) -> None:
        """Add a departing state's counts to the totals; called under ``_lock``."""
        for key, counts in state.counts.items():
            self._left.setdefault(key, Tally()).add(counts)
        self._left_boot += state.boot_derefs
        self._left_held += state.held_derefs

    def totals(self) -> tuple[dict[str, Tally], int, int]:
        """Counts per key over every thread ever registered; boot and held derefs.

        Exact once the threads have stopped; while they run, each figure is a value
        its owner really stored a moment ago (counters only grow).
        """
        with self._lock:
            states = self.states
            total: dict[str, Tally] = {}
            for key, counts in self._left.items():
                total.setdefault(key, Tally()).add(counts)
            boot, held = self._left_boot, self._left_held
        for st in states:
            for key, counts in st.counts.items():
                total.setdefault(key, Tally()).add(counts)
            boot += st.boot_derefs
            held += st.held_derefs
        return total, boot, held
