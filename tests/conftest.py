"""Suite-wide fixtures: on the free-threaded leg, proof that the GIL stayed off.

CPython 3.13t turns the GIL back on, with only a warning, when a C extension that does
not declare free-threading support is imported. A suite that passes with the GIL back
on has proved nothing about parallel readers, so the free-threaded legs of ``.ci/run``
and tox set ``RCU_PGDAT_EXPECT_NOGIL=1`` and every pytest worker checks at the end of
its session that the GIL is still off.
"""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

EXPECT_NOGIL = "RCU_PGDAT_EXPECT_NOGIL"


def gil_problem(expect_nogil: bool) -> str | None:
    """Why this interpreter fails the free-threaded check, or ``None`` when it passes."""
    if not expect_nogil:
        return None
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_enabled is None:
        return f"{EXPECT_NOGIL}=1 but {sys.version.split()[0]} is not a free-threaded build"
    if is_enabled():
        return (f"{EXPECT_NOGIL}=1 but the GIL is on at the end of the run: an imported "
                "C extension re-enabled it (run with -W error::RuntimeWarning to see which)")
    return None


@pytest.fixture(scope="session", autouse=True)
def _gil_stays_off() -> Iterator[None]:
    """Fail this worker's session if the GIL is on when its last test has run."""
    yield
    problem = gil_problem(os.environ.get(EXPECT_NOGIL) == "1")
    if problem:
        pytest.fail(problem, pytrace=False)
