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
it (``seed 7: pct d=3``).

Why this rotation: an entry strong on every class of bug the detection benchmark has
(README, Performance) is what keeps a sweep within a small factor of the best single
strategy on every bug; a bug only one entry finds is found by the portfolio only on
that entry's seeds. ``delay`` (uniform random plus long parkings, ``delay.py``) is that
entry: it interleaves updaters as finely as random and holds a reader over a grace
period as PCT does, so it runs every other seed (seeds 0, 2, 4, ...; seed 0 first, so
that a sweep from 0 does not begin with the calibration run PCT's length needs). PCT at depths 3
and 2 (two and one change points per measured loop round) and POS keep a seed in six
each, for a bug that needs one thread preempted at one exact step and the rest run
non-preemptively, or a race between two rarely pending steps. Plain ``random`` is not in
the rotation: ``delay`` is random whenever nobody is parked. The entries and their
order are the same for every bug; nothing here is tuned to one.
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
ROTATION: tuple[Entry, ...] = (Entry(_delay), Entry(_pct(3), True), Entry(_delay),
                               Entry(_pos), Entry(_delay), Entry(_pct(2), True))


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
