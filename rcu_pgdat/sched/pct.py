"""PCT: probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
ASPLOS 2010), for programs whose threads loop.

Classic PCT
-----------
Each thread gets a random priority when it first shows up; the highest-priority
candidate always runs. ``depth - 1`` change points are drawn uniformly from the ``k``
steps of the run; at each one the thread that ran the step before is demoted below
every other. A bug has *depth* d when d ordering constraints between steps must hold for
it to show; for ``n`` threads one run finds a given bug of depth d with probability at
least ``1 / (n * k**(d-1))``.

Why classic PCT fails on this model
-----------------------------------
The bound and the strategy assume threads that finish. Here every thread loops until the
step budget, and a thread of top priority that never blocks would run alone for ever. So
a thread that stops at a voluntary yield (``sched.yield_point``, the model's
``cond_resched()``) goes to the back of the queue, as ``sched_yield()`` does (shuttle
deprioritizes a yielding task the same way). After one round every thread has yielded and
the priorities have become a round-robin queue: each thread runs one iteration of its
loop, from yield to yield, without a switch. The ``d-1`` change points are then the only
preemptions inside an iteration, out of tens of thousands of steps, while the bugs of an
RCU live inside an iteration (a reader preempted inside its section, an updater between
its snapshot and its wait).

What this version does, and why
-------------------------------
Shuttle and Coyote keep the change points of one run over the run's measured length
(shuttle counts only decisions with two or more runnable tasks and grows its bound as it
sees longer runs; Coyote places a bounded number of priority changes, 10 by default, over
the measured number of scheduling points, and for programs that do not terminate offers a
"fair" variant that turns random after a prefix). Both still spend a constant number of
preemptions on the whole run, so a bug that can strike in any round of a loop has one
chance per run instead of one per round. Of the PCT paper's argument, what carries over to
a loop is the round: the ordering constraints of a bug in a looping program hold within
one round, and every round is a fresh chance. So this version keeps PCT per round:

* **Change points per round.** The depth counts change points in a round of ``r`` steps,
  ``r`` being the *measured* period of the loop: the mean number of steps between two
  yields of the same thread, over the run so far. Each preemptible step is a change
  point independently with probability ``(d-1)/r``: ``d-1`` per round on average, and a
  given set of ``d-1`` steps of a round all change points with probability about
  ``((d-1)/r)**(d-1) * e**-(d-1)``, the per-round counterpart of PCT's ``1/k**(d-1)``,
  with a fresh chance every round. Until a round has been measured (no thread has yielded
  twice yet, and never in a program without yields) the change points are classic PCT's:
  ``d-1`` steps drawn from ``1..steps``, ``steps`` being the expected run length.
* **Only preemptible steps count** in a measured loop (the thread that ran could go on
  and another could run instead), as in shuttle and Coyote: a change point on a yield,
  or with a single candidate, would be no preemption at all.
* A demoted thread goes to the back of the queue, behind every thread that has not yet
  yielded in this round: it misses one full round, the others running an iteration each,
  which is the delay a preempted reader needs for a grace period and a free to happen
  under it. It is never starved for good, so a correct RCU never sees its grace periods
  stall behind a thread the strategy parked (no false livelock).

Where it loses: a bug that needs many preemptions in a short stretch (one thread
switched out at nearly every step) is a uniform-random bug; ``random`` finds those
faster, and the portfolio runs both.
"""

from __future__ import annotations

import random
from typing import Any

from ._rounds import LoopRounds
from .decision import Decision, Strategy

__all__ = ["PCTStrategy"]


class PCTStrategy(Strategy):
    """PCT with ``depth - 1`` change points per measured loop round (see module doc).

    Invariant: ``_order + _queue`` ranks every thread seen so far, highest first;
    ``_order`` holds the threads that have neither yielded nor been demoted, in their
    random initial priority order, ``_queue`` the others, in the order they went back.
    """

    name = "pct"

    def __init__(self, seed: int, depth: int = 3, steps: int = 1000) -> None:
        if depth < 1:
            raise ValueError(f"PCT depth must be at least 1, got {depth}")
        if steps < 1:
            raise ValueError(f"PCT steps (the expected run length) must be >= 1, got {steps}")
        self.seed = seed
        self.depth = depth
        self.steps = steps
        self._rng = random.Random(seed)
        self._order: list[str] = []
        self._queue: list[str] = []
        self._seen: set[str] = set()        # membership only, never iterated
        self._last_index = -1
        self._rounds = LoopRounds()
        self.change_points: list[int] = []  # step indices where a change point fell
        # Until a round is measured: classic PCT's d-1 points among steps 1..steps.
        self._classic = set(self._rng.sample(range(1, steps + 1), min(depth - 1, steps)))

    @property
    def round_length(self) -> float:
        """The measured loop period ``r`` (the expected run length until measured)."""
        return self._rounds.length(float(self.steps))

    def choose(self, d: Decision) -> str:
        for name in d.candidates:              # start order: deterministic insertion
            if name not in self._seen:
                self._seen.add(name)
                self._order.insert(self._rng.randint(0, len(self._order)), name)
        if d.index != self._last_index:        # first question for this step
            self._last_index = d.index
            self._account(d)
        for name in self._order + self._queue:
            if name in d.candidates:
                return name
        raise AssertionError("unreachable: every candidate has a priority")

    def _account(self, d: Decision) -> None:
        """The yield or change point that ends ``d.prev``'s run, if any."""
        prev = d.prev
        if prev is None:
            return
        if self._rounds.note(d):
            self._demote(prev)
        elif not self._rounds.measured:        # no round measured: classic PCT
            if d.index in self._classic:
                self.change_points.append(d.index)
                self._demote(prev)
        elif len(d.candidates) > 1 and prev in d.candidates:
            if self._rng.random() * self.round_length < self.depth - 1:
                self.change_points.append(d.index)
                self._demote(prev)

    def _demote(self, name: str) -> None:
        if name in self._order:
            self._order.remove(name)
        else:
            self._queue.remove(name)
        self._queue.append(name)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "depth": self.depth, "steps": self.steps}

    def summary(self) -> str:
        return f"pct d={self.depth}"
