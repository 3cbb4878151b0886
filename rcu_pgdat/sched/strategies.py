"""The strategy registry: one entry per way a controlled run can pick who runs next.

``STRATEGIES`` maps a name (the ``--sched`` value of a controlled mode) to a
:class:`StrategySpec`: how to build the strategy from a seed and options, the options it
reads (:class:`Param`, with their defaults and help), a one-line help, and a short
description of a configuration (``pct d=4``). Every place that lists, builds, validates
or describes strategies goes through it (:func:`make_strategy`, the CLI's choices and
help, sweeps, the pytest plugin, the benchmarks), so a new strategy is one entry here.

Options are keyword arguments shared by every spec; a spec reads the ones it declares
and ignores the others, so a caller may pass everything it has (``--pct-depth`` to a
``random`` run is harmless). ``steps`` is the expected length of a run, in steps: the
strategies that spread something over the run (``needs_steps``) need it, measured by a
calibration run (:func:`~rcu_pgdat.sched.calibrate_steps`) or taken from the step
budget of a run whose threads loop until it runs out.

``dfs`` is in the registry so that names are listed once, but it is not a strategy per
seed (``per_seed`` is false): it is a search over many runs,
:func:`~rcu_pgdat.sched.explore`, and :func:`make_strategy` refuses it.

The strategy classes live in their own modules (``decision`` the interface, ``basic``
random/replay/guided/choice, ``pct``, ``pos``, ``delay``, ``portfolio``) and are re-exported here.
:data:`SWEEP_DEFAULT` names the strategy every sweep of seeds runs unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..errors import UsageError
from .basic import ChoiceStrategy, GuidedStrategy, RandomStrategy, ReplayStrategy, Switch
from .decision import Decision, Strategy
from .delay import DelayStrategy
from .pct import PCTStrategy
from .pos import POSStrategy
from .portfolio import PortfolioStrategy
from .portfolio import needs_steps as _portfolio_needs_steps

__all__ = ["Decision", "Strategy", "RandomStrategy", "PCTStrategy", "POSStrategy", "DelayStrategy",
           "PortfolioStrategy", "ReplayStrategy",
           "GuidedStrategy", "Switch", "ChoiceStrategy", "Param", "StrategySpec",
           "STRATEGIES", "PER_SEED", "SWEEP_DEFAULT", "make_strategy", "describe_strategy",
           "strategy_spec", "CONTROLLED_MODES"]

#: Default expected run length when a caller has not measured one.
DEFAULT_RUN_STEPS = 1000


@dataclass(frozen=True)
class Param:
    """One option a strategy reads: keyword ``name`` (``pct_depth`` is ``--pct-depth``)."""

    name: str
    default: int
    help: str
    minimum: int = 1

    @property
    def flag(self) -> str:
        """The command-line spelling of the option."""
        return "--" + self.name.replace("_", "-")

    def value(self, options: Mapping[str, Any]) -> int:
        """The option's value in ``options`` (its default when absent or ``None``).

        Raises :class:`~rcu_pgdat.errors.UsageError` for a non-integer or a value below
        ``minimum``, naming the flag.
        """
        raw = options.get(self.name)
        if raw is None:
            return self.default
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise UsageError(f"{self.flag} must be an integer, got {raw!r}")
        if raw < self.minimum:
            raise UsageError(f"{self.flag} must be at least {self.minimum}, got {raw}")
        return raw


@dataclass(frozen=True)
class StrategySpec:
    """How to build, configure and describe one strategy; see the module docstring.

    ``build(seed, options)`` returns the strategy (options already defaulted and
    checked); ``label(options)`` the short description; ``None`` as ``build`` means the
    name is not a per-seed strategy (``dfs``).
    """

    name: str
    help: str
    params: tuple[Param, ...] = ()
    build: Callable[[int, Mapping[str, Any]], Strategy] | None = None
    label: Callable[[Mapping[str, Any]], str] | None = None
    needs_steps: bool = False
    #: Which seeds' strategies read ``steps`` (default: all, when ``needs_steps``).
    steps_for: Callable[[int], bool] | None = None

    def needs_steps_for(self, seed: int) -> bool:
        """Whether the strategy of ``seed`` reads ``steps`` (a caller measures it only
        then: the portfolio's random and POS seeds do not need a calibration run)."""
        if not self.needs_steps:
            return False
        return self.steps_for(seed) if self.steps_for is not None else True

    @property
    def per_seed(self) -> bool:
        """Whether a seed gives one run (``dfs`` is a search over many runs)."""
        return self.build is not None

    def options(self, options: Mapping[str, Any]) -> dict[str, int]:
        """This spec's own options, defaulted and checked (see :meth:`Param.value`)."""
        out = {p.name: p.value(options) for p in self.params}
        if self.needs_steps:
            out["steps"] = _STEPS.value(options)
        return out

    def make(self, seed: int, **options: Any) -> Strategy:
        """The strategy for ``seed``; :class:`UsageError` if there is no per-seed one."""
        if self.build is None:
            raise UsageError(f"{self.name} is not a strategy per seed (it runs many "
                             "schedules itself); choose one of " + ", ".join(PER_SEED))
        return self.build(seed, self.options(options))

    def describe(self, **options: Any) -> str:
        """A short description of this configuration, e.g. ``pct d=4``."""
        if self.label is None:
            return self.name
        return self.label(self.options(options))


#: The expected run length; a common option (see the module docstring).
_STEPS = Param("steps", DEFAULT_RUN_STEPS,
               "expected length of a run in steps (measured, or the step budget)")


def _random(seed: int, o: Mapping[str, Any]) -> Strategy:
    return RandomStrategy(seed)


def _pct(seed: int, o: Mapping[str, Any]) -> Strategy:
    return PCTStrategy(seed, depth=o["pct_depth"], steps=o["steps"])


def _pos(seed: int, o: Mapping[str, Any]) -> Strategy:
    return POSStrategy(seed)


def _delay(seed: int, o: Mapping[str, Any]) -> Strategy:
    return DelayStrategy(seed)


def _portfolio(seed: int, o: Mapping[str, Any]) -> Strategy:
    return PortfolioStrategy(seed, steps=o["steps"])


STRATEGIES: dict[str, StrategySpec] = {spec.name: spec for spec in (
    StrategySpec(
        "portfolio", "seed i runs one strategy of a fixed rotation (delay, pct d=2, pos, "
                     "pct d=2, pct d=3); the default of every seed sweep",
        build=_portfolio, needs_steps=True, steps_for=_portfolio_needs_steps),
    StrategySpec(
        "random", "uniform choice among the runnable threads at every step; weak on bugs "
                  "that need one thread held off for long (a reader across a grace period)",
        build=_random),
    StrategySpec(
        "pct", "PCT: random priorities, d-1 change points per measured loop round; "
               "strong where one thread must be held at one step (a reader across a "
               "grace period); d=2 trails random by at most 3 failing seeds in 20 where "
               "random is best (detection benchmark)",
        params=(Param("pct_depth", 3, "PCT bug depth d: d-1 priority change points per "
                                      "measured loop round"),),
        build=_pct, label=lambda o: f"pct d={o['pct_depth']}", needs_steps=True),
    StrategySpec(
        "pos", "partial order sampling (races read from point labels); an updater "
               "spinning at a yield waits for every section under way, so it loses to "
               "random where a spinning updater must overtake a reader (detection "
               "benchmark)",
        build=_pos),
    StrategySpec(
        "delay", "uniform random, plus threads parked for up to six measured loop rounds "
                 "(one parking a round; when all are parked, the first due runs): random's "
                 "fine interleaving and PCT's long delays in one run; no depth to choose",
        build=_delay),
    StrategySpec(
        "dfs", "every interleaving with at most K preemptions, fewest first (not per seed)",
        params=(Param("max_preemptions", 2, "dfs: preemption bound", minimum=0),
                Param("max_schedules", 200, "dfs: schedules to run at most")),
        label=lambda o: f"dfs k={o['max_preemptions']}"),
)}

#: The strategy a sweep of seeds runs when none is named (CLI ``--seeds``, ``bisect``,
#: the pytest plugin, the mutant catalogue).
SWEEP_DEFAULT = "portfolio"

#: The names that build one strategy per seed, in registry order.
PER_SEED = tuple(name for name, spec in STRATEGIES.items() if spec.per_seed)

#: Kept for callers that list the per-seed controlled modes; same as :data:`PER_SEED`.
CONTROLLED_MODES = PER_SEED


def strategy_spec(name: str) -> StrategySpec:
    """The registry entry for ``name``; :class:`UsageError` naming the choices if none."""
    spec = STRATEGIES.get(name)
    if spec is None:
        raise UsageError(f"unknown scheduling strategy {name!r}; choose one of "
                         + ", ".join(STRATEGIES))
    return spec


def make_strategy(mode: str, seed: int, **options: Any) -> Strategy:
    """The strategy behind ``--sched MODE --seed SEED`` (options: see the registry).

    ``pct_steps`` is accepted as the older spelling of ``steps``.
    """
    if "pct_steps" in options:
        options.setdefault("steps", options.pop("pct_steps"))
    return strategy_spec(mode).make(seed, **options)


def describe_strategy(mode: str, **options: Any) -> str:
    """The short description of ``mode`` with ``options`` (``pct d=4``)."""
    return strategy_spec(mode).describe(**options)
