"""PCT: probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
ASPLOS 2010).

Each thread gets a random priority when it first shows up; the highest-priority
candidate always runs. ``depth - 1`` change points are drawn uniformly from the steps
``1..steps``; at the i-th one the thread that ran the step before is demoted below every
thread not demoted yet (later demotions go lower still). A bug has *depth* d when d
ordering constraints between steps must hold for it to show (an order violation has
depth 1, an atomicity violation between two threads depth 2). For a program with at
most ``n`` threads and ``k`` steps, one PCT run with ``depth=d`` finds a given bug of
depth d with probability at least ``1 / (n * k**(d-1))``; independent seeds multiply
the chance of a miss. The bound assumes ``steps >= k``: pass the program's length
(sweeps measure it once).

Threads here loop rather than finish (workers run until the step budget), and a thread
of top priority that never blocks would starve the rest forever, which no kernel
scheduler does. So a thread that stops at a voluntary yield point (``sched.yield_point``:
the model's ``cond_resched()``) is demoted as a thread calling ``sched_yield()`` gives
its CPU away; these demotions are not change points and do not count against
``depth``.

Why not just Random: a bug that needs one thread to run w steps without a switch and
then be preempted at one exact step is found by Random with probability about 2**-w (it
must keep the same thread w times in a row); PCT keeps the higher-priority thread
running by construction and needs only the change point to land on the step, about 1/k
(``stress.bench.seeds.measure(race, mode, seeds, work=30)`` shows both).
"""

from __future__ import annotations

import random
from typing import Any

from .decision import Decision, Strategy

__all__ = ["PCTStrategy"]


class PCTStrategy(Strategy):
    """PCT with ``depth - 1`` priority change points in steps ``1..steps``.

    Invariant: ``_order + _lowered`` ranks every thread seen so far, highest first;
    ``_lowered`` holds the demoted ones in demotion order, all below every other.
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
        count = min(depth - 1, steps)
        self._change_points = sorted(self._rng.sample(range(1, steps + 1), count))
        self._next_change = 0
        self._order: list[str] = []
        self._lowered: list[str] = []
        self._seen: set[str] = set()       # membership only, never iterated
        self._last_index = -1

    def choose(self, d: Decision) -> str:
        for name in d.candidates:              # start order: deterministic insertion
            if name not in self._seen:
                self._seen.add(name)
                self._order.insert(self._rng.randint(0, len(self._order)), name)
        if d.index != self._last_index:        # first question for this step
            self._last_index = d.index
            if d.prev_yielded and d.prev is not None:
                self._demote(d.prev)
            cps = self._change_points
            while self._next_change < len(cps) and cps[self._next_change] <= d.index:
                self._next_change += 1
                if d.prev is not None:
                    self._demote(d.prev)
        for name in self._order + self._lowered:
            if name in d.candidates:
                return name
        raise AssertionError("unreachable: every candidate has a priority")

    def _demote(self, name: str) -> None:
        if name in self._order:
            self._order.remove(name)
        elif name in self._lowered:
            self._lowered.remove(name)
        self._lowered.append(name)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "depth": self.depth, "steps": self.steps}

    def summary(self) -> str:
        return f"pct d={self.depth}"
