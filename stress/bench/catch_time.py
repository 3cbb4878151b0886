"""Time to catch each known bug: controlled PCT, random and DFS, free stress, naive threads.

A verifier is only as good as how fast it finds bugs. For every :class:`Target` (a name
and how to run it) and every scheduling mode, a *trial* runs the target again and again
with fresh seeds until one run shows the bug or the trial's wall-clock budget is spent;
the trial's figures are its seconds (every run, setup included) and its number of runs
(seeds to find). Trials of all targets and modes take turns, so a drift of the machine
hits all alike; the median trial counts, a miss counting as endless (a censored sample:
the median is finite only when most trials caught the bug).

Modes:

``pct`` / ``random``
    the controlled scheduler (``rcu_pgdat.sched.run_program``): one model thread runs
    between two schedule points, a seeded strategy picks which; PCT (depth 3) gets the
    program's length, calibrated once per target (``sched.calibrate_steps``);
``dfs``
    systematic exploration of every schedule with at most two preemptions
    (``sched.explore``); deterministic, so for a program "runs" is schedules tried; its
    ``max_schedules`` is sized from the budget and one calibration run (a model run's
    too, through ``RunConfig.max_schedules``, where one exploration is one "run");
``stress``
    real threads with a seeded ``StressScheduler`` (random yields at schedule points, a
    tiny switch interval): what ``rcu-pgdat-stress`` runs;
``naive``
    real threads and nothing else: the default scheduler (points do nothing) and the
    interpreter's default switch interval. The reference: how long plain threading
    takes to show the bug, if it ever does.

A target's *program* (a ``sched.Program`` factory) runs in every mode; its *run
configuration* (``stress.run.RunConfig`` fields) runs in the modes ``stress.run``
supports (``stress.run.SCHED_MODES``). A mode a target cannot run in is n/a, never
guessed; a cell whose runs raised shows ``error`` and the exception is in the notes.
A failure counts only when ``Target.expect`` recognizes it as the bug (a false deadlock
of the harness is not a catch).

Plugging in a catalogue: build ``Target(name, make_program=..., run_config=...,
expect=...)`` entries and pass them to :func:`time_to_catch` or :func:`section`.
:func:`race_targets` does so for ``rcu_pgdat.sched.examples.RACES`` (the narrow races
``bench --only seeds`` sweeps) and :func:`model_targets` for the mutant catalogue
(``rcu_pgdat.mutants``, with ``--mutants``: 23 whole-model targets, several minutes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rcu_pgdat import sched
from rcu_pgdat.check import Kind, ViolationError
from stress import run as stress_run

from ._common import Options, Section, controlled_missing, median
from .targets import NO_WAIT_FLAVOR, no_wait_program, wrong_flavor_program

__all__ = ["MODES", "Target", "Trial", "default_targets", "race_targets", "model_targets",
           "catch_once", "time_to_catch", "section"]

#: Scheduling modes, in table order; ``naive`` is the reference of the ratios.
MODES = ("pct", "random", "dfs", "stress", "naive")
#: Modes that need the controlled scheduler.
CONTROLLED = ("pct", "random", "dfs")
#: Bound of one controlled run, in steps (a program run that reaches it just did not fail).
MAX_STEPS = 20_000
#: Wall-clock bound of one program run (a free-running run that hangs, a stuck thread).
RUN_TIMEOUT = 5.0
#: Preemption bound of the ``dfs`` mode.
DFS_PREEMPTIONS = 2


@dataclass
class Target:
    """A bug to catch and how to run it: a program factory and/or a model configuration."""

    name: str
    make_program: sched.ProgramFactory | None = None
    run_config: Mapping[str, Any] | None = None
    note: str = ""
    #: ``expect(kind, subject)``: whether a failure is this bug's (``None``: any failure
    #: is). Model runs pass each violation's kind and subject; programs pass the kind
    #: and subject of a ``ViolationError`` a thread raised, else the run's outcome
    #: (``failed``, ``deadlock``, ...) and the first error's one-line summary.
    expect: Callable[[str, str], bool] | None = None

    def can_run(self, mode: str) -> bool:
        """Whether this target has a way to run under ``mode``."""
        if self.make_program is not None:
            return controlled_missing() is None      # run_program and run_free alike
        return self.run_config is not None and mode in stress_run.SCHED_MODES

    def how(self) -> str:
        """``program`` or ``model run`` (what a mode will execute)."""
        return "program" if self.make_program is not None else "model run"


@dataclass
class Trial:
    """One trial: caught or not within the budget, seconds spent, runs (seeds) used."""

    caught: bool
    seconds: float
    runs: int
    detail: str = ""
    #: The trial could not be made: the harness raised (its text is in ``detail``).
    error: bool = False


@dataclass
class _Calibration:
    """Per-target facts measured once: PCT's run length, one run's wall time."""

    pct_steps: dict[str, int] = field(default_factory=dict)
    run_seconds: dict[str, float] = field(default_factory=dict)


def _use_after_free(kind: str, subject: str) -> bool:
    return kind == Kind.USE_AFTER_FREE


def _assertion(kind: str, subject: str) -> bool:
    return kind == "failed" and subject.startswith("AssertionError")


def default_targets() -> list[Target]:
    """What exists today: our two programs, the scheduler's races, two model mutants."""
    return [
        Target("no-wait-rcu", make_program=no_wait_program, expect=_use_after_free,
               note="a flavor whose synchronize() does not wait; reader and updater"),
        Target("wrong-flavor-wait", make_program=wrong_flavor_program,
               expect=_use_after_free,
               note="SRCU reader, RCU grace period: the posted RFC in miniature"),
        *race_targets(),
        Target("posted remover", run_config={"remover": "posted"},
               note="RunConfig(remover='posted'): the RFC as posted, whole model"),
        Target("no-wait-rcu flavor", run_config={"flavor": NO_WAIT_FLAVOR},
               note=f"RunConfig(flavor='{NO_WAIT_FLAVOR}'), whole model"),
    ]


