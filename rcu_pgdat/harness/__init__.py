"""The harness: how any RCU code is run, watched and judged, once for every front end.

It sits above the code under test (``rcu``) and the oracles (``check``), and below the
kernel model (``mm``), the stress runner (``stress``) and the pytest plugin, which all
drive runs through it:

* :mod:`.checked`: the wrappers every flavor and SRCU domain, built-in or plug-in, is
  driven through, so that the oracles see its sections and grace periods;
* :mod:`.run`: one run's fresh state (oracles, collector that stops the scheduler at
  the first violation, threads), the teardown thread and the final check;
* :mod:`.verdict`: the step budget and what a scheduler outcome means as a violation;
* :mod:`.session`: the program factory the schedulers re-run, and the one place where a
  run starts and ends (hooks installed and restored);
* :mod:`.modes`: the scheduling modes; :mod:`.seeds`: seed ranges.
"""

from __future__ import annotations

from .checked import CheckedRCU, CheckedSRCU
from .modes import EXPLORE, MODES, NAIVE, STRESS, Mode, is_controlled, seeded_modes
from .run import TEARDOWN, Run, StoppingCollector
from .seeds import parse_seeds, seed_span
from .session import Executed, Limits, Session, execute, replay, shrink_same_kind
from .verdict import OUTCOME_VIOLATIONS, WIND_DOWN, settle, step_budget

__all__ = [
    "CheckedRCU",
    "CheckedSRCU",
    "EXPLORE",
    "Executed",
    "Limits",
    "MODES",
    "Mode",
    "NAIVE",
    "OUTCOME_VIOLATIONS",
    "Run",
    "STRESS",
    "Session",
    "StoppingCollector",
    "TEARDOWN",
    "WIND_DOWN",
    "execute",
    "is_controlled",
    "parse_seeds",
    "replay",
    "seed_span",
    "seeded_modes",
    "settle",
    "shrink_same_kind",
    "step_budget",
]
