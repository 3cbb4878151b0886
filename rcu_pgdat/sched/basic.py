"""The simple strategies: uniform random, replay of a trace, guided and choice-driven.

Random
    Uniform over the candidates at every step.

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
from typing import Any, Iterable, Optional, Sequence

from ..errors import TraceError
from .decision import Decision, Strategy
from .trace import Trace

__all__ = ["RandomStrategy", "ReplayStrategy", "GuidedStrategy", "Switch", "ChoiceStrategy"]


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
        if want.step > d.step:
            # The recorded run probed its waiters here, found each still blocked, and
            # the clock jumped: probe them again (a probe that succeeds takes a step,
            # and the next decision reports the departure).
            waiter = next((c for c in d.candidates if d.probe_only(c)), None)
            if waiter is not None:
                return waiter
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
                counts, last = self._counts, self._last
                counts[last] = (counts[last] if last in counts else 0) + 1
        counts, prev = self._counts, d.prev
        key = (prev, counts[prev] if prev is not None and prev in counts else 0)
        want = self.switches[key] if key in self.switches else None
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
