"""Free-running stress scheduling: seeded random yields and a tiny switch interval.

Real threads run in parallel (or under the GIL, preempted every switch interval). Two
things widen the windows in which a race can show: the interpreter's switch interval is
made tiny, so that the GIL changes hands between almost any two bytecodes, and each
schedule point yields the CPU (``time.sleep(0)``) with a seeded probability. The seed
decides the yield pattern of each thread (its generator is seeded from the run seed and
the thread's name, never its id), but not the OS's choices: this mode finds races, the
controlled modes replay them.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import zlib

from ._base import Scheduler

__all__ = ["StressScheduler", "YIELD_PROBABILITY"]

#: The default chance that a schedule point yields.
YIELD_PROBABILITY = 0.05


class StressScheduler(Scheduler):
    """Seeded random yields at schedule points plus a tiny ``sys.setswitchinterval``.

    The previous switch interval is saved by :meth:`activate` and restored by
    :meth:`deactivate`, so installing this scheduler inside a test leaves no trace.
    """

    name = "stress"

    def __init__(self, seed: int = 0, yield_probability: float = YIELD_PROBABILITY,
                 switch_interval: float = 1e-6) -> None:
        if not 0.0 <= yield_probability <= 1.0:
            raise ValueError(f"yield_probability must be in [0, 1], got {yield_probability}")
        if switch_interval <= 0:
            raise ValueError(f"switch_interval must be positive, got {switch_interval}")
        self.seed = seed
        self.yield_probability = yield_probability
        self.switch_interval = switch_interval
        self._saved_interval: float | None = None
        # Each thread draws from its own generator: no lock, no cross-thread order.
        self._tls = threading.local()

    def activate(self) -> None:
        self._saved_interval = sys.getswitchinterval()
        sys.setswitchinterval(self.switch_interval)

    def deactivate(self) -> None:
        if self._saved_interval is not None:
            sys.setswitchinterval(self._saved_interval)
            self._saved_interval = None

    def _rng(self) -> random.Random:
        try:
            return self._tls.rng  # type: ignore[no-any-return,unused-ignore]
        except AttributeError:
            name = threading.current_thread().name
            rng = random.Random((self.seed << 32) ^ zlib.crc32(name.encode()))
            self._tls.rng = rng
            return rng

    def point(self, label: str) -> None:
        if self._rng().random() < self.yield_probability:
            time.sleep(0)
