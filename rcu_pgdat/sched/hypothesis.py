"""Hypothesis strategies that draw schedules, so Hypothesis searches and shrinks
interleavings of your own threads.

Only for tests: it imports :mod:`hypothesis` (a test extra), so nothing else in
rcu-pgdat imports this module. A drawn schedule is a :class:`ChoiceStrategy`: one small
integer per step, read modulo the runnable threads, 0 meaning "keep running the thread
that ran last". Hypothesis shrinks lists to be shorter and integers to be smaller, so a
shrunk failing schedule has few preemptions::

    from hypothesis import given
    from rcu_pgdat import sched
    from rcu_pgdat.sched.hypothesis import schedules

    @given(schedules())
    def test_counter(schedule):
        result = sched.run_program(make_program, schedule)
        assert not result.failed, result.describe()
"""

from __future__ import annotations

from hypothesis import strategies as st

from .basic import ChoiceStrategy

__all__ = ["schedules"]


def schedules(max_steps: int = 64, max_choice: int = 7) -> st.SearchStrategy[ChoiceStrategy]:
    """Schedules of up to ``max_steps`` explicit choices, each in ``0..max_choice``.

    Steps past the drawn list run non-preemptively. ``max_choice`` need not exceed the
    number of threads minus one (choices are taken modulo the runnable threads).
    """
    if max_steps < 0 or max_choice < 0:
        raise ValueError("max_steps and max_choice must be >= 0")
    return st.lists(st.integers(0, max_choice), max_size=max_steps).map(ChoiceStrategy)
