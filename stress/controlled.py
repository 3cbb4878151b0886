"""Controlled stress runs: the same workers, one model thread at a time, a seed decides.

A controlled run is built fresh by :func:`~stress.run.build` for every execution
(replay, shrinking, sweeps and exploration all re-run from scratch) and driven by the
harness (``rcu_pgdat.harness``): its threads are the run's workers plus the harness's
teardown thread, which waits for every worker to wind down and then shuts the callback
workers down inside the model; the checks at rest run after it, so that the whole run,
checks included, is a function of the schedule. Workers stop once the scheduler's
clock (steps) reaches ``RunConfig.steps``; the scheduler's own budget is larger
(``harness.step_budget``), so a run that cannot wind down (a grace period that never
ends) shows up as a livelock or a budget stall, never as a hang of the harness.

What the scheduler finds on its own becomes a violation of the run (``harness.settle``):
``deadlock``, ``livelock`` and ``stall``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, fields, replace
from typing import Callable

from rcu_pgdat.errors import TraceError
from rcu_pgdat.harness import Limits, Session, execute, replay, settle, shrink_same_kind
from rcu_pgdat.harness import step_budget
from rcu_pgdat.mm.topology import ZONE_NAMES
from rcu_pgdat.sched import Trace

from .build import Built, StressResult, build
from .config import RunConfig
from .plugins import plain_plugin_modules

__all__ = ["run_controlled", "limits", "instrumented", "livelock_bound", "wind_down_steps",
           "config_from_trace", "SweepReport", "sweep_seeds", "WIND_DOWN_STEPS"]

#: The least room a stress run gets to wind down after its workers' budget: a remover
#: finishing its cycle (an offline waits up to ``offline_timeout`` steps, a sleeper
#: sleeps up to ``sleep_time``) and the callback workers draining.
WIND_DOWN_STEPS = 20_000
#: Zonelist rebuilds a remover cycle under way may still do (offline, rollback, online,
#: with room to spare).
REBUILDS_PER_CYCLE = 4


def wind_down_steps(cfg: RunConfig) -> int:
    """Room to wind down that follows the machine: ``WIND_DOWN_STEPS`` plus the schedule
    points of the rebuilds a remover cycle may still do, each a point per zonelist
    entry of every node (nodes x nodes x zones), so a large machine is not a stall."""
    return WIND_DOWN_STEPS + REBUILDS_PER_CYCLE * cfg.nodes * cfg.nodes * len(ZONE_NAMES)


def livelock_bound(cfg: RunConfig) -> int:
    """Steps without a completed grace period that count as a livelock."""
    return max(20000, cfg.steps)


def limits(cfg: RunConfig) -> Limits:
    """The bounds of a controlled run of ``cfg``; the trace carries its parameters."""
    return Limits(max_steps=step_budget(cfg.steps, wind_down_steps(cfg)),
                  hang_timeout=cfg.stall_timeout, livelock_steps=livelock_bound(cfg),
                  meta={"params": cfg.as_dict()}, intercept=cfg.intercept,
                  instrument=instrumented(cfg))


def instrumented(cfg: RunConfig) -> tuple[str, ...]:
    """The modules whose shared accesses are schedule points in a controlled run of
    ``cfg``: those ``--instrument`` names, then its plain-threading plug-ins unless
    ``cfg.instrument_plugins`` is off."""
    plain = plain_plugin_modules((cfg.flavor, cfg.srcu)) if cfg.instrument_plugins else ()
    return cfg.instrument + tuple(m for m in plain if m not in cfg.instrument)


def run_controlled(cfg: RunConfig) -> StressResult:
    """One controlled run of ``cfg``: a seed's schedule, ``cfg.replay``'s, or DFS's.

    With ``cfg.shrink_runs`` a failing schedule is shrunk (fewer preemptions, fewer
    steps) before it is reported. Raises ``TraceError`` for a replay that departs.
    """
    session: Session[Built] = Session(functools.partial(build, cfg, controlled=True))
    bounds = limits(cfg)
    started = time.monotonic()
    explored = None
    if cfg.replay is not None:
        result = replay(session, Trace.load(cfg.replay), bounds)
    else:
        done = execute(session, cfg.sched, cfg.seed, bounds, cfg.strategy_options())
        result, explored = done.result, done.explored
        if (cfg.shrink_runs and result.trace is not None
                and session.latest().first_violation() is not None):
            result = shrink_same_kind(session, result, bounds, cfg.shrink_runs)
    built = session.latest()
    settle(built, result, budget_hint="Workers stop at --steps; a run that cannot wind "
           "down within as many steps again waits for something that never happens.")
    return built.result(cfg, time.monotonic() - started, schedule=result, explored=explored)


def config_from_trace(path: str) -> RunConfig:
    """The run parameters a trace file was recorded with (``--replay FILE``), not yet
    validated (``RunConfig.validate`` says what is wrong with them)."""
    trace = Trace.load(path)
    params = trace.meta.get("params") if isinstance(trace.meta, dict) else None
    if not isinstance(params, dict):
        raise TraceError(f"{path}: this trace does not come from rcu-pgdat-stress (no run "
                         "parameters in its meta); replay it with rcu_pgdat.sched.replay")
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise TraceError(f"{path}: unknown run parameters {unknown}: recorded by another "
                         "version of rcu-pgdat-stress")
    values = dict(params, replay=path, shrink_runs=0)
    # Recorded before plain plug-ins were instrumented by default: they ran without it.
    values.setdefault("instrument_plugins", False)
    for name in ("inject", "instrument"):             # JSON has lists, not tuples
        if isinstance(values.get(name), list):
            values[name] = tuple(values[name])
    return RunConfig(**values)


@dataclass
class SweepReport:
    """A sweep of seeds: how many failed, and the first failing run."""

    seeds: range
    failed: list[int]
    first: StressResult | None
    runs: int

    def summary(self) -> str:
        """One line, rcutorture-style."""
        lo, hi = self.seeds.start, self.seeds.stop - 1
        if not self.failed:
            return f"Seed sweep {lo}-{hi}: {self.runs} runs, 0 failed"
        return (f"!!! Seed sweep {lo}-{hi}: {self.runs} runs, {len(self.failed)} failed "
                f"(seeds {', '.join(map(str, self.failed[:10]))}"
                f"{', ...' if len(self.failed) > 10 else ''}); first failing seed "
                f"{self.failed[0]}")


def sweep_seeds(cfg: RunConfig, seeds: range,
                progress: Callable[[int, StressResult], None] | None = None) -> SweepReport:
    """Run ``cfg`` once per seed; keep the first failing run (shrunk if asked)."""
    failed: list[int] = []
    first: StressResult | None = None
    for seed in seeds:
        result = run_controlled(replace(cfg, seed=seed,
                                        shrink_runs=cfg.shrink_runs if first is None else 0))
        if progress is not None:
            progress(seed, result)
        if result.violations:
            failed.append(seed)
            if first is None:
                first = result
    return SweepReport(seeds, failed, first, len(seeds))
