"""Seeds to catch: every mutant of the catalogue under every strategy, default settings.

What a user gets when they sweep seeds is what this measures. For every target (each
mutant of ``rcu_pgdat.mutants``, run as the catalogue runs it: the default
configuration plus only what the mutant structurally needs, ``catalogue_config``; and
any RCU plug-in named with ``--plugins``) and every strategy (free-running stress;
controlled random, PCT at each depth of :data:`PCT_DEPTHS` (the depths the portfolio
runs), POS, delay and the portfolio), seeds
``1..N`` each run once. A run *fails* when it reports the violation the target must
cause (a mutant's ``caught_by``; for a plug-in, any violation); a run that reports
something else is counted apart, as a harness problem.

Per target and strategy the table gives the first failing seed and the fraction of
seeds that fail (``3 (7/20)``; ``-`` : none). The summary rows give, per strategy, how
many targets it caught within the N seeds and the median of the first failing seeds (a
target never caught counts as endless: a censored median). The notes say, for each
target, how many seeds the portfolio needed against the best single strategy, and the
worst such ratio.

Runs go to at most two worker processes (the machines this runs on have two cores and
are shared); seeds of one cell are independent runs, so the order they complete in does
not matter. A free-running seed lasts :data:`FREE_SECONDS` (its seed fixes its own random
yields, the OS decides the rest). ``--quick`` measures a subset: every third target, the
first few seeds, shorter runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ._common import Options, Section, median

__all__ = ["Target", "STRATEGY_COLUMNS", "PCT_DEPTHS", "catalogue_targets",
           "plugin_targets", "matrix", "section"]

#: PCT depths measured, each its own column.
PCT_DEPTHS = (2, 3)
#: Columns: (label, ``RunConfig`` values). ``stress`` is free-running.
STRATEGY_COLUMNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("stress", {"sched": "stress"}),
    ("random", {"sched": "random"}),
    *((f"pct d={d}", {"sched": "pct", "pct_depth": d}) for d in PCT_DEPTHS),
    ("pos", {"sched": "pos"}),
    ("delay", {"sched": "delay"}),
    ("portfolio", {"sched": "portfolio"}),
)
#: Seconds of one free-running seed (full, quick).
FREE_SECONDS = (2.0, 0.5)
#: Worker processes at most.
JOBS = 2


@dataclass(frozen=True)
class Target:
    """A bug to catch: run parameters, and (for a mutant) its name for ``caught_by``."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    mutant: str | None = None


def catalogue_targets() -> list[Target]:
    """One target per mutant, with the catalogue's parameters (defaults + needs)."""
    from rcu_pgdat.mutants import MUTANTS, catalogue_config
    return [Target(name, catalogue_config(m), name) for name, m in MUTANTS.items()]


def plugin_targets(specs: Sequence[str]) -> list[Target]:
    """A target per ``MODULE:ATTR`` RCU plug-in (``--flavor``); any violation counts."""
    return [Target(spec, {"flavor": spec}) for spec in specs]


def _run(target: Target, column: dict[str, Any], seed: int, steps: int,
         seconds: float) -> tuple[str, str]:
    """One seed: ``("caught", kind)``, ``("other", kind)`` or ``("clean", "")``."""
    from rcu_pgdat.mutants import MUTANTS
    from stress.config import RunConfig
    from stress.run import run
    cfg = RunConfig(**{**target.config, **column, "seed": seed, "steps": steps,
                       "duration": seconds, "status_interval": 1e9})
    result = run(cfg, status=None)
    if not result.violations:
        return "clean", ""
    first = result.violations[0]
    mutant = MUTANTS.get(target.mutant) if target.mutant else None
    if mutant is None or mutant.caught_by(first.kind, first.subject):
        return "caught", first.kind.value
    return "other", first.kind.value


def _job(args: tuple[Target, str, dict[str, Any], int, int, float]) -> tuple[str, str, int,
                                                                          str, str]:
    target, label, column, seed, steps, seconds = args
    try:
        verdict, kind = _run(target, column, seed, steps, seconds)
    except Exception as exc:  # noqa: BLE001 - shown in the notes, never hidden
        verdict, kind = "error", f"{type(exc).__name__}: {exc}"
    return target.name, label, seed, verdict, kind


@dataclass
class Cell:
    """The seeds of one target under one strategy."""

    seeds: int = 0
    failing: list[int] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    @property
    def first(self) -> float:
        """The first failing seed (``inf``: none)."""
        return float(min(self.failing)) if self.failing else math.inf

    @property
    def expected(self) -> float:
        """Expected seeds to catch: seeds run over seeds that failed (``inf``: none).

        Less noisy than :attr:`first`, which is one draw of a geometric variable (and
        the best of several columns' first seeds is biased low)."""
        return self.seeds / len(self.failing) if self.failing else math.inf

    def text(self) -> str:
        head = f"{min(self.failing)}" if self.failing else "-"
        return f"{head} ({len(self.failing)}/{self.seeds})"


