"""The scheduling modes, one registry: what ``--sched`` (and ``--rcu-sched``) accept.

Two families. Free-running modes run real threads and let the OS decide too, so a seed
only fixes each thread's own choices: ``stress`` (seeded random yields at schedule
points, a tiny switch interval) and ``naive`` (points do nothing; the interpreter's own
switching, a baseline). Controlled modes run one model thread between two schedule
points and a strategy decides who runs next, so a seed is an exact replay; ``dfs``
explores every schedule up to a preemption bound instead of following one seed.

The free-running names come from ``rcu_pgdat.sched.runner.FREE_MODES`` and the
controlled ones, with their help, from the strategy registry
(``rcu_pgdat.sched.STRATEGIES``): a new strategy appears here, in the CLI and in the
pytest plugin by being added there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import sched
from ..sched.runner import FREE_MODES

__all__ = ["Mode", "MODES", "EXPLORE", "STRESS", "NAIVE", "is_controlled", "seeded_modes"]

#: The free-running modes by name.
STRESS, NAIVE = FREE_MODES


@dataclass(frozen=True)
class Mode:
    """One scheduling mode: its name, one line of help, and its family."""

    name: str
    help: str
    controlled: bool
    #: Whether one seed decides one run (every mode but an exploration such as dfs).
    seeded: bool = True


_FREE_HELP = {
    STRESS: "free-running, seeded random yields at schedule points",
    NAIVE: "free-running, no yields: the interpreter alone decides (a baseline)",
}

#: Every scheduling mode, free-running first, in the order the CLI lists them.
MODES: dict[str, Mode] = {
    **{name: Mode(name, _FREE_HELP[name], False) for name in FREE_MODES},
    **{name: Mode(name, f"controlled: {spec.help}", True, spec.per_seed)
       for name, spec in sched.STRATEGIES.items()},
}

#: The exploration mode (a search over many runs, not one run per seed).
EXPLORE = next(m.name for m in MODES.values() if m.controlled and not m.seeded)


def is_controlled(name: str) -> bool:
    """Whether ``name`` is a controlled mode (``False`` for unknown names too)."""
    mode = MODES.get(name)
    return mode is not None and mode.controlled


def seeded_modes(*, free: tuple[str, ...] = FREE_MODES) -> tuple[str, ...]:
    """The modes in which one seed makes one run: the free-running ones in ``free``,
    then every seeded controlled strategy."""
    return (*free, *(m.name for m in MODES.values() if m.controlled and m.seeded))


def describe(names: tuple[str, ...] | None = None) -> str:
    """``name: help; ...`` for a help text."""
    chosen = MODES if names is None else {n: MODES[n] for n in names}
    return "; ".join(f"{m.name}: {m.help}" for m in chosen.values())
