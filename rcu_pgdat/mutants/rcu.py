"""Broken RCU flavors and SRCU domains, as a user's plug-in would arrive.

Each is a subclass of a public built-in implementation that gets exactly one thing
wrong, through the public API or a documented protected hook of its class; the harness
drives it through the same checked wrappers as any plug-in, so what catches it is the
oracles, never a peek at the implementation.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import sched
from ..rcu import QSBR, SRCU, Memb

__all__ = ["NoWaitQSBR", "QSInReaderQSBR", "SingleFlipMemb", "EarlyCallbackQSBR",
           "NoWaitBarrierQSBR", "WrongIndexSRCU"]


class NoWaitQSBR(QSBR):
    """A grace period that does not wait: ``synchronize()`` returns at once."""

    def _wait_for_readers(self) -> None:
        sched.point("qsbr:gp:nowait")


class QSInReaderQSBR(QSBR):
    """Reports a quiescent state when an inner section ends, the outer still open."""

    def read_unlock(self) -> None:
        super().read_unlock()
        rec = self.reader()
        if rec.depth():                  # still inside the outer section
            self._store_gp_ctr(rec)


class SingleFlipMemb(Memb):
    """General-purpose RCU whose grace period flips the phase once, not twice."""

    def _wait_for_readers(self) -> None:
        self._flip_and_wait(self.readers())


class EarlyCallbackQSBR(QSBR):
    """``call_rcu()`` runs the callback at once, before any grace period."""

    def call_rcu(self, callback: Callable[[], Any]) -> None:
        callback()


class NoWaitBarrierQSBR(QSBR):
    """``rcu_barrier()`` returns without waiting for the queued callbacks."""

    def barrier(self) -> None:
        pass


class WrongIndexSRCU(SRCU):
    """``srcu_read_unlock(idx)`` counts the unlock on the other index."""

    def read_unlock(self, idx: int) -> None:  # type: ignore[override]  # SRCU protocol
        rec = self.reader()
        sched.point("srcu_read_unlock")
        rec.unlock[idx ^ 1] += 1         # should be rec.unlock[idx]
        sched.point("srcu_read_unlock:unlocked")