def matrix(targets: Sequence[Target], seeds: int, steps: int, seconds: float,
           jobs: int = JOBS, opts: Options | None = None) -> dict[str, dict[str, Cell]]:
    """``{target: {strategy label: Cell}}`` over seeds ``1..seeds``."""
    work = [(t, label, column, seed, steps, seconds) for t in targets
            for label, column in STRATEGY_COLUMNS for seed in range(1, seeds + 1)]
    out = {t.name: {label: Cell() for label, _ in STRATEGY_COLUMNS} for t in targets}
    done = 0
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, os.cpu_count() or 1))) as pool:
        for name, label, seed, verdict, kind in pool.map(_job, work, chunksize=4):
            cell = out[name][label]
            cell.seeds += 1
            if verdict == "caught":
                cell.failing.append(seed)
            elif verdict in ("other", "error"):
                cell.other.append(f"seed {seed}: {verdict} {kind}")
            done += 1
            if opts is not None and done % 100 == 0:
                opts.say(f"  detection: {done}/{len(work)} runs")
    return out


def _censored_median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.inf
    mid = len(ordered) // 2
    if len(ordered) % 2 or math.isinf(ordered[mid]):
        return ordered[mid]
    return median(ordered[mid - 1:mid + 1])


#: Columns whose seeds are not controlled runs of ``--steps`` steps (a free-running seed
#: lasts FREE_SECONDS): not compared with the portfolio, whose seeds are.
FREE_COLUMNS = ("stress",)


def portfolio_ratios(got: dict[str, dict[str, Cell]],
                     metric: str = "expected") -> dict[str, float]:
    """Per target: the portfolio's seeds to catch over the best single controlled
    strategy's (``inf`` if only the others caught it), by ``metric``: ``expected``
    (:attr:`Cell.expected`) or ``first`` (:attr:`Cell.first`)."""
    out: dict[str, float] = {}
    for name, cells in got.items():
        best = min(getattr(c, metric) for label, c in cells.items()
                   if label != "portfolio" and label not in FREE_COLUMNS)
        if math.isfinite(best):
            out[name] = getattr(cells["portfolio"], metric) / best
    return out


def _ratio_note(ratios: dict[str, float], what: str) -> str:
    worst = max(ratios.items(), key=lambda kv: kv[1])
    over = ", ".join(f"{n} {r:.3g}x" for n, r in ratios.items() if r > 2)
    return (f"Portfolio / best single controlled strategy, {what}: worst {worst[1]:.3g}x "
            f"({worst[0]}); over 2x: {over or 'none'}")


def section(opts: Options, targets: Sequence[Target] | None = None) -> Section:
    """The seeds-to-catch table (see the module docstring)."""
    if targets is None:
        targets = catalogue_targets()
        if opts.quick:
            targets = targets[::3]
        targets = [*targets, *plugin_targets(opts.plugins)]
    seeds = opts.pick(4, 20)
    steps = opts.pick(5_000, 20_000)
    seconds = FREE_SECONDS[1] if opts.quick else FREE_SECONDS[0]
    got = matrix(targets, seeds, steps, seconds, opts=opts)
    labels = [label for label, _ in STRATEGY_COLUMNS]
    rows: list[list[Any]] = [[t.name, *(got[t.name][label].text() for label in labels)]
                             for t in targets]
    caught = [sum(math.isfinite(got[t.name][label].first) for t in targets)
              for label in labels]
    rows.append([f"caught within {seeds} seeds", *(f"{c}/{len(targets)}" for c in caught)])
    medians = [_censored_median([got[t.name][label].first for t in targets])
               for label in labels]
    rows.append(["median seeds to catch",
                 *(f"{m:g}" if math.isfinite(m) else "never" for m in medians)])
    rows.append(["expected seeds to catch (N/failures), median", *(
        _fmt(_censored_median([got[t.name][label].expected for t in targets]))
        for label in labels)])
    ratios = portfolio_ratios(got)
    firsts = portfolio_ratios(got, "first")
    notes = [f"Seeds 1..{seeds} per cell, --steps {steps} (controlled), {seconds:g} s a "
             "seed (stress, free-running); default configuration plus what each mutant "
             "needs. Cell: first failing seed (failing seeds / seeds); '-': none failed. "
             f"PCT depths {', '.join(map(str, PCT_DEPTHS))}; portfolio: seed i runs entry "
             "i of its rotation (rcu_pgdat.sched.portfolio)."]
    if ratios:
        notes.append(_ratio_note(ratios, "expected seeds to catch"))
        notes.append(_ratio_note(firsts, "first failing seed"))
    notes.append("Expected seeds to catch (N/failures; '-': none), per target: " + "; ".join(
        f"{t.name}: " + ", ".join(f"{label} {_fmt(got[t.name][label].expected)}"
                                  for label in labels) for t in targets))
    notes += [f"!!! {name} / {label}: {c.other[0]}" + (f" (+{len(c.other) - 1})"
                                                       if len(c.other) > 1 else "")
              for name, cells in got.items() for label, c in cells.items() if c.other]
    data = {name: {label: {"failing": c.failing, "seeds": c.seeds, "other": c.other}
                   for label, c in cells.items()} for name, cells in got.items()}
    return Section("detection", "Seeds to catch each mutant, per strategy (default settings)",
                   ["target", *labels], rows, notes,
                   data={"seeds": seeds, "steps": steps, "free_seconds": seconds,
                         "targets": data, "portfolio_ratios": ratios,
                         "portfolio_first_ratios": firsts})


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "-"
