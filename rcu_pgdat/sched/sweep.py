"""Seed sweeps: a program run once per seed under one scheduling mode, failures counted.

Built on ``runner`` (one run) and ``shrink`` (a failing schedule made small), so that
neither of those needs the other's caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ._base import Scheduler
from .controlled import RunResult
from .runner import FREE_MODES, ProgramFactory, calibrate_steps, run_free, run_program
from .shrink import shrink
from .strategies import strategy_spec
from .stress import StressScheduler

__all__ = ["SweepResult", "sweep"]


@dataclass
class SweepResult:
    """How many of a range of seeds failed, and the first failing run."""

    mode: str
    seeds: range
    runs: int
    failing_seeds: list[int]
    first: RunResult | None
    params: dict[str, Any]
    #: ``first`` shrunk (``sweep(..., shrink_first=True)``, controlled modes only).
    shrunk: RunResult | None = None
    #: What each seed ran (``Strategy.summary()``: ``pct d=4``), controlled modes only.
    ran: dict[int, str] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return len(self.failing_seeds)

    @property
    def first_seed(self) -> int | None:
        return self.failing_seeds[0] if self.failing_seeds else None

    def summary(self) -> str:
        """One line: ``pct: 3 of 200 seeds failed (first: seed 17, deadlock)``."""
        ran = self.seeds[:self.runs]
        span = f"seeds {ran.start}..{ran.start + (len(ran) - 1) * ran.step}" if ran else "no seeds"
        if self.first is None:
            return f"{self.mode}: no failure in {self.runs} runs ({span})"
        label = self.ran.get(self.first_seed) if self.first_seed is not None else None
        what = f", {label}" if label and label != self.mode else ""
        return (f"{self.mode}: {self.failures} of {self.runs} runs failed ({span}; first: "
                f"seed {self.first_seed}{what}, {self.first.outcome.value})")


def sweep(make_program: ProgramFactory, mode: str = "random",
          seeds: range = range(100), *, stop_at_first: bool = False,
          options: Mapping[str, Any] | None = None, pct_depth: int | None = None,
          pct_steps: int | None = None, yield_probability: float = 0.05,
          free_timeout: float = 5.0, shrink_first: bool = False,
          **run_opts: Any) -> SweepResult:
    """Run ``make_program`` once per seed under ``mode`` (a per-seed strategy of the
    registry, ``stress`` or ``naive``).

    ``options`` are the strategy's options (see ``strategies.STRATEGIES``);
    ``pct_depth`` and ``pct_steps`` are shorthands for ``pct_depth`` and ``steps``
    there. A strategy that needs the run length gets :func:`calibrate_steps` unless
    ``steps`` is given. ``stress`` runs free with a :class:`StressScheduler` per seed,
    ``naive`` with the default scheduler (the seed only counts runs); neither has a
    trace and the OS decides too. With ``shrink_first`` the first failing controlled
    run is shrunk (``SweepResult.shrunk``) so that it can be reported small.
    """
    params: dict[str, Any] = {}
    if mode not in FREE_MODES:
        spec = strategy_spec(mode)
        given = dict(options or {})
        if pct_depth is not None:
            given["pct_depth"] = pct_depth
        if pct_steps is not None:
            given["steps"] = pct_steps
        calibrate = given.get("steps") is None and any(spec.needs_steps_for(s) for s in seeds)
        if calibrate:
            given["steps"] = calibrate_steps(make_program, **run_opts)
        params = spec.options(given)
    failing: list[int] = []
    ran: dict[int, str] = {}
    first: RunResult | None = None
    runs = 0
    for seed in seeds:
        runs += 1
        if mode in FREE_MODES:
            scheduler = (Scheduler() if mode == "naive" else
                         StressScheduler(seed=seed, yield_probability=yield_probability))
            result = run_free(make_program, scheduler, timeout=free_timeout)
        else:
            strategy = spec.make(seed, **params)
            ran[seed] = strategy.summary()
            result = run_program(make_program, strategy, **run_opts)
        if result.failed:
            failing.append(seed)
            if first is None:
                first = result
            if stop_at_first:
                break
    shrunk = None
    if shrink_first and first is not None and first.trace is not None:
        shrunk = shrink(make_program, first, **run_opts)
    return SweepResult(mode, seeds, runs, failing, first, params, shrunk, ran)
