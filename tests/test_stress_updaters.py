"""The default configuration's update side overlaps the way update-side bugs need.

``stress.workers`` argues which interleavings grace-period sharing, polled cookies and
callbacks go wrong in; these tests check that a default run makes them, with the
built-in flavor and domain plugged in as recording plug-ins
(``tests/plugins/recording_rcu.py``): several threads inside ``synchronize()`` at once
on both the RCU flavor and the SRCU domain, ``cond_synchronize()``, ``barrier()`` and
``call_rcu()`` begun while another thread waits for a grace period, cookies taken while
a grace period is under way, and readers whose sections see more than one grace period
end. The same checks fail with one fake writer (the SRCU domain then has no updater
of its own beside the remover), so they can fail.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stress.run import RunConfig, run

PLUGINS = Path(__file__).resolve().parent / "plugins"
SEEDS = (1, 2)
STEPS = 10_000
RECORDING = {"flavor": "recording_rcu:RecordingQSBR", "srcu": "recording_rcu:RecordingSRCU"}


@pytest.fixture(autouse=True)
def _plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))


def overlaps(cfg: RunConfig) -> dict[str, Any]:
    """What the recording flavor and domain saw over ``SEEDS`` (controlled, random)."""
    seen: dict[str, Any] = {"rcu": [Counter(), Counter(), Counter()],
                            "srcu": [Counter(), Counter(), Counter()], "batch": Counter()}
    for seed in SEEDS:
        result = run(replace(cfg, **RECORDING, sched="random", seed=seed, steps=STEPS),
                     status=None)
        assert result.ok, result.violations[0].format()
        scheme: Any = result.system.scheme
        for name, impl in (("rcu", scheme.rcu.flavor), ("srcu", scheme.srcu.domain)):
            o = impl.overlaps
            most, during, mid = seen[name]
            most.update({k: v for k, v in o.most.items() if v > most[k]})
            during.update(o.during_another)
            mid.update(o.mid_gp)
        for key in result.system.oracles.stats().keys:
            seen["batch"][key.key] += sum(key.reader_batch[2:])
    return seen


def gaps(seen: dict[str, Any]) -> list[str]:
    """What the update side failed to do, in words (empty: everything)."""
    missing = []
    for name, calls in (("rcu", ("cond_synchronize", "barrier", "call_rcu")),
                        ("srcu", ("barrier", "call_srcu"))):
        most, during, mid = seen[name]
        if most["synchronize"] < 2:
            missing.append(f"{name}: never two threads inside synchronize() at once")
        missing += [f"{name}: {call}() never began during another's grace-period wait"
                    for call in calls if not during[call]]
    if not seen["rcu"][2]["get_state"]:
        missing.append("rcu: no cookie taken while a grace period was under way")
    if not seen["batch"]["rcu:qsbr"]:
        missing.append("rcu: no read-side section saw two grace periods end")
    return missing


def test_the_default_update_side_overlaps_on_both_flavors() -> None:
    assert gaps(overlaps(RunConfig())) == []


def test_one_fake_writer_leaves_the_srcu_domain_without_overlaps() -> None:
    missing = gaps(overlaps(RunConfig(fake_writers=1)))
    assert "srcu: call_srcu() never began during another's grace-period wait" in missing
