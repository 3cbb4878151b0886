"""The built-in QSBR flavor and SRCU domain, plugged in as a user's would be, recording
how the harness's updaters overlap: who is inside a grace-period call when another
update-side call begins, and whether a grace period is under way when a cookie is
taken or a callback queued. ``tests/test_stress_updaters.py`` reads the records.

Records are written by the model thread that holds the controlled scheduler's token
(one at a time), so plain dicts suffice; these plug-ins are for controlled runs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from rcu_pgdat import sched
from rcu_pgdat.rcu import QSBR, SRCU


class Overlaps:
    """What one flavor or domain saw of its updaters."""

    def __init__(self) -> None:
        #: thread name -> the grace-period call it is inside now
        self.inside: dict[str, str] = {}
        #: the most threads inside grace-period calls at once, per call
        self.most: Counter[str] = Counter()
        #: calls that began while another thread was inside a grace-period call
        self.during_another: Counter[str] = Counter()
        #: calls that began while the flavor's own grace period was in progress
        self.mid_gp: Counter[str] = Counter()

    def begin(self, call: str, gp_seq: int) -> None:
        me = sched.current_name()
        if any(name != me for name in self.inside):
            self.during_another[call] += 1
        if gp_seq & 1:
            self.mid_gp[call] += 1

    def waiting(self, call: str, gp_seq: int, wait: Callable[[], Any]) -> Any:
        self.begin(call, gp_seq)
        me = sched.current_name()
        outer = self.inside.get(me)
        self.inside[me] = call
        self.most[call] = max(self.most[call],
                              sum(1 for c in self.inside.values() if c == call))
        try:
            return wait()
        finally:
            if outer is None:
                del self.inside[me]
            else:
                self.inside[me] = outer


class RecordingQSBR(QSBR):
    """QSBR that records its updaters' overlaps in ``overlaps``."""

    name = "qsbr"

    def __init__(self) -> None:
        super().__init__()
        self.overlaps = Overlaps()

    def synchronize(self) -> None:
        self.overlaps.waiting("synchronize", self.gp_seq, super().synchronize)

    def cond_synchronize(self, cookie: int) -> None:
        self.overlaps.waiting("cond_synchronize", self.gp_seq,
                              lambda: super(RecordingQSBR, self).cond_synchronize(cookie))

    def barrier(self) -> None:
        self.overlaps.waiting("barrier", self.gp_seq, super().barrier)

    def call_rcu(self, callback: Callable[[], Any]) -> None:
        self.overlaps.begin("call_rcu", self.gp_seq)
        super().call_rcu(callback)

    def get_state(self) -> int:
        self.overlaps.begin("get_state", self.gp_seq)
        return super().get_state()


class RecordingSRCU(SRCU):
    """SRCU that records its updaters' overlaps in ``overlaps``."""

    def __init__(self) -> None:
        super().__init__("pgdat")
        self.overlaps = Overlaps()

    def synchronize(self) -> None:
        self.overlaps.waiting("synchronize", self.gp_seq, super().synchronize)

    def barrier(self) -> None:
        self.overlaps.waiting("barrier", self.gp_seq, super().barrier)

    def call_srcu(self, callback: Callable[[], Any]) -> None:
        self.overlaps.begin("call_srcu", self.gp_seq)
        super().call_srcu(callback)
