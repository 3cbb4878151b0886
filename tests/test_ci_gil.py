"""The free-threaded leg's GIL check says what it must, on this interpreter."""

from __future__ import annotations

import sys

from conftest import gil_problem


def test_no_expectation_means_no_problem() -> None:
    assert gil_problem(False) is None


def test_the_check_fails_exactly_when_the_gil_is_on() -> None:
    is_enabled = getattr(sys, "_is_gil_enabled", lambda: True)
    problem = gil_problem(True)
    if is_enabled():
        assert problem is not None and "RCU_PGDAT_EXPECT_NOGIL" in problem
    else:
        assert problem is None