def race_targets(work: int = 6) -> list[Target]:
    """The broken variant of every race in ``rcu_pgdat.sched.examples`` (if it exists)."""
    try:
        from rcu_pgdat.sched.examples import RACES
    except ImportError:
        return []
    return [Target(f"race:{name}", make_program=make(correct=False, work=work),
                   expect=_assertion,
                   note=f"rcu_pgdat.sched.examples.{make.__name__}, work={work}")
            for name, make in RACES.items()]


def model_targets() -> list[Target]:
    """One whole-model target per entry of the mutant catalogue (``rcu_pgdat.mutants``),
    run with the catalogue's own parameters (``catalogue_config``); ``[]`` without it."""
    try:
        from rcu_pgdat.mutants import MUTANTS, catalogue_config
    except ImportError:
        return []
    return [Target(f"mutant:{m.name}", run_config=catalogue_config(m),
                   note=f"{m.component}: {m.bug}", expect=m.caught_by)
            for m in MUTANTS.values()]


def _classify(target: Target, result: sched.RunResult) -> tuple[bool, str]:
    """Whether a program run shows the target's bug, and a few words on what it showed."""
    if not result.failed:
        return False, result.outcome.value
    kind, subject = result.outcome.value, ""
    if result.errors:
        exc = result.errors[0].exc
        if isinstance(exc, ViolationError):
            kind, subject = str(exc.violation.kind), exc.violation.subject
        else:
            subject = result.errors[0].summary()
    if target.expect is None or target.expect(kind, subject):
        return True, f"{kind} {subject}".strip()
    return False, f"another failure: {kind} {subject}".strip()


def _program_run(target: Target, mode: str, seed: int, cal: _Calibration) -> sched.RunResult:
    make = target.make_program
    assert make is not None
    if mode == "pct":
        steps = cal.pct_steps.get(target.name)
        if steps is None:
            steps = cal.pct_steps[target.name] = sched.calibrate_steps(make)
        return sched.run_program(make, sched.make_strategy(mode, seed, pct_steps=steps),
                                 max_steps=MAX_STEPS, hang_timeout=RUN_TIMEOUT)
    if mode == "random":
        return sched.run_program(make, sched.make_strategy(mode, seed),
                                 max_steps=MAX_STEPS, hang_timeout=RUN_TIMEOUT)
    if mode == "stress":
        return sched.run_free(make, sched.StressScheduler(seed=seed), timeout=RUN_TIMEOUT)
    return sched.run_free(make, sched.Scheduler(), timeout=RUN_TIMEOUT)


def _dfs(target: Target, budget: float, cal: _Calibration) -> Trial:
    """One exploration, its schedule count sized to fit ``budget`` (see the module doc)."""
    make = target.make_program
    assert make is not None
    start = time.perf_counter()
    per_run = cal.run_seconds.get(target.name)
    if per_run is None:
        sched.run_program(make, sched.RandomStrategy(0), max_steps=MAX_STEPS)
        per_run = cal.run_seconds[target.name] = max(1e-5, time.perf_counter() - start)
    found = sched.explore(make, max_preemptions=DFS_PREEMPTIONS,
                          max_schedules=max(1, int(budget / per_run)),
                          max_steps=MAX_STEPS, hang_timeout=RUN_TIMEOUT)
    seconds = time.perf_counter() - start
    if found.failure is not None:
        caught, detail = _classify(target, found.failure)
        if caught:
            return Trial(True, seconds, found.schedules, detail)
        return Trial(False, seconds, found.schedules, f"not caught ({detail})")
    state = "space exhausted" if found.exhausted else "schedule budget spent"
    return Trial(False, seconds, found.schedules, f"not caught ({state})")


