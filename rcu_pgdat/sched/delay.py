"""Random with long delays: uniform random scheduling, plus a few threads parked for
rounds at a time (rcutorture's readers that sleep in their sections, a vCPU the host
preempts).

The algorithm
-------------
At every step the strategy picks uniformly among the candidates that are not parked.
Besides, each preemptible step (the thread that ran could go on and another could run
instead) *parks* that thread with probability ``k / r``, ``r`` being the measured
loop round (:class:`~rcu_pgdat.sched._rounds.LoopRounds`: the mean steps between two
yields of a thread), so ``k`` (:data:`DELAYS_PER_ROUND`) parkings start per round on
average. A parked thread is not picked for a delay drawn uniformly from ``1..S*r``
steps (``S`` is :data:`DELAY_ROUNDS`: up to ``S`` rounds, ``S/2`` on average), unless
every candidate is parked, and then the one whose delay ends first runs. Until a round
has been measured (no thread has yielded twice) nobody is parked: plain random.

Why this shape
--------------
The two families it joins each miss a class of bug. Uniform random switches threads at
nearly every step, so it interleaves updaters finely (a cookie taken in the middle of
another's grace period) and stretches every section over many global steps, but it
never keeps one thread away for long: a reader stopped between loading a phase and
storing it for as long as a grace period takes to flip and scan past it is a
``(1 - 1/n)**(gp steps)`` event. PCT gives such long delays (a demoted thread misses a
round) but runs every other thread non-preemptively between change points, so the
section that follows runs to its end in one go and no grace period can begin and end
inside it. Measured on a phase-bit RCU that flips once per grace period (its reader must
be held between its load and store while a flip scans past it, *and* then stay in its
section over the next grace period), every strategy produced the first event on about
one run in two, and what separated them was the second: random with parking passed a
stale reader inside its section 2-3 times as often as random, PCT or POS.

The prior, and why not weight by site
-------------------------------------
Each preemptible step is equally likely to start a delay. Spreading delays evenly over
distinct schedule points instead (a rare point getting as many as a frequent one, as
coverage-guided fuzzers give rare paths more energy) was measured and not adopted: the
point such a bug needs (``phase:lock:store``, 4% of preemptible steps) was not rare, a
site-weighted PCT and a site-weighted variant of this strategy caught the phase-flip bug
no more often than their unweighted forms (0-1 runs of 20 each), and what limited every
strategy was how long the delay lasted, not where it began. A bug's site is unknown in
advance; a step is the only unit that favours no label.

How many parkings, and who runs when all are parked
---------------------------------------------------
A parking only holds a thread while someone else can run. With four parkings a round
of three rounds each on average, about twelve threads were parked at any time, more
than a step has candidates: measured on a default run, 4.4 of 5.9 candidates were
parked on average and at 28% of the steps all of them were, and the uniform choice
among them then held nobody. A reader whose section had to outlast the rest of a grace
period (a cookie taken during it, polled done when it ended: ``rcu-cookie-early``)
was then held about as rarely as under random (1 of 32 early "done" answers found the
section still open; POS, which holds a low-priority step while independent steps keep
coming, 6 of 27). So ``k`` is 1 and, when every candidate is parked, the one whose
delay ends first runs: the others stay held, as PCT's low priorities are. Measured
(20,000 steps a seed): the early cookie failed 12 seeds of 40 against 4 of 30 before, a
grace period shared under way (catalogue and plug-in) 18 of 80 against 11 of 60, and
no other target of the catalogue or the plug-ins moved by more than two seeds in 20
(README, Performance). Over seeds 1..40 of the six hardest targets this form failed
41 runs of 240; two parkings a round failed 33, with a uniform choice among the parked
or with the first due.

Soundness and cost
------------------
Any schedule is a legal execution (the strategy only chooses among runnable threads),
so a correct program cannot fail under it. A parked thread is never starved for good:
its delay is bounded (``S*r`` steps) and it runs whenever nobody else can (the
first due of the parked ones), so a correct
RCU whose grace period waits for a parked reader sees it end a few rounds later, never
a false livelock. The choice is a pure function of the seed and the decisions seen (the
park table is a dict keyed by name, read by membership only): same seed, same run. Per
step it costs one random draw and a scan of the candidates against the park table,
about what ``random`` costs. What it gives up: a bug that needs a thread delayed at one
exact step and then run non-preemptively (PCT's strength) still needs PCT's luck here.
"""

from __future__ import annotations

import random
from typing import Any

from ._rounds import LoopRounds
from .decision import Decision, Strategy

__all__ = ["DelayStrategy", "DELAYS_PER_ROUND", "DELAY_ROUNDS"]

#: Parkings started per measured round, on average (``k``).
DELAYS_PER_ROUND = 1
#: The longest delay, in measured rounds (``S``); delays are uniform in ``1..S*r`` steps.
DELAY_ROUNDS = 6


class DelayStrategy(Strategy):
    """Uniform random among the threads not parked; ``k`` parkings per round (module doc).

    Invariant: ``_until[t] > index`` exactly when thread ``t`` is parked at step
    ``index``; only threads parked at a preemptible step of theirs have an entry.
    """

    name = "delay"

    def __init__(self, seed: int, delays: int = DELAYS_PER_ROUND,
                 rounds: int = DELAY_ROUNDS) -> None:
        if delays < 1 or rounds < 1:
            raise ValueError(f"delay needs delays >= 1 and rounds >= 1, got {delays}, {rounds}")
        self.seed = seed
        self.delays = delays
        self.rounds = rounds
        self._rng = random.Random(seed)
        self._last_index = -1
        self._rounds = LoopRounds()
        self._until: dict[str, int] = {}
        self.parked: list[tuple[int, str, int]] = []   # (step index, thread, delay)

    def choose(self, d: Decision) -> str:
        if d.index != self._last_index:        # first question for this step
            self._last_index = d.index
            self._account(d)
        until, index = self._until, d.index
        if not until:
            return d.candidates[self._rng.randrange(len(d.candidates))]
        free = [c for c in d.candidates if c not in until or until[c] <= index]
        if not free:                           # every candidate parked: the first due
            return min(d.candidates, key=until.__getitem__)
        return free[self._rng.randrange(len(free))]

    def _account(self, d: Decision) -> None:
        """Measure the round at a yield of ``d.prev``; maybe park it at a preemption."""
        prev = d.prev
        if prev is None or self._rounds.note(d) or not self._rounds.measured:
            return
        if len(d.candidates) < 2 or prev not in d.candidates:
            return
        r = self._rounds.length(1.0)
        if self._rng.random() * r < self.delays:
            delay = 1 + int(self._rng.random() * self.rounds * r)
            self._until[prev] = d.index + delay
            self.parked.append((d.index, prev, delay))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "delays": self.delays,
                "rounds": self.rounds}
