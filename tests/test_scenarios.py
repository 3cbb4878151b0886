"""Every named scenario is a correct configuration: a run of it finds no violation.

The default suite runs each for a couple of seconds; tox's ``stress`` factor runs them
longer (``RCU_PGDAT_SCENARIO_SECONDS``). A failure prints the violation and the line that
reproduces it. Controlled runs of every scenario: ``test_false_alarms.py``.
"""

from __future__ import annotations

import os

import pytest

from stress.report import reproduce_line
from stress.run import RunConfig, run
from stress.scenarios import SCENARIOS

SECONDS = float(os.environ.get("RCU_PGDAT_SCENARIO_SECONDS", "1.5"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_runs_clean(name: str) -> None:
    cfg = RunConfig(**SCENARIOS[name][1], duration=SECONDS, seed=11, scenario=name)
    result = run(cfg, status=None)
    assert not result.violations, (result.violations[0].format() + "\nreproduce: "
                                   + reproduce_line(cfg))
    assert sum(s.reads for s in result.workers.values()) > 0
    assert result.workers["remover"].loops > 0          # the remover made progress
