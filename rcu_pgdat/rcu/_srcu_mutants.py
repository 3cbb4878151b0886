"""Known-bad SRCU variants (mutants): each breaks one step of the argument in ``srcu.py``.

Every mutant is built the way a user's broken plug-in would be, as a subclass that
overrides one step, and every one must be caught by the tests (``tests/test_srcu*.py``)
and, later, by the harness. Each docstring says what is wrong and what catches it.
"""

from __future__ import annotations

import threading

from .. import sched
from .srcu import (
    LABEL_BETWEEN_SUMS,
    LABEL_SUM_LOCKS,
    LABEL_SUM_UNLOCKS,
    SRCU,
    _ReaderRecord,
    _sum,
)

__all__ = [
    "SRCUFlipOnly",
    "SRCULocksFirst",
    "SRCUNoFlip",
    "SRCUNoWait",
    "SRCUSkipOldIndex",
    "shared_counters_family",
]


class SRCUNoWait(SRCU):
    """Grace periods wait for nobody: a reader asleep in its section is freed under.

    Caught by any grace-period check (a sleeping reader, call_srcu, the stress oracle).
    """

    def _drain(self, records: list[_ReaderRecord]) -> None:
        pass


class SRCUNoFlip(SRCU):
    """Waits for the current index only and never flips: safe, but it can starve.

    Every reader uses one index, so a relay of overlapping sections that began after
    the grace period keeps it from ending. Caught by the relay test and by the
    single-thread model (the index never changes).
    """

    def _drain(self, records: list[_ReaderRecord]) -> None:
        self._wait_for_readers(records, self._idx)


class SRCUFlipOnly(SRCU):
    """Flips, then waits for the old index only, skipping step 1.

    A late reader (index loaded before the previous flip, counted after it) sits on
    the index this grace period never checks. Caught by the forced late-reader test.
    """

    def _drain(self, records: list[_ReaderRecord]) -> None:
        idx = self._idx
        self._flip(idx)
        self._wait_for_readers(records, idx)


class SRCUSkipOldIndex(SRCU):
    """Waits for the inactive index and flips, but never waits for the old current one.

    Ordinary pre-existing readers are on that index. Caught by the interleaving
    property test and by the sleeping-reader test.
    """

    def _drain(self, records: list[_ReaderRecord]) -> None:
        idx = self._idx
        self._wait_for_readers(records, idx ^ 1)
        self._flip(idx)


class SRCULocksFirst(SRCU):
    """Sums lock counts before unlock counts (the order the kernel comment warns about).

    A late reader that locks and unlocks between the passes has its unlock counted
    but not its lock, cancelling another reader's open section. Caught by the forced
    locks-first test.
    """

    def _readers_active(self, records: list[_ReaderRecord], idx: int) -> int:
        locks = _sum(records, "lock", idx, LABEL_SUM_LOCKS)
        sched.point(LABEL_BETWEEN_SUMS)
        unlocks = _sum(records, "unlock", idx, LABEL_SUM_UNLOCKS)
        return locks - unlocks


def shared_counters_family() -> type[SRCU]:
    """A fresh SRCU subclass whose domains all share one set of reader counters.

    Domains are then not independent: a grace period of one waits for the readers of
    every other. Caught by the domain-independence test. Each call makes a new family,
    so that tests share no state. (A grace period that prunes exited threads gives its
    domain a list of its own again; the mutant stays broken until then.)
    """
    registry: list[_ReaderRecord] = []
    tls = threading.local()
    lock = sched.Mutex("shared srcu registry")

    class SRCUSharedCounters(SRCU):
        def __init__(self, name: str = "srcu") -> None:
            super().__init__(name)
            self._registry = registry
            self._tls = tls
            self._registry_lock = lock

    return SRCUSharedCounters
