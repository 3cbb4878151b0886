"""The scheduling modes, one registry: what ``--sched`` (and ``--rcu-sched``) accept.

Two families. Free-running modes run real threads and let the OS decide too, so a seed
only fixes each thread's own choices: ``stress`` (seeded random yields at schedule
points, a tiny switch interval) and ``naive`` (points do nothing; the interpreter's own
switching, a baseline). Controlled modes run one model thread between two schedule
points and a strategy decides who runs next, so a seed is an exact replay; ``dfs``
explores every schedule up to a preemption bound instead of following one seed.

The free-running names come from ``rcu_pgdat.sched.runner.FREE_MODES`` and the
controlled strategies from ``rcu_pgdat.sched.CONTROLLED_MODES``: this module only adds
what each one is for, so a new strategy appears here, in the CLI and in the pytest
plugin by being added there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import sched
from ..sched.runner import FREE_MODES

__all__ = ["Mode", "MODES", "EXPLORE", "STRESS", "NAIVE", "is_controlled", "seeded_modes"]

#: The free-running modes by name, and the exploration mode.
STRESS, NAIVE = FREE_MODES
EXPLORE = "dfs"


@dataclass(frozen=True)
class Mode:
    """One scheduling mode: its name, one line of help, and its family."""

    name: str
    help: str
    controlled: bool
    #: Whether one seed decides one run (every mode but the exploration).
    seeded: bool = True


_HELP = {
    STRESS: "free-running, seeded random yields at schedule points",
    NAIVE: "free-running, no yields: the interpreter alone decides (a baseline)",
    "random": "controlled: a uniform choice among the runnable threads at every step",
    "pct": "controlled: probabilistic concurrency testing (random priorities, "
           "--pct-depth minus one change points)",
    EXPLORE: "controlled: every schedule with at most --max-preemptions preemptions",
}


def _mode(name: str, controlled: bool, seeded: bool = True) -> Mode:
    return Mode(name, _HELP.get(name, "controlled strategy" if controlled else
                                "free-running"), controlled, seeded)


#: Every scheduling mode, free-running first, in the order the CLI lists them.
MODES: dict[str, Mode] = {
    **{name: _mode(name, False) for name in FREE_MODES},
    **{name: _mode(name, True) for name in sched.CONTROLLED_MODES},
    EXPLORE: _mode(EXPLORE, True, seeded=False),
}


def is_controlled(name: str) -> bool:
    """Whether ``name`` is a controlled mode (``False`` for unknown names too)."""
    mode = MODES.get(name)
    return mode is not None and mode.controlled


def seeded_modes(*, free: tuple[str, ...] = FREE_MODES) -> tuple[str, ...]:
    """The modes in which one seed makes one run: the free-running ones in ``free``,
    then every seeded controlled strategy."""
    return (*free, *(m.name for m in MODES.values() if m.controlled and m.seeded))


def describe(names: tuple[str, ...] | None = None) -> str:
    """``name (help), ...`` for a help text."""
    chosen = MODES if names is None else {n: MODES[n] for n in names}
    return "; ".join(f"{m.name}: {m.help}" for m in chosen.values())