def _model_config(target: Target, mode: str, seed: int, duration: float,
                  **extra: Any) -> stress_run.RunConfig:
    assert target.run_config is not None
    return stress_run.RunConfig(**{**target.run_config, "sched": mode, "seed": seed,
                                   "duration": max(duration, 0.05), "status_interval": 1e9,
                                   **extra})


#: ``RunConfig`` fields that plug a bug in; without them a target's configuration is its
#: clean twin of the same size (what one exploration step costs when nothing fails).
BUG_FIELDS = ("flavor", "srcu", "remover", "mutant", "inject")


def _dfs_schedules(target: Target, budget: float, cal: _Calibration) -> dict[str, Any]:
    """``max_schedules`` for a model exploration that fits ``budget``; empty if
    ``RunConfig`` has no such knob.

    One timed run of the target's *clean twin* under ``random`` sizes it: a run of the
    buggy configuration would end early when it catches the bug, and the schedules an
    exploration runs without catching it are full-length ones.
    """
    if "max_schedules" not in stress_run.RunConfig.__dataclass_fields__:
        return {}
    per_run = cal.run_seconds.get(target.name)
    if per_run is None:
        assert target.run_config is not None
        clean = Target(target.name, run_config={k: v for k, v in target.run_config.items()
                                                if k not in BUG_FIELDS})
        start = time.perf_counter()
        stress_run.run(_model_config(clean, "random", 0, budget), status=None)
        per_run = cal.run_seconds[target.name] = max(1e-3, time.perf_counter() - start)
    return {"max_schedules": max(1, int(budget / per_run))}


def _model_run(target: Target, mode: str, seed: int, duration: float,
               cal: _Calibration) -> tuple[bool, str]:
    extra = _dfs_schedules(target, duration, cal) if mode == "dfs" else {}
    result = stress_run.run(_model_config(target, mode, seed, duration, **extra), status=None)
    for v in result.violations:
        if target.expect is None or target.expect(str(v.kind), v.subject):
            return True, str(v.kind)
    if result.violations:
        return False, f"another violation: {result.violations[0].title}"
    return False, "clean"


def catch_once(target: Target, mode: str, seed: int, budget: float,
               cal: _Calibration | None = None) -> Trial | None:
    """Run ``target`` under ``mode`` with seeds ``seed, seed + 1, ...`` until it is caught
    or ``budget`` seconds are spent; ``None`` if the target cannot run in ``mode``."""
    if not target.can_run(mode):
        return None
    cal = cal or _Calibration()
    if mode == "dfs" and target.make_program is not None:
        return _dfs(target, budget, cal)
    if mode == "dfs":                              # one exploration: it has no seed
        _dfs_schedules(target, budget, cal)       # calibrate before the clock starts
        start = time.perf_counter()
        caught, detail = _model_run(target, mode, seed, budget, cal)
        return Trial(caught, time.perf_counter() - start, 1,
                     detail if caught else f"not caught ({detail})")
    start = time.perf_counter()
    runs = 0
    detail = ""
    while True:
        left = budget - (time.perf_counter() - start)
        if runs and left <= 0:
            return Trial(False, time.perf_counter() - start, runs,
                         f"not caught (last run: {detail})")
        runs += 1
        if target.make_program is not None:
            caught, detail = _classify(target, _program_run(target, mode, seed + runs - 1, cal))
        else:
            caught, detail = _model_run(target, mode, seed + runs - 1, left, cal)
        if caught:
            return Trial(True, time.perf_counter() - start, runs, detail)


def time_to_catch(targets: Sequence[Target], modes: Sequence[str] = MODES, trials: int = 3,
                  budget: float = 5.0, seed: int = 1,
                  opts: Options | None = None) -> dict[str, dict[str, list[Trial]]]:
    """``{target: {mode: [trials]}}``; modes a target cannot run in have no entry."""
    cal = _Calibration()
    out: dict[str, dict[str, list[Trial]]] = {t.name: {} for t in targets}
    for k in range(trials):
        for target in targets:
            for mode in modes:                      # side by side: see the module doc
                start = time.perf_counter()
                try:
                    trial = catch_once(target, mode, seed + 1000 * k, budget, cal)
                except Exception as exc:  # noqa: BLE001 - shown in the table, not hidden
                    trial = Trial(False, time.perf_counter() - start, 0,
                                  f"{type(exc).__name__}: {exc}", error=True)
                if trial is not None:
                    out[target.name].setdefault(mode, []).append(trial)
        if opts is not None:
            opts.say(f"  detection: trial {k + 1}/{trials} done")
    return out


