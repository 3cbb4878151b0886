"""Strategies: who runs next, decided at each step of a controlled run.

A :class:`~rcu_pgdat.sched.ControlledScheduler` asks its strategy at each step to pick
one name out of ``Decision.candidates`` (in thread start order). A candidate is a thread
waiting at a schedule point, a waiter whose timeout is due, or a blocked waiter whose
condition *may* have become true because another thread made a step since it last
found it false. Picking such a waiter lets it re-evaluate its condition; if the
condition is still false no step happened, the waiter leaves the candidates and the
strategy is asked again for the same step (``Decision.blocked`` names it). Every
strategy here is a pure function of its seed and of the decisions it saw, so a run is a
pure function of (program, strategy): same seed, same run.

Random
    Uniform over the candidates at every step.

PCT (probabilistic concurrency testing; Burckhardt, Kothari, Musuvathi, Nagarakatte,
ASPLOS 2010)
    Each thread gets a random priority when it first shows up; the highest-priority
    candidate always runs. ``depth - 1`` change points are drawn uniformly from the
    steps ``1..steps``; at the i-th one the thread that ran the step before is demoted
    below every thread not demoted yet (later demotions go lower still). A bug has
    *depth* d when d ordering constraints between steps must hold for it to show (an
    order violation has depth 1, an atomicity violation between two threads depth 2).
    For a program with at most ``n`` threads and ``k`` steps, one PCT run with
    ``depth=d`` finds a given bug of depth d with probability at least
    ``1 / (n * k**(d-1))``; independent seeds multiply the chance of a miss. The bound
    assumes ``steps >= k``: pass the program's length (sweeps measure it once).
    Threads here loop rather than finish (workers run until the step budget), and a
    thread of top priority that never blocks would starve the rest forever, which no
    kernel scheduler does. So a thread that stops at a voluntary yield point
    (``sched.yield_point``: the model's ``cond_resched()``) is demoted as a thread
    calling ``sched_yield()`` gives its CPU away; these demotions are not change points
    and do not count against ``depth``.
    Why not just Random: a bug that needs one thread to run w steps without a switch
    and then be preempted at one exact step is found by Random with probability about
    2**-w (it must keep the same thread w times in a row); PCT keeps the higher-priority
    thread running by construction and needs only the change point to land on the
    step, about 1/k (``stress/bench_sched.py --work 30`` shows both).

Replay
    Follows a :class:`~rcu_pgdat.sched.trace.Trace` step by step and raises
    :class:`~rcu_pgdat.errors.TraceError` at the first departure (unknown thread, thread
    not runnable, different label).

Guided / Choice
    Run non-preemptively (keep the thread that ran last while it can, else the first
    candidate) except where told otherwise: at given switches (``GuidedStrategy``,
    used to shrink and to force an interleaving in a test) or by a list of integers
    read modulo the candidates (``ChoiceStrategy``, what Hypothesis draws).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Protocol, Sequence

from ..errors import TraceError
from .trace import Trace

__all__ = ["Decision", "Strategy", "RandomStrategy", "PCTStrategy", "ReplayStrategy",
           "GuidedStrategy", "Switch", "ChoiceStrategy", "make_strategy", "CONTROLLED_MODES"]

#: Names :func:`make_strategy` accepts (the ``--sched`` values of controlled mode).
CONTROLLED_MODES = ("random", "pct")


class _View(Protocol):
    """What a decision may ask the scheduler about a thread (for checks and messages)."""

    def label_of(self, name: str) -> str | None: ...

    def explain(self, name: str) -> str: ...


@dataclass(frozen=True)
class Decision:
    """One question to a strategy: which candidate runs step ``step``?

    ``index`` counts the steps taken so far (0 for the first); ``step`` is the clock,
    which also counts idle time. ``prev`` ran the step before; it is a candidate only if
    it stopped at a schedule point, and then running anyone else is a *preemption*.
    ``blocked`` lists threads picked for this step that turned out to be still blocked.
    ``prev_yielded``: ``prev`` stopped at a voluntary yield point (``sched.yield_point``,
    the model's ``cond_resched()``), offering the CPU to others.
    """

    step: int
    index: int
    candidates: tuple[str, ...]
    prev: str | None
    blocked: tuple[str, ...]
    _view: _View = field(repr=False, compare=False)
    prev_yielded: bool = False

    @property
    def default(self) -> str:
        """The non-preemptive choice: ``prev`` if it can go on, else the first candidate.

        At a voluntary yield of ``prev`` the default is the next candidate after it in
        start order (round robin), so that threads which loop and yield, rather than
        finish, share the CPU without any preemption being spent on it (as CHESS treats
        yields); ``prev`` itself when it is the only candidate.
        """
        if self.prev is not None and self.prev in self.candidates:
            if not self.prev_yielded or len(self.candidates) == 1:
                return self.prev
            i = self.candidates.index(self.prev)
            return self.candidates[(i + 1) % len(self.candidates)]
        return self.candidates[0]

    def preempts(self, name: str) -> bool:
        """Whether running ``name`` preempts ``prev`` (a switch at a yield does not)."""
        return (self.prev is not None and name != self.prev and self.prev in self.candidates
                and not self.prev_yielded)

    def label_of(self, name: str) -> str | None:
        """The schedule point ``name`` waits at (``None``: no such thread in this run)."""
        return self._view.label_of(name)

    def explain(self, name: str) -> str:
        """What ``name`` is doing, for messages ("waits for lock m", "finished")."""
        return self._view.explain(name)


class Strategy:
    """Base class: pick a candidate, or ``None`` to abandon the run."""

    name = "strategy"

    def choose(self, d: Decision) -> str | None:
        """The name of the thread that runs step ``d.step``; must be a candidate."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-able parameters, recorded in the trace (enough to redo the run)."""
        return {"name": self.name}


class RandomStrategy(Strategy):
    """Uniform choice among the candidates, from ``random.Random(seed)``."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def choose(self, d: Decision) -> str:
        return d.candidates[self._rng.randrange(len(d.candidates))]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed}


class PCTStrategy(Strategy):
    """PCT with ``depth - 1`` priority change points in steps ``1..steps``.

    Invariant: ``_order + _lowered`` ranks every thread seen so far, highest first;
    ``_lowered`` holds the demoted ones in demotion order, all below every other.
    """

    name = "pct"

    def __init__(self, seed: int, depth: int = 3, steps: int = 1000) -> None:
        if depth < 1:
            raise ValueError(f"PCT depth must be at least 1, got {depth}")
        if steps < 1:
            raise ValueError(f"PCT steps (the expected run length) must be >= 1, got {steps}")
        self.seed = seed
        self.depth = depth
        self.steps = steps
        self._rng = random.Random(seed)
        count = min(depth - 1, steps)
        self._change_points = sorted(self._rng.sample(range(1, steps + 1), count))
        self._next_change = 0
        self._order: list[str] = []
        self._lowered: list[str] = []
        self._seen: set[str] = set()       # membership only, never iterated
        self._last_index = -1

    def choose(self, d: Decision) -> str:
        for name in d.candidates:              # start order: deterministic insertion
            if name not in self._seen:
                self._seen.add(name)
                self._order.insert(self._rng.randint(0, len(self._order)), name)
        if d.index != self._last_index:        # first question for this step
            self._last_index = d.index
            if d.prev_yielded and d.prev is not None:
                self._demote(d.prev)
            cps = self._change_points
            while self._next_change < len(cps) and cps[self._next_change] <= d.index:
                self._next_change += 1
                if d.prev is not None:
                    self._demote(d.prev)
        for name in self._order + self._lowered:
            if name in d.candidates:
                return name
        raise AssertionError("unreachable: every candidate has a priority")

    def _demote(self, name: str) -> None:
        if name in self._order:
            self._order.remove(name)
        elif name in self._lowered:
            self._lowered.remove(name)
        self._lowered.append(name)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "depth": self.depth, "steps": self.steps}


class ReplayStrategy(Strategy):
    """Follow a recorded trace exactly; :class:`TraceError` at the first departure.

    With ``strict=False`` the run goes on non-preemptively past the end of the trace
    (a shrunk prefix); with ``strict=True`` (the default) that is an error too.
    """

    name = "replay"

    def __init__(self, trace: Trace, strict: bool = True) -> None:
        self.trace = trace
        self.strict = strict

    def choose(self, d: Decision) -> str:
        steps = self.trace.steps
        if d.index >= len(steps):
            if self.strict:
                raise TraceError(
                    f"the trace ends after {len(steps)} steps but the run goes on at step "
                    f"{d.step} (runnable: {', '.join(d.candidates)}): the program is not "
                    "the one that was recorded")
            return d.default
        want = steps[d.index]
        if want.step != d.step:
            raise TraceError(f"the trace has its step #{d.index} at clock {want.step} but "
                             f"the run is at {d.step}: the program's sleeps or timeouts differ")
        label = d.label_of(want.thread)
        if label is None:
            raise TraceError(f"step {d.step}: the trace names thread {want.thread!r}, "
                             "which this run never started (unknown thread name)")
        if want.thread not in d.candidates:
            raise TraceError(f"step {d.step}: thread {want.thread!r} is not runnable: it "
                             f"{d.explain(want.thread)}; the trace expects it to run from "
                             f"{want.label!r}")
        if label != want.label:
            raise TraceError(f"step {d.step}: thread {want.thread!r} is at {label!r} but the "
                             f"trace has it at {want.label!r}: the program differs")
        return want.thread

    def describe(self) -> dict[str, Any]:
        # The recorded strategy, so that a replay writes back the very same trace file.
        return dict(self.trace.strategy)


#: A departure from the non-preemptive default: once thread ``after`` (``None``: nobody,
#: the first step) has taken ``count`` steps and just ran, run ``to``.
Switch = tuple[Optional[str], int, str]


class GuidedStrategy(Strategy):
    """Non-preemptive, except at the given :data:`Switch` es, when their thread can run.

    A switch is keyed by the preempted thread's own step count, not by the global step
    index, so removing an earlier switch (shrinking) does not move the later ones.
    Invariant: ``_counts[t]`` is the number of steps ``t`` took before this decision.
    """

    name = "guided"

    def __init__(self, switches: Iterable[Switch]) -> None:
        self.switches: dict[tuple[str | None, int], str] = {
            (after, count): to for after, count, to in switches}
        self._counts: dict[str, int] = {}
        self._index = -1
        self._last: str | None = None

    def choose(self, d: Decision) -> str:
        if d.index != self._index:               # first ask: the last answer was taken
            self._index = d.index
            if self._last is not None:
                self._counts[self._last] = self._counts.get(self._last, 0) + 1
        key = (d.prev, self._counts.get(d.prev, 0) if d.prev is not None else 0)
        want = self.switches.get(key)
        self._last = want if want is not None and want in d.candidates else d.default
        return self._last

    def describe(self) -> dict[str, Any]:
        return {"name": self.name,
                "switches": [[a, c, t] for (a, c), t in self.switches.items()]}


class ChoiceStrategy(Strategy):
    """Read one integer per step: 0 keeps the default, ``c`` picks ``c mod len`` in the
    list default-first-then-others; past the end of ``choices``, the default.

    Zero meaning "no switch" makes smaller integers mean fewer preemptions, so a
    shrinker that lowers integers (Hypothesis) simplifies the interleaving.
    """

    name = "choice"

    def __init__(self, choices: Sequence[int]) -> None:
        self.choices = list(choices)

    def choose(self, d: Decision) -> str:
        default = d.default
        if d.index >= len(self.choices):
            return default
        ranked = [default] + [c for c in d.candidates if c != default]
        return ranked[self.choices[d.index] % len(ranked)]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "choices": list(self.choices)}

    def __repr__(self) -> str:
        return f"ChoiceStrategy({self.choices!r})"


def make_strategy(mode: str, seed: int, *, pct_depth: int = 3,
                  pct_steps: int = 1000) -> Strategy:
    """The strategy behind ``--sched MODE --seed SEED`` for a controlled mode."""
    if mode == "random":
        return RandomStrategy(seed)
    if mode == "pct":
        return PCTStrategy(seed, depth=pct_depth, steps=pct_steps)
    raise ValueError(f"unknown controlled scheduling mode {mode!r}; "
                     f"choose one of {', '.join(CONTROLLED_MODES)}")
