"""Shrinking a failing schedule: fewer preemptions first, then fewer steps.

A schedule is rewritten as its *switches*: the steps where it departed from the
non-preemptive default (``Decision.default``, recorded per step in
``RunResult.defaults``), each keyed by the thread that ran before and its own step
count. Replaying the switches with :class:`GuidedStrategy` (default everywhere else)
gives back the same run, by induction on the steps: equal prefixes make equal
decisions. The key is per thread because the obvious key, the global step index,
breaks on the first removal: dropping "run b first" shifts every later step of a by
one, so "preempt a at step 9" then lands a step late and misses the window.

Shrinking tries smaller switch sets (none, each one alone, then without each
contiguous run, as delta debugging does) and moves switches earlier (fewer steps of the
preempted thread before it), keeping a candidate only when the predicate still holds
and (preemptions, steps) went strictly down; that key bounds the number of accepted
candidates, so it terminates.

A switch that names a thread unable to run at its step is skipped by the guided
strategy, so every candidate is a valid schedule, only not always the intended one:
that is why the result is judged by re-running, never by editing the trace.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from ..errors import UsageError
from .controlled import Outcome, RunResult
from .runner import ProgramFactory, run_program
from .basic import GuidedStrategy, Switch

__all__ = ["shrink", "same_failure", "switches_of"]

Switches = list[Switch]


def switches_of(result: RunResult) -> Switches:
    """The departures of ``result``'s schedule from the default choice, as switches."""
    assert result.trace is not None
    counts: dict[str, int] = {}
    out: Switches = []
    prev: str | None = None
    for i, s in enumerate(result.trace.steps):
        if i < len(result.defaults) and s.thread != result.defaults[i]:
            out.append((prev, counts.get(prev, 0) if prev is not None else 0, s.thread))
        counts[s.thread] = counts.get(s.thread, 0) + 1
        prev = s.thread
    return out


def same_failure(original: RunResult) -> Callable[[RunResult], bool]:
    """Predicate: the run fails the same way (same outcome; same exception type)."""
    kind = type(original.errors[0].exc) if original.errors else None

    def fails(result: RunResult) -> bool:
        if result.outcome is not original.outcome:
            return False
        if original.outcome is Outcome.FAILED:
            return bool(result.errors) and type(result.errors[0].exc) is kind
        return True
    return fails


def _smaller(sw: Switches) -> Iterator[Switches]:
    """Candidate switch lists, the most ambitious first: none, each one alone, then
    without each contiguous run of switches (longest runs first), then moved earlier."""
    n = len(sw)
    yield []
    if n > 1:
        yield from ([one] for one in sw)
    for size in range(n - 1, 0, -1):
        for start in range(0, n - size + 1):
            yield sw[:start] + sw[start + size:]
    for k, (after, count, to) in enumerate(sw):
        for earlier in (count // 2, count - 1):
            if 0 < earlier < count:
                yield sw[:k] + [(after, earlier, to)] + sw[k + 1:]


def shrink(make_program: ProgramFactory, failing: RunResult, *,
           predicate: Callable[[RunResult], bool] | None = None, max_runs: int = 200,
           **run_opts: Any) -> RunResult:
    """The smallest failing run found within ``max_runs`` re-runs (``failing`` if none).

    ``predicate(result)`` says whether a run still shows the bug; the default is
    :func:`same_failure`. With a predicate, ``failing`` need not have failed in the
    scheduler's sense (a harness may stop a run at its first violation). ``run_opts``
    go to :func:`run_program` (use the same ``max_steps``/``livelock_steps`` as the
    failing run).
    """
    if failing.trace is None or not (failing.failed or predicate is not None):
        raise UsageError("shrink() takes a failed controlled run (RunResult.failed and a "
                         "trace); a free-running failure has no schedule to shrink")
    still_fails = predicate or same_failure(failing)
    best = failing
    runs = 0

    def key(r: RunResult) -> tuple[int, int]:
        return (r.preemptions, r.steps)

    improved = True
    while improved and runs < max_runs:
        improved = False
        for candidate in _smaller(switches_of(best)):
            if runs >= max_runs:
                break
            runs += 1
            run = run_program(make_program, GuidedStrategy(candidate), **run_opts)
            if key(run) < key(best) and still_fails(run):
                best = run
                improved = True
                break
    return best
