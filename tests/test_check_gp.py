"""The grace-period oracle and the pipeline, driven by scripted interleavings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rcu_pgdat.check import PIPE_LEN, Collector, Oracles, Tracked, TrackedAllocator
from rcu_pgdat.check.testing import Actors
from rcu_pgdat.errors import UnbalancedUnlockError, UsageError

QSBR = "rcu:qsbr"
SRCU = "srcu:pgdat"


class Node(Tracked):
    nid: int


def make() -> tuple[Collector, Oracles]:
    collector = Collector(stop_on_first=False)
    return collector, Oracles(collector)


# -- too-short grace periods ------------------------------------------------------------------


def test_grace_period_ending_inside_an_older_section_is_reported() -> None:
    collector, oracles = make()
    with Actors("reader", "remover") as a:
        a.run("reader", oracles.section_begin, QSBR, False)
        gp = a.run("remover", oracles.gp_begin, QSBR)
        a.run("remover", oracles.gp_end, gp)            # a broken synchronize returned
        a.run("reader", oracles.section_end, QSBR)
    (violation,) = collector.violations
    assert violation.kind == "gp-too-short" and violation.thread == "remover"
    assert violation.title == ("BUG: gp-too-short in rcu:qsbr: grace period ended while "
                               "reader still read")
    report = violation.format()
    assert "Reader reader: its section #1;" in report
    assert "Grace period #1 of rcu:qsbr (gp_begin by thread remover)" in report
    assert "Reader Pipe (rcu:qsbr):" in report          # the statistics ride along


@pytest.mark.parametrize("script", [
    # section ends before the grace period does: a correct wait
    ["begin", "gp_begin", "end", "gp_end"],
    # the grace period began first: it need not wait for a younger section
    ["gp_begin", "begin", "gp_end", "end"],
])
def test_correct_orders_are_quiet(script: list[str]) -> None:
    collector, oracles = make()
    with Actors("reader", "remover") as a:
        gp: Any = None
        for step in script:
            if step == "begin":
                a.run("reader", oracles.section_begin, QSBR, False)
            elif step == "end":
                a.run("reader", oracles.section_end, QSBR)
            elif step == "gp_begin":
                gp = a.run("remover", oracles.gp_begin, QSBR)
            else:
                a.run("remover", oracles.gp_end, gp)
    assert collector.ok
    batch = oracles.stats().key(QSBR).reader_batch
    # Reader Batch: a grace period completed inside the section only in the 2nd script.
    assert batch[0] + batch[1] == 1 and batch[1] == (script[0] == "gp_begin")


def test_other_keys_and_nesting() -> None:
    collector, oracles = make()
    with Actors("reader", "remover") as a:
        a.run("reader", oracles.section_begin, SRCU, True)     # another domain
        gp = a.run("remover", oracles.gp_begin, QSBR)
        a.run("remover", oracles.gp_end, gp)
        assert collector.ok
        a.run("reader", oracles.section_begin, QSBR, False)    # outer
        gp = a.run("remover", oracles.gp_begin, QSBR)
        a.run("reader", oracles.section_begin, QSBR, False)    # inner, younger than gp
        a.run("reader", oracles.section_end, QSBR)             # ends the inner one
        a.run("remover", oracles.gp_end, gp)                   # outer still open
        a.run("reader", oracles.section_end, QSBR)
        a.run("reader", oracles.section_end, SRCU)
    assert collector.kinds() == ["gp-too-short"]


def test_srcu_handles_end_the_named_section() -> None:
    collector, oracles = make()
    with Actors("reader", "remover") as a:
        first = a.run("reader", oracles.section_begin, SRCU, True)
        gp = a.run("remover", oracles.gp_begin, SRCU)
        a.run("reader", oracles.section_begin, SRCU, True)
        a.run("reader", oracles.section_end, SRCU, first)      # the older one ends first
        a.run("remover", oracles.gp_end, gp)                   # only a younger one is open
        a.run("reader", oracles.section_end, SRCU)
    assert collector.ok


def test_misuse_raises() -> None:
    _, oracles = make()
    with pytest.raises(UnbalancedUnlockError, match="no open section of rcu:qsbr"):
        oracles.section_end(QSBR)
    handle = oracles.section_begin(QSBR, False)
    with pytest.raises(UnbalancedUnlockError, match=f"with handle {handle + 1}"):
        oracles.section_end(QSBR, handle + 1)
    with pytest.raises(UsageError, match="first used with sleepable=False"):
        oracles.section_begin(QSBR, True)
    oracles.section_end(QSBR, handle)
    gp = oracles.gp_begin(QSBR)
    oracles.gp_end(gp)
    with pytest.raises(UsageError, match="twice"):
        oracles.gp_end(gp)
    with pytest.raises(UsageError, match="token"):
        oracles.gp_end("not a token")                   # type: ignore[arg-type]


# -- property: the oracle agrees with the definition, over random schedules -----------------------

ACTORS = ("r0", "r1", "w0", "w1")
KEYS = ((QSBR, False), (SRCU, True))
# Mostly one key and few section ends, so that grace periods often overlap sections.
EVENTS = st.lists(
    st.tuples(st.sampled_from(["begin", "end", "gp_begin", "gp_end", "gp_end"]),
              st.integers(0, 1), st.sampled_from([0, 0, 0, 1])),
    min_size=6, max_size=30)


@settings(max_examples=40, deadline=None)
@given(EVENTS)
def test_oracle_matches_the_definition(events: list[tuple[str, int, int]]) -> None:
    """Reported exactly when a grace period that began after a section began ends
    before that section ended (computed here from the event order alone)."""
    collector, oracles = make()
    order = 0
    open_sections: dict[str, list[tuple[int, str]]] = {"r0": [], "r1": []}
    running: dict[str, tuple[int, str, Any]] = {}
    expected: list[str] = []
    with Actors(*ACTORS) as a:
        for op, who, k in events:
            key, sleepable = KEYS[k]
            reader, writer = ACTORS[who], ACTORS[2 + who]
            if op == "begin":
                order += 1
                a.run(reader, oracles.section_begin, key, sleepable)
                open_sections[reader].append((order, key))
            elif op == "end" and any(key == s_key for _, s_key in open_sections[reader]):
                a.run(reader, oracles.section_end, key)
                innermost = max(s for s in open_sections[reader] if s[1] == key)
                open_sections[reader].remove(innermost)
            elif op == "gp_begin" and writer not in running:
                order += 1
                running[writer] = (order, key, a.run(writer, oracles.gp_begin, key))
            elif op == "gp_end" and writer in running:
                began, gp_key, token = running.pop(writer)
                a.run(writer, oracles.gp_end, token)
                victims = sorted(r for r, secs in open_sections.items()
                                 if any(b < began and s_key == gp_key for b, s_key in secs))
                if victims:
                    expected.append(f"in {gp_key}: grace period ended while "
                                    f"{', '.join(victims)} still read")
    event(f"{len(expected)} too-short grace period(s)")
    assert [v.subject for v in collector.violations] == expected
    assert all(v.kind == "gp-too-short" for v in collector.violations)


# -- the pipeline ------------------------------------------------------------------------------


def test_read_after_a_full_grace_period_since_retire_is_a_pipeline_violation() -> None:
    collector, oracles = make()
    memory = TrackedAllocator(oracles)
    node = memory.alloc(Node, "pgdat[3]", nid=3)
    with Actors("reader", "remover") as a:
        a.run("remover", oracles.retire, node, QSBR)   # but still reachable: the bug
        gp = a.run("remover", oracles.gp_begin, QSBR)
        a.run("remover", oracles.gp_end, gp)
        a.run("reader", oracles.section_begin, QSBR, False)
        ref = a.run("reader", oracles.deref, node, QSBR)
        a.run("reader", oracles.section_end, QSBR)
    assert ref.nid == 3                                 # not freed: memory is quiet
    (violation,) = collector.violations
    assert violation.kind == "pipeline" and violation.thread == "reader"
    assert violation.title == ("BUG: pipeline in rcu:qsbr: pgdat[3] read 1 grace period(s) "
                               "after it was retired")
    report = violation.format()
    assert "Retired by thread remover after grace period #0 of rcu:qsbr had begun" in report
    assert "!!! Reader Pipe (rcu:qsbr): 0 0 1 0" in report


def test_pipeline_counts_only_grace_periods_begun_after_the_retire() -> None:
    collector, oracles = make()
    memory = TrackedAllocator(oracles)
    node = memory.alloc(Node, "n", nid=0)
    with Actors("reader", "remover", "other") as a:
        early = a.run("other", oracles.gp_begin, QSBR)      # began before the retire
        a.run("reader", oracles.section_begin, QSBR, False)
        assert a.run("reader", oracles.on_read, node, QSBR) == 0
        a.run("remover", oracles.retire, node, QSBR)
        a.run("other", oracles.gp_end, early)               # does not protect the reader
        assert a.run("reader", oracles.on_read, node, QSBR) == 1
        a.run("reader", oracles.section_end, QSBR)
        gp = a.run("remover", oracles.gp_begin, QSBR)
        a.run("remover", oracles.gp_end, gp)
    assert oracles.stats().key(QSBR).reader_pipe[:3] == (1, 1, 0)
    assert collector.ok
    assert oracles.on_read(node, QSBR) == 2                 # now it would be a violation
    memory.reinit(node, nid=0)                              # re-published, new generation
    assert oracles.on_read(node, QSBR) == 0
    assert collector.kinds() == ["pipeline"]


def test_pipeline_saturates_and_retired_table_is_bounded() -> None:
    collector, oracles = make()
    oracles.retired_limit = 2
    items = [object() for _ in range(3)]
    for item in items:
        oracles.retire(item, QSBR)
    for _ in range(PIPE_LEN + 3):
        oracles.gp_end(oracles.gp_begin(QSBR))
    assert oracles.on_read(items[0], QSBR) == 0             # its record was dropped
    assert oracles.on_read(items[2], QSBR) == PIPE_LEN + 1
    assert oracles.stats().key(QSBR).reader_pipe[PIPE_LEN] == 1
    assert collector.kinds() == ["pipeline"]
    assert "3 retired" in oracles.stats_text()
