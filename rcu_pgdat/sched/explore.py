"""Systematic exploration: every interleaving with at most K preemptions, fewest first.

Iterative context bounding, as CHESS does it (Musuvathi and Qadeer, PLDI 2007). A
schedule is the sequence of thread names chosen at each step. Switching away from a
thread that could go on (it stopped at a schedule point) is a *preemption*; switching
after it blocked or finished is free. Most concurrency bugs need very few preemptions,
and the number of schedules with at most K preemptions grows polynomially in the
program's length (not exponentially), so small bounds explore small programs fully.

Why it is correct (each schedule with <= K preemptions runs exactly once)
--------------------------------------------------------------------------
A run is given a *prefix* and follows it, then goes on non-preemptively
(``Decision.default``). After the run, every step ``i`` at or past the end of the prefix
offers its other candidates ``c``: the prefix ``chosen[:i] + (c,)`` is queued in the
worklist of its preemption count (preemptions before ``i``, plus one if ``c`` preempts).
Invariant W: every schedule of bound <= K is the default continuation of exactly one
queued prefix, the one ending at its last departure from the default; the prefix's
siblings are queued only by the run that first went past their branching step, so
nothing is queued twice. Worklists are drained in bound order (0, then 1, ...), which
gives "fewest preemptions first".

The obvious version, plain DFS with backtracking that counts preemptions, finds the
same set but in depth-first order: with K=2 it may spend its whole budget on 2-preemption
schedules under the first branch while a 1-preemption bug waits in the second.

A candidate may be a blocked waiter that only *might* be able to go on (its condition is
re-evaluated when it is picked, see ``controlled``). If a queued prefix ends with such a
thread and it turns out still blocked, that prefix is no schedule: the run is abandoned
and counted as *pruned*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .controlled import Outcome, RunResult
from .runner import ProgramFactory, run_program
from .decision import Decision, Strategy

__all__ = ["explore", "ExploreResult"]


@dataclass
class ExploreResult:
    """What :func:`explore` ran and whether the bounded space was exhausted."""

    max_preemptions: int
    schedules: int = 0
    per_bound: list[int] = field(default_factory=list)
    pruned: int = 0
    truncated: int = 0
    exhausted: bool = False
    failure: RunResult | None = None

    def summary(self) -> str:
        by = ", ".join(f"{n} with {b}" for b, n in enumerate(self.per_bound))
        head = f"{self.schedules} schedules with at most {self.max_preemptions} preemptions " \
               f"({by}; {self.pruned} pruned, {self.truncated} cut by max_steps)"
        if self.failure is not None:
            return f"failure found after {head}"
        if self.exhausted:
            return f"space exhausted: all {head}"
        return f"NOT exhausted: {head}"


class _Bounded(Strategy):
    """Follow ``prefix``, then go non-preemptively; remember each step's candidates."""

    name = "explore"

    def __init__(self, prefix: tuple[str, ...]) -> None:
        self.prefix = prefix
        # Per step index: (candidates at the first ask, prev if it could go on).
        self.offered: list[tuple[tuple[str, ...], str | None]] = []
        self.blocked: dict[int, tuple[str, ...]] = {}

    def choose(self, d: Decision) -> str | None:
        if d.index == len(self.offered):
            prev = d.prev if d.prev is not None and d.prev in d.candidates else None
            self.offered.append((d.candidates, prev))
        self.blocked[d.index] = d.blocked
        if d.index < len(self.prefix):
            want = self.prefix[d.index]
            return want if want in d.candidates else None   # None: prune this prefix
        return d.default

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "prefix": list(self.prefix)}


def explore(make_program: ProgramFactory, *, max_preemptions: int = 2,
            max_schedules: int = 10_000, stop_on_failure: bool = True,
            **run_opts: Any) -> ExploreResult:
    """Run ``make_program`` under every schedule with at most ``max_preemptions``.

    Returns at the first failing run (``stop_on_failure``), after ``max_schedules``
    runs, or when the space is exhausted (``ExploreResult.exhausted``; a run cut by
    ``max_steps`` leaves it not exhausted). ``run_opts`` go to :func:`run_program`.
    """
    if max_preemptions < 0:
        raise ValueError(f"max_preemptions must be >= 0, got {max_preemptions}")
    result = ExploreResult(max_preemptions, per_bound=[0] * (max_preemptions + 1))
    worklists: list[list[tuple[str, ...]]] = [[] for _ in range(max_preemptions + 1)]
    worklists[0].append(())
    runs = 0
    for bound in range(max_preemptions + 1):
        work = worklists[bound]
        while work:
            if runs >= max_schedules:
                return result
            runs += 1
            prefix = work.pop()
            strategy = _Bounded(prefix)
            run = run_program(make_program, strategy, **run_opts)
            if run.outcome is Outcome.ABANDONED:
                result.pruned += 1
                continue
            result.schedules += 1
            result.per_bound[min(run.preemptions, max_preemptions)] += 1
            if run.outcome is Outcome.BUDGET:
                result.truncated += 1
            if run.failed and result.failure is None:
                result.failure = run
                if stop_on_failure:
                    return result
            _queue_siblings(strategy, run, worklists)
    result.exhausted = result.truncated == 0
    return result


def _queue_siblings(strategy: _Bounded, run: RunResult,
                    worklists: list[list[tuple[str, ...]]]) -> None:
    """Queue, for each step past the prefix, the prefixes that depart there (invariant W)."""
    assert run.trace is not None
    chosen = [s.thread for s in run.trace.steps]
    preemptions = 0
    for i, (candidates, prev) in enumerate(strategy.offered):
        if i >= len(chosen):
            break            # the run ended while deciding this step: nothing to branch
        if i >= len(strategy.prefix):
            blocked = strategy.blocked.get(i, ())
            for c in candidates:
                if c == chosen[i] or c in blocked:
                    continue
                cost = preemptions + (1 if prev is not None and c != prev else 0)
                if cost < len(worklists):
                    worklists[cost].append(tuple(chosen[:i]) + (c,))
        if prev is not None and chosen[i] != prev:
            preemptions += 1