def _censored_median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return math.inf if math.isinf(ordered[mid]) else median(ordered)


def summarize(trials: list[Trial]) -> tuple[int, float, float]:
    """(caught count, median seconds, median runs), a miss counting as endless."""
    caught = sum(t.caught for t in trials)
    seconds = [t.seconds if t.caught else math.inf for t in trials]
    runs = [float(t.runs) if t.caught else math.inf for t in trials]
    return caught, _censored_median(seconds), _censored_median(runs)


def _cell(trials: list[Trial] | None, budget: float) -> str | None:
    """``0.062 s (16)``: median seconds (median runs); ``>4 s`` when most trials missed."""
    if not trials:
        return None
    if any(t.error for t in trials):
        return "error"
    caught, secs, runs = summarize(trials)
    some = "" if caught in (0, len(trials)) else f" [{caught}/{len(trials)}]"
    if not math.isfinite(secs):
        return f">{budget:g} s{some}"
    return f"{secs:.3g} s ({runs:,.0f}){some}"


def _speedup(mode_trials: list[Trial] | None, naive: list[Trial] | None,
             budget: float) -> float | str | None:
    """Naive threads' median seconds / this mode's; ``>x`` when naive threads missed."""
    if not mode_trials or not naive or any(t.error for t in mode_trials + naive):
        return None
    secs = summarize(mode_trials)[1]
    naive_s = summarize(naive)[1]
    if not math.isfinite(secs):
        return None
    if math.isfinite(naive_s):
        return naive_s / secs
    return f">{budget / secs:.3g}"


def section(opts: Options, targets: Sequence[Target] | None = None,
            trials: int | None = None, budget: float | None = None) -> Section:
    """The detection table: per target, each mode's median seconds (runs) to catch, and
    how many times faster than naive threads PCT and stress are. ``targets``,
    ``trials`` and ``budget`` (seconds per trial) default to what ``opts`` asks for."""
    if targets is None:
        targets = default_targets() + (model_targets() if opts.mutants else [])
    trials = trials or opts.pick(1, 3)
    budget = budget or opts.pick(0.4, 2.0)
    got = time_to_catch(targets, MODES, trials, budget, opts.seed, opts)
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    for target in targets:
        per_mode = got[target.name]
        naive = per_mode.get("naive")
        rows.append([target.name, *(_cell(per_mode.get(m), budget) for m in MODES),
                     _speedup(per_mode.get("pct"), naive, budget),
                     _speedup(per_mode.get("stress"), naive, budget)])
        data[target.name] = {"how": target.how(), "note": target.note,
                             "modes": {m: [asdict(t) for t in ts] for m, ts in per_mode.items()}}
    notes = [f"Median seconds to catch (median runs, i.e. seeds or schedules to find) of "
             f"{trials} trials, budget {budget:g} s each, all cells interleaved; a trial "
             "runs fresh seeds until one run shows the bug. '>' : most trials missed; "
             "[k/n] : only k of n trials caught it. 'x naive' = naive threads' median "
             "seconds / the mode's ('>' when naive threads missed: a lower bound). "
             "pct = PCT depth 3; dfs = every schedule with at most "
             f"{DFS_PREEMPTIONS} preemptions."]
    notes += [f"* {t.name} ({t.how()}): {t.note}" for t in targets if t.note]
    missing = controlled_missing()
    if missing is not None:
        notes.append(f"Controlled modes not available: {missing}.")
    absent = [m for m in MODES if m not in stress_run.SCHED_MODES]
    if absent:
        notes.append(f"Model runs cannot use {', '.join(absent)} (stress.run.SCHED_MODES = "
                     f"{', '.join(stress_run.SCHED_MODES)}): n/a.")
    notes += [f"!!! {name} / {mode}: {t.detail}" for name, per_mode in got.items()
              for mode, ts in per_mode.items() for t in ts[:1] if t.error]
    return Section("detection", "Time to catch each known bug",
                   ["target", *MODES, "pct x naive", "stress x naive"], rows, notes,
                   data={"trials": trials, "budget": budget, "targets": data})
