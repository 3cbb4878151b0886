"""The clock a stress run counts in: seconds free-running, scheduler steps controlled.

A controlled run's clock is the scheduler's step counter (``sched.now()``), so every
duration the model waits for (a sleeper's nap, the remover's pause, the offline
timeout) and every duration the run measures (grace-period latency, read-side section
length) is in steps there, and in seconds free-running. A :class:`Clock` keeps the
durations and the histogram bounds of one kind together, and says how to print a
duration, so that a report never prints steps as milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rcu_pgdat.mm.boost import BOOST_DELAY

__all__ = ["Clock", "SECONDS", "STEPS"]


@dataclass(frozen=True)
class Clock:
    """The unit of a run's time and the durations of the model in it."""

    #: ``seconds`` or ``steps`` (the JSON report's ``clock``).
    unit: str
    #: A sleeper's longest nap inside its sleepable section.
    sleep_time: float
    #: The remover's pause between two steps.
    remover_pause: float
    #: How long an offline waits for its pages before it fails with EBUSY.
    offline_timeout: float
    #: How long a grace period waits before readers between sections are held back
    #: (``rcu_pgdat.mm.boost``); infinite: never.
    boost_delay: float
    #: Upper bounds of the read-side section length histogram; the last is infinite.
    section_buckets: tuple[float, ...]

    def span(self, duration: float) -> str:
        """``duration`` for a reader: ``1.234 ms`` or ``1234 steps``."""
        if self.unit == "steps":
            return f"{duration:g} steps"
        return f"{duration * 1e3:.3f} ms"

    def bound(self, duration: float) -> str:
        """A histogram bound, short: ``10us``, ``1ms``, ``100 steps``."""
        if self.unit == "steps":
            return f"{duration:g} steps"
        return f"{duration * 1e6:g}us" if duration < 1e-3 else f"{duration * 1e3:g}ms"


#: Free-running runs.
SECONDS = Clock("seconds", sleep_time=0.02, remover_pause=0.001, offline_timeout=0.5,
                boost_delay=BOOST_DELAY,
                section_buckets=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1, float("inf")))
#: Controlled runs.
STEPS = Clock("steps", sleep_time=3000.0, remover_pause=10.0, offline_timeout=3000.0,
              boost_delay=math.inf,
              section_buckets=(10.0, 100.0, 1000.0, 10_000.0, 100_000.0, float("inf")))
