"""The portfolio: each seed runs one strategy of a fixed rotation.

No single strategy is best at every bug. Uniform random preempts at almost every step
and finds bugs that need a thread switched out at many places; ``delay`` does the same
and parks a few threads for rounds at a time; PCT keeps a thread
running and preempts it rarely, at random points of each loop round, which a bug that
needs one long delay at one exact place prefers; POS delays steps whose races it cannot
see, for as long as independent steps keep coming. Which one a user's bug needs is
unknown in advance, so a sweep of seeds should not bet on one: seed ``i`` runs entry
``i mod len(ROTATION)`` of :data:`ROTATION`, a strategy with its parameters, seeded
with ``i``.

Why this is sound for replay and traces: the choice is a function of the seed alone,
and the chosen strategy is a pure function of its seed and decisions, so the same seed
gives the same run; the trace records what ran (``describe()["ran"]``) and sweeps print
it (``seed 4: pct d=3``).

Why this rotation: one global rule, never a setting per bug. For every target of the
detection benchmark (the 28 catalogue mutants and the three ``unseen_rcu`` plug-ins) and
every single strategy, the per-seed catch rate over seeds 1..20 is measured; a
rotation's expected catch rate on a target is the mean of its entries' rates (a
portfolio seed *is* its entry's run at that seed), and its expected seeds to catch are
the inverse. The rule: among all rotations of at most six entries drawn from ``random``,
``pct d=2``, ``pct d=3``, ``pos`` and ``delay``, take the one whose worst ratio of
expected seeds to catch, portfolio over the best single strategy, is smallest over all
targets (ties: the smaller sum of the ratios' logarithms, then the shorter rotation).
Measured on the strategies as they are here (2026-11-28, 3,100 runs), the rule gave
``pct d=2`` twice and ``pct d=3``, ``pos`` and ``delay`` once: worst 1.67x the best
single strategy (a phase flip's stale reader, a cookie trusted stale, the single-flip
memb), against 2.33x for the previous rotation and ``delay`` (``delay`` on every other
seed, four parkings a round: weak on a reader kept past its section, the single-flip
memb and a polled cookie taken during a grace period).
Counted exactly instead (portfolio seed ``i`` = entry ``i``'s verdict at seed ``i``),
over seeds 1..30 of the nine hardest targets, the worst is 1.75x (3.0x to 7.0x before).
The order: seed 0 runs ``delay`` (a sweep from 0 does not begin with the calibration run
PCT's length needs), the repeated entry is spread (seeds 1 and 3 of every five).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .decision import Decision, Strategy
from .delay import DelayStrategy
from .pct import PCTStrategy
from .pos import POSStrategy

__all__ = ["PortfolioStrategy", "ROTATION", "Entry", "rotation_entry", "needs_steps"]

Builder = Callable[[int, int], Strategy]


def _delay(seed: int, steps: int) -> Strategy:
    return DelayStrategy(seed)


def _pos(seed: int, steps: int) -> Strategy:
    return POSStrategy(seed)


def _pct(depth: int) -> Builder:
    def build(seed: int, steps: int) -> Strategy:
        return PCTStrategy(seed, depth=depth, steps=steps)
    return build


@dataclass(frozen=True)
class Entry:
    """One entry of the rotation: how to build it, and whether it reads the run length."""

    build: Builder
    needs_steps: bool = False


#: The rotation: seed ``i`` runs entry ``i mod len(ROTATION)``.
ROTATION: tuple[Entry, ...] = (Entry(_delay), Entry(_pct(2), True), Entry(_pos),
                               Entry(_pct(2), True), Entry(_pct(3), True))


def rotation_entry(seed: int) -> Entry:
    """The rotation entry seed ``seed`` runs."""
    return ROTATION[seed % len(ROTATION)]


def needs_steps(seed: int) -> bool:
    """Whether the strategy of ``seed`` reads the expected run length (PCT does)."""
    return rotation_entry(seed).needs_steps


class PortfolioStrategy(Strategy):
    """Run the rotation's entry for ``seed`` (see the module docstring)."""

    name = "portfolio"

    def __init__(self, seed: int, steps: int = 1000) -> None:
        self.seed = seed
        self.steps = steps
        self.inner = rotation_entry(seed).build(seed, steps)

    def choose(self, d: Decision) -> str | None:
        return self.inner.choose(d)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "steps": self.steps,
                "ran": self.inner.describe()}

    def summary(self) -> str:
        return self.inner.summary()
