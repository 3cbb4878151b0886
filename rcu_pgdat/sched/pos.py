"""POS: partial order sampling (Yuan, Yang, Gu, "Partial Order Aware Concurrency
Sampling", CAV 2018), with the conflicts a schedule point's label tells.

The algorithm
-------------
Every pending step (each thread's next step) carries a random priority; the candidate
whose pending step has the highest priority runs. When a step ran, its thread's next step
gets a fresh priority, and so does every other pending step that *races* with the step
that ran (touches what it touched, one of them writing). Resetting the racing steps is
what makes POS sample partial orders rather than interleavings: two schedules that
differ only in the order of independent steps are one partial order, and POS does not
spend its chances telling them apart, while a pair of racing steps gets a fresh coin
each time one of them runs. There is no depth and no length to estimate, which is why
POS suits long and looping programs: its chance of a given partial order does not shrink
with the length of the run the way PCT's ``1/k**(d-1)`` does, and a step of low priority
is delayed for as long as higher-priority independent steps keep coming, the long delay a
reader preempted inside its section needs for a grace period to end under it.

What the scheduler knows of a step
----------------------------------
POS needs the read and write sets of pending steps. The scheduler sees only the label of
the schedule point each thread waits at (``sched.point("qsbr:gp:scan")``); the model
names its points ``subsystem:place`` (``qsbr:...``, ``memb:...``, ``srcu...``,
``stop_machine:...``, ``spin_lock:<lock>``, ``reader:...``). The approximation: **two
pending steps race when their labels have the same first component** (up to the first
``:`` or ``.``), the subsystem whose shared state the step touches: the reader's
``memb:read_lock:load`` races with the updater's ``memb:gp:flip``, a reader's
``stop_machine:arrive`` with the stopper's ``stop_machine:stopping``. It errs both ways
and neither way breaks anything, since any strategy is sound and only the sampling
distribution changes: two readers at ``reader:...`` count as racing though both only
read (more randomness among them), and a reader's ``reader:use`` does not race with the
remover's ``remover.free`` though it touches what is freed (the reader keeps its
priority, and with it, often, a long delay). A wait the scheduler re-offers because
another step may have made it true gets a fresh priority too: the step that enabled it
races with it by definition.

Unbounded delays. Without races a step of low priority could wait for ever (the pending
steps of threads that keep running are re-drawn at every step, and some always beat it);
the races above bound that in practice, and so does the end of the workers' budget.

Yields. A thread that stops at a voluntary yield (``sched.yield_point``, a wait loop's
``cond_resched()``) goes behind every thread, in yield order, as with ``sched_yield()``:
the yielded threads form a queue. A race re-draws a step in that queue only if it is at
the queue's head (it has waited longest). Re-drawing any of them, two threads spinning
at one subsystem's wait (``ticket:wait``) lift each other out of the queue at every
spin, above the threads parked ahead of them, which then never run again: a correct
program reported as a livelock. With the rule, whenever every candidate has yielded the
head runs, and a thread joins the queue at the back, so each parked thread reaches the
head and runs within one pass over the queue, as long as the running threads yield now
and then (every loop of a model does): the strategy starves no one. The head keeps its
fresh coin when a step races with it, so two threads of one loop (the second parked
while the first runs its iteration) still interleave as POS would have them.
"""

from __future__ import annotations

import random
from itertools import compress, filterfalse
from typing import Any

from .decision import Decision, Strategy

__all__ = ["POSStrategy", "label_object"]


def label_object(label: str) -> str:
    """The subsystem a schedule point's label names: its first ``:``/``.`` component."""
    cut = len(label)
    for sep in (":", "."):
        i = label.find(sep)
        if 0 <= i < cut:
            cut = i
    return label[:cut]


class _Objects(dict[str, str]):
    """``label -> label_object(label)``, filled on first use (``[]`` never misses)."""

    def __missing__(self, label: str) -> str:
        obj = self[label] = label_object(label)
        return obj


class POSStrategy(Strategy):
    """Partial order sampling over pending steps, races read from labels (module doc).

    Invariant: ``_priority[t]`` is the priority of ``t``'s pending step; it was drawn
    after ``t``'s last step or after the last step that raced with the pending one,
    whichever came last (for a thread that has not run yet: when it was first seen),
    except that a pending step behind a yield, ``-n`` for the ``n``-th yield (drawn
    priorities lie in ``[0, 1)``, so a negative one marks it), is re-drawn by a race only
    when no candidate has waited behind a yield longer.
    """

    name = "pos"
    #: A step parked behind a yield is re-drawn by a race only at the head of the queue
    #: (module doc, "Yields").
    yield_keeps_place = True

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._priority: dict[str, float] = {}
        self._last_index = -1
        self._ran_from: dict[str, str] = {}  # the label each thread last ran from
        self._yields = 0                     # voluntary yields so far
        self._objects = _Objects()           # label -> label_object(label), a cache

    def choose(self, d: Decision) -> str:
        candidates, labels = d.candidates, d.candidate_labels()
        if d.index != self._last_index:       # first question for this step
            self._last_index = d.index
            self._account(d, labels)
        priority = self._priority
        # First seen: a priority drawn now, in candidate order (C loops, not Python's).
        for name in filterfalse(priority.__contains__, candidates):
            priority[name] = self._rng.random()
        # The first candidate of highest priority (``max`` keeps the first of equals).
        best = max(candidates, key=priority.__getitem__)
        self._ran_from[best] = labels[candidates.index(best)]
        return best

    def _account(self, d: Decision, labels: tuple[str, ...]) -> None:
        """Fresh priorities for the step that ran's successor and the steps it raced.

        The race pass reads each candidate's priority as it stood before the pass (it
        re-draws only the candidate it is at, after reading it), and finds the queue's
        head only once a racing candidate turns up, before any re-draw of the pass.
        """
        rng, priority = self._rng, self._priority
        prev = d.prev
        ran_from = self._ran_from
        ran = ran_from[prev] if prev is not None and prev in ran_from else ""
        if prev is not None:
            if d.prev_yielded:               # behind every thread, in yield order
                self._yields += 1
                priority[prev] = -float(self._yields)
            else:
                priority[prev] = rng.random()
        if not ran:
            return
        objects = self._objects
        candidates = d.candidates
        head: float | None = None            # the longest-parked candidate's place
        # The candidates whose label names the subsystem ``ran`` does, in order.
        for name in compress(candidates, map(objects[ran].__eq__,
                                             map(objects.__getitem__, labels))):
            if name == prev:
                continue
            if head is None:
                head = self._head(candidates)
            if name in priority and priority[name] < head:
                continue                     # parked behind the queue's head
            priority[name] = rng.random()

    def _head(self, candidates: tuple[str, ...]) -> float:
        """The priority of the candidate parked longest behind a yield (the highest
        negative one), ``-inf`` when none is or yields do not keep places."""
        if not self.yield_keeps_place:
            return float("-inf")
        priority = self._priority
        parked = [p for p in map(priority.__getitem__, filter(priority.__contains__,
                                                              candidates)) if p < 0.0]
        return max(parked) if parked else float("-inf")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed}
