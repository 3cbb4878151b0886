"""The per-thread reader records of a flavor or SRCU domain and the registry that holds them.

Why it is correct
-----------------
A reader record belongs to one thread. Its flavor-specific counters are written only by
that thread (single attribute or list-item stores) and loaded by grace-period waiters
(single loads): no lock is needed on the read side, and nothing here relies on the GIL
beyond the atomicity of one attribute or list-item load or store.

A record is also its thread's *reader handle* (``flavor.reader()``): its ``read_lock``
and ``read_unlock`` are the read side without the per-thread lookup, as liburcu's
read side finds its state in a C thread-local for free. The record class a flavor
creates is chosen by its mode (``_flavor``'s "Two read sides").

The registry maps thread *names* to records. It changes only under ``_lock`` (a
scheduler ``Mutex``): ``add``, ``remove`` and ``snapshot``. A grace period takes a
snapshot once and waits on the records in it. That is enough because a thread that is
added *after* the snapshot was taken can only begin read-side sections after it was
added, hence after the grace period began, and a grace period owes nothing to sections
that begin after it. A record removed after the snapshot is still in the snapshot (the
waiter holds a reference), and its thread made it quiescent before removing it.

The obvious simpler scheme, iterating the live registry without a lock, is wrong in
Python as anywhere: a dict that changes size during iteration raises, and on
free-threaded CPython a resize can be observed half done.

Threads that exit without unregistering
---------------------------------------
A record's counters never change once its thread has exited. Outside any section, such
a record is simply forgotten: the snapshot drops it, and a restarted worker may take its
name. *Inside* a section (``record.depth()`` non-zero), the section can never end, so no
grace period may pretend it did (an oracle that saw the section begin would rightly
call that a too-short grace period): the snapshot keeps the record, the grace period
that meets it raises (``FlavorBase._wait_for``), and a new thread asking for the same
name is refused with the reason. Two *live* threads with one name are refused too,
because names are the identity reports and replays use.

Snapshots list records in name order, so the order in which a grace period visits
readers never depends on registration timing or hash order.

Lock order: ``_lock`` is a leaf; nothing is called with it held.
"""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

from .. import sched
from ..errors import UsageError

__all__ = ["R", "ReaderRecord", "ReaderRegistry"]


class ReaderRecord:
    """One thread's read-side state for one flavor (subclasses add the counters).

    Created by the thread it belongs to; only that thread may call its methods.
    """

    __slots__ = ("flavor", "name", "thread")

    def __init__(self, flavor: Any) -> None:
        thread = threading.current_thread()
        #: The flavor or domain the record belongs to (its grace-period state).
        self.flavor = flavor
        self.name = thread.name
        #: Only used to tell whether the owner is still alive; identity is ``name``.
        self.thread = thread

    def depth(self) -> int:
        """Open read-side sections as the record shows them (0 when it keeps no count).

        Exact for the owner; for another thread, a load that may be one step stale,
        which is enough for decisions about dead threads (their records never change).
        """
        raise NotImplementedError


R = TypeVar("R", bound=ReaderRecord)


class ReaderRegistry(Generic[R]):
    """The records of every registered thread of one flavor, keyed by thread name.

    ``_lock`` guards ``_records``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = sched.Mutex(f"{name}.registry")
        self._records: dict[str, R] = {}

    def _forgettable(self, record: R) -> bool:
        return not record.thread.is_alive() and not record.depth()

    def add(self, record: R) -> None:
        """Register ``record``; refused while its name belongs to another thread."""
        with self._lock:
            sched.point("registry:add")
            old = self._records.get(record.name)
            if old is not None and old is not record and not self._forgettable(old):
                why = ("is already registered" if old.thread.is_alive() else
                       "exited inside a read-side section, which can never end")
                raise UsageError(
                    f"{self.name}: another thread named {record.name!r} {why}; give "
                    "every reader thread a unique name")
            self._records[record.name] = record

    def remove(self, record: R) -> None:
        """Drop ``record`` (the caller made it quiescent first)."""
        with self._lock:
            sched.point("registry:remove")
            if self._records.get(record.name) is record:
                del self._records[record.name]

    def snapshot(self) -> list[R]:
        """The records a grace period must look at, in name order (see the module doc)."""
        with self._lock:
            sched.point("registry:snapshot")
            for name in [n for n, r in self._records.items() if self._forgettable(r)]:
                del self._records[name]
            return [self._records[name] for name in sorted(self._records)]

    def peek(self) -> list[R]:
        """The records without taking the lock: for ``repr`` and reports, never decisions.

        ``dict.copy()`` is one operation on the dict (its own lock on free-threaded
        CPython), so a concurrent ``add`` cannot make it fail half way.
        """
        return list(self._records.copy().values())

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"<ReaderRegistry {self.name} {self.peek()!r}>"
