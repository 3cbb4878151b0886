"""The measured period of a looping program: mean steps between two yields of a thread.

The model's threads loop and pass a voluntary yield (``sched.yield_point``, the model's
``cond_resched()``) once per iteration. The *round* is the time every thread needs to
run one iteration, which is what a grace period, or a free under a reader, takes to
happen; the strategies that spread preemptions or delays over rounds (``pct``,
``delay``) measure it as the run goes, as the mean number of steps between two
consecutive yields of the same thread over every thread so far.

Why it is sound to use it for scheduling: the mean is a pure function of the decisions
seen (thread names and step indices, in order), so a strategy that reads it stays a
pure function of its seed and its decisions: same seed, same run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .decision import Decision

__all__ = ["LoopRounds"]


class LoopRounds:
    """The running mean of the steps between two yields of the same thread.

    Invariant: ``periods`` counts the yields that closed a round of their thread (a
    thread's second and later yields), ``total`` the steps those rounds took.
    """

    __slots__ = ("_last", "periods", "total")

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self.periods = 0
        self.total = 0

    def yielded(self, name: str, index: int) -> None:
        """``name`` passed a voluntary yield at step ``index``."""
        last = self._last[name] if name in self._last else None
        if last is not None:
            self.periods += 1
            self.total += index - last
        self._last[name] = index

    def note(self, d: Decision) -> bool:
        """Whether ``d.prev`` stopped at a voluntary yield (then counted at ``d.index``)."""
        if d.prev is None or not d.prev_yielded:
            return False
        self.yielded(d.prev, d.index)
        return True

    @property
    def measured(self) -> bool:
        """Whether some thread has yielded twice (a round is known)."""
        return self.periods > 0

    def length(self, default: float) -> float:
        """The mean round length in steps (``default`` until one is measured)."""
        return self.total / self.periods if self.periods else default
