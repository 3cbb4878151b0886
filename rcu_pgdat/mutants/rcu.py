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
from ..rcu.callbacks import CallbackWorker

__all__ = ["NoWaitQSBR", "QSInReaderQSBR", "SingleFlipMemb", "EarlyCallbackQSBR",
           "NoWaitBarrierQSBR", "WrongIndexSRCU", "SharedGPQSBR", "EarlyCookieQSBR",
           "StaleCookieQSBR", "CallbackJoinsGPQSBR", "BatchAfterGPWorker"]


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


# -- updater-side bugs: each needs two updaters at once to show ---------------------------


class SharedGPQSBR(QSBR):
    """``synchronize()`` that meets a grace period under way returns when that one ends.

    That grace period began before the caller unlinked its object, so a reader that
    entered after it began (and was rightly not waited for) still holds the object.
    The right sharing takes a cookie first and returns only when a grace period that
    began after the call has ended (``rcu_pgdat.rcu._flavor``, "sharing").
    """

    def _synchronize(self) -> None:
        seq = self.gp_seq
        if not seq & 1:
            super()._synchronize()
            return
        sched.wait_until(lambda: self.gp_seq != seq,     # should wait for the next one
                         f"{self.name}: the grace period under way")


class EarlyCookieQSBR(QSBR):
    """A cookie taken during a grace period polls done when that grace period ends.

    ``get_state()`` asks for the end of the *current* grace period when one is in
    progress; it began before the caller's section, so it does not cover it.
    """

    def get_state(self) -> int:
        super().get_state()                 # the checks and the schedule point
        return (self.gp_seq + 2) & ~1       # should be + 3: an odd seq needs one more


class StaleCookieQSBR(QSBR):
    """``cond_synchronize()`` trusts a stale cookie as done.

    A cookie older than a fresh one is taken as elapsed, although the grace period it
    needs may only have begun (another updater's, still waiting for the readers).
    """

    def cond_synchronize(self, cookie: int) -> None:
        if cookie < self.get_state():       # should be: poll_state(cookie)
            return
        super().cond_synchronize(cookie)


class BatchAfterGPWorker(CallbackWorker):
    """A callback worker that takes its batch after the grace period, not before it:
    callbacks queued while the grace period was in progress run at its end."""

    def _next_batch(self) -> bool:
        sched.wait_until(self._has_work, f"{self.name}: callbacks to run")
        if not self._grace_period():
            return False
        batch, stopping = self._take_batch()    # should come before the grace period
        if not batch:
            return not stopping
        self._invoke(batch)
        return True


class CallbackJoinsGPQSBR(QSBR):
    """A ``call_rcu()`` callback is attached to the grace period in progress.

    Its worker takes the callbacks queued during its grace period into the batch that
    grace period ends (``BatchAfterGPWorker``).
    """

    _callback_worker = BatchAfterGPWorker
