"""Known-bad SRCU domains: each breaks one step of the argument in ``rcu_pgdat.rcu.srcu``.

Every mutant is built the way a user's broken plug-in would be, as a subclass of the
public ``SRCU`` that overrides one of its documented protected hooks (``_drain``,
``_readers_active`` and the two passes it is made of, ``_flip``, ``_wait_for_index``),
and every one must be caught by the tests (``tests/test_srcu*.py``) and, for those in
the catalogue, by the harness. Each docstring says what is wrong and what catches it.
"""

from __future__ import annotations

from .. import sched
from ..rcu import SRCU
from ..rcu.srcu import LABEL_BETWEEN_SUMS, SRCUReader

__all__ = [
    "SRCUFlipOnly",
    "SRCULocksFirst",
    "SRCUNoFlip",
    "SRCUNoWait",
    "SRCUSharedFlip",
    "SRCUSkipOldIndex",
    "shared_counters_family",
]


class SRCUNoWait(SRCU):
    """Grace periods wait for nobody: a reader asleep in its section is freed under.

    Caught by any grace-period check (a sleeping reader, call_srcu, the stress oracle).
    """

    def _drain(self, records: list[SRCUReader]) -> None:
        pass


class SRCUNoFlip(SRCU):
    """Waits for the current index only and never flips: safe, but it can starve.

    Every reader uses one index, so a relay of overlapping sections that began after
    the grace period keeps it from ending. Caught by the relay test and by the
    single-thread model (the index never changes).
    """

    def _drain(self, records: list[SRCUReader]) -> None:
        self._wait_for_index(records, self._idx)


class SRCUFlipOnly(SRCU):
    """Flips, then waits for the old index only, skipping step 1.

    A late reader (index loaded before the previous flip, counted after it) sits on
    the index this grace period never checks. Caught by the forced late-reader test.
    """

    def _drain(self, records: list[SRCUReader]) -> None:
        idx = self._idx
        self._flip(idx)
        self._wait_for_index(records, idx)


class SRCUSkipOldIndex(SRCU):
    """SRCU grace period that flips but never waits for the old current index.

    Ordinary pre-existing readers are on that index. Caught by the interleaving
    property test and by the sleeping-reader test.
    """

    def _drain(self, records: list[SRCUReader]) -> None:
        idx = self._idx
        self._wait_for_index(records, idx ^ 1)
        self._flip(idx)


class SRCULocksFirst(SRCU):
    """Sums lock counts before unlock counts (the order the kernel comment warns about).

    A late reader that locks and unlocks between the passes has its unlock counted
    but not its lock, cancelling another reader's open section. Caught by the forced
    locks-first test.
    """

    def _readers_active(self, records: list[SRCUReader], idx: int) -> int:
        locks = self._sum_locks(records, idx)
        sched.point(LABEL_BETWEEN_SUMS)
        return locks - self._sum_unlocks(records, idx)


class SRCUSharedFlip(SRCU):
    """``synchronize()`` that returns when another caller's flip completes.

    A caller that meets a grace period under way waits only until that one has
    flipped the index (or ended), as if the flip were its grace period. Readers still
    on the old index, and readers that began on the new one before the call, may
    still hold what the caller unlinked. Caught by two updaters and a reader that
    lingers (``tests/test_rcu_updaters.py``) and by the harness.
    """

    def _synchronize(self) -> None:
        seq, idx = self.gp_seq, self.index
        if not seq & 1:
            super()._synchronize()
            return
        sched.wait_until(lambda: self.index != idx or self.gp_seq != seq,
                         f"srcu {self.name}: another caller's flip")


def shared_counters_family() -> type[SRCU]:
    """A fresh SRCU subclass whose domains all share one set of reader counters.

    Domains are then not independent: a grace period of one waits for the readers of
    every other. Caught by the domain-independence test. Each call makes a new family,
    so that tests share no state.
    """
    shared: list[SRCU] = []

    class SRCUSharedCounters(SRCU):
        def __init__(self, name: str = "srcu") -> None:
            super().__init__(name)
            if not shared:
                shared.append(self)
            self._registry = shared[0]._registry   # the readers' records ...
            self._tls = shared[0]._tls             # ... and each thread's lookup

    return SRCUSharedCounters
