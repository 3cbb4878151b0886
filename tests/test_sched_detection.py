"""The detection benchmark: every target under every strategy, seeds 1..N, judged by
the violation each target must cause; a correct plug-in runs clean in every cell."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from stress.bench import _common, detection
from stress.bench.detection import Cell, Target

PLUGINS = Path(__file__).resolve().parent / "plugins"
BROKEN = "user_rcu:NoWaitRCU"
CORRECT = "user_rcu:UserRCU"


@pytest.fixture(autouse=True)
def _plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))       # the worker processes inherit it


def test_matrix_catches_a_broken_plugin_everywhere_and_passes_a_correct_one() -> None:
    targets = [Target("broken", {"flavor": BROKEN, "nodes": 2}),
               Target("correct", {"flavor": CORRECT, "nodes": 2})]
    got = detection.matrix(targets, seeds=3, steps=3000, seconds=0.3, jobs=2)
    labels = [label for label, _ in detection.STRATEGY_COLUMNS]
    assert set(got["broken"]) == set(labels) and "portfolio" in labels and "pos" in labels
    for label in labels:
        assert got["correct"][label].failing == [] and not got["correct"][label].other
        assert got["correct"][label].seeds == 3
    for label in labels:
        if label != "stress":                 # controlled: a no-wait GP is found in a seed
            assert got["broken"][label].failing, label
    assert got["broken"]["random"].failing == [1, 2, 3]


def test_mutant_targets_count_only_the_violation_they_must_cause() -> None:
    targets = {t.name: t for t in detection.catalogue_targets()}
    assert "posted" in targets and targets["posted"].mutant == "posted"
    assert targets["posted"].config["inject"] == ("posted",)
    # a mutant's run config is the catalogue's: its needs, nothing tuned per mutant
    assert all("pct_depth" not in t.config and "sched" not in t.config
               for t in targets.values())
    verdict, kind = detection._run(targets["posted"], {"sched": "random"}, 1, 20_000, 0.3)
    assert (verdict, kind) == ("caught", "use-after-free")


def test_cells_summaries_and_the_portfolio_ratio() -> None:
    cell = Cell(seeds=4, failing=[3, 4])
    assert cell.first == 3 and cell.text() == "3 (2/4)"
    assert Cell(seeds=4).text() == "- (0/4)" and math.isinf(Cell().first)
    got = {"a": {"stress": Cell(4, [1]), "random": Cell(4, [2]), "pct d=2": Cell(4, [3]),
                 "portfolio": Cell(4, [4])},
           "b": {"stress": Cell(4, [1]), "random": Cell(4, []), "pct d=2": Cell(4, []),
                 "portfolio": Cell(4, [1])}}
    assert detection.portfolio_ratios(got, "first") == {"a": 2.0}   # free-running aside
    assert cell.expected == 2.0 and math.isinf(Cell(seeds=4).expected)
    got["a"]["random"] = Cell(4, [2, 3, 4])          # expected 4/3; the portfolio's 4/1
    assert detection.portfolio_ratios(got) == {"a": 3.0}
    assert detection.portfolio_ratios(got, "first") == {"a": 2.0}
    assert detection._censored_median([1.0, 3.0, math.inf]) == 3.0
    assert detection._censored_median([1.0, math.inf]) == math.inf


def test_section_shape_on_a_tiny_run() -> None:
    opts = _common.Options(quick=True)
    sec = detection.section(opts, targets=[Target("broken", {"flavor": BROKEN, "nodes": 2})])
    assert sec.columns[0] == "target" and "portfolio" in sec.columns
    assert [r[0] for r in sec.rows] == ["broken", "caught within 4 seeds",
                                        "median seeds to catch",
                                        "expected seeds to catch (N/failures), median"]
    assert sec.rows[1][1:].count("1/1") >= len(sec.columns) - 2   # stress may miss


def test_model_speed_measures_every_strategy_beside_free_running_runs() -> None:
    from stress.bench import model_speed
    got = model_speed.measure(steps=600, repeats=1, seed=1)
    assert set(got) == {*model_speed.STRATEGIES_MEASURED, model_speed.UNPINNED,
                        *model_speed.FREE}
    for mode, figs in got.items():
        (fig,) = figs
        assert fig["violations"] == 0 and fig["wall"] > 0, mode
        # A free-running run lasts as long as the controlled ones took: on a busy machine
        # its workers may not finish a loop in that time (a rate, not a fact to assert).
        assert fig["loops"] > 0 or mode in model_speed.FREE, mode
        assert (fig["steps"] >= 600) == (mode not in model_speed.FREE), mode
    # Threads on one CPU or not, one seed is one run: the same steps and the same work.
    (pinned,), (free,) = got["random"], got[model_speed.UNPINNED]
    assert (pinned["steps"], pinned["loops"]) == (free["steps"], free["loops"])
