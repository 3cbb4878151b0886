"""The portfolio: each seed runs one strategy of a fixed rotation.

No single strategy is best at every bug. Uniform random preempts at almost every step
and finds bugs that need a thread switched out at many places; PCT keeps a thread
running and preempts it rarely, at random points of each loop round, which a bug that
needs one long delay at one exact place prefers; POS delays steps whose races it cannot
see, for as long as independent steps keep coming. Which one a user's bug needs is
unknown in advance, so a sweep of seeds should not bet on one: seed ``i`` runs entry
``i mod len(ROTATION)`` of :data:`ROTATION`, a strategy with its parameters, seeded
with ``i``.

Why this is sound for replay and traces: the choice is a function of the seed alone,
and the chosen strategy is a pure function of its seed and decisions, so the same seed
gives the same run; the trace records what ran (``describe()["ran"]``) and sweeps print
it (``seed 7: pct d=5``).

Why this rotation: three families, each strongest on its own class of bugs (see the
detection benchmark in the README): random every third seed (seeds 0, 3, 6, ...), PCT
on three of six (depths 3, 2 and 5: two, one and four change points per measured loop
round, from a single delay to a burst of them), POS on one of six. A bug that only one
entry finds costs the portfolio at most ``len(ROTATION)`` times the seeds that entry
needs, one that a whole family finds at most two or three times. The entries and their
order are the same for every bug; nothing here is tuned to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .basic import RandomStrategy
from .decision import Decision, Strategy
from .pct import PCTStrategy
from .pos import POSStrategy

__all__ = ["PortfolioStrategy", "ROTATION", "Entry", "rotation_entry", "needs_steps"]

Builder = Callable[[int, int], Strategy]


def _random(seed: int, steps: int) -> Strategy:
    return RandomStrategy(seed)


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
ROTATION: tuple[Entry, ...] = (Entry(_random), Entry(_pct(3), True), Entry(_pos),
                               Entry(_random), Entry(_pct(2), True), Entry(_pct(5), True))


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
