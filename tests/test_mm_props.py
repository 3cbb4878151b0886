"""Property: any sequence of offlines, onlines, allocations and frees keeps the model's
invariants (zonelists by distance over online nodes, pages conserved, rollbacks exact)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_mm_support import SMALL_ZONES, Tasks, built

from rcu_pgdat.check.testing import Actors
from rcu_pgdat.mm.hotplug import EBUSY, LAST_NODE, NOT_ONLINE, OK, VETO
from rcu_pgdat.mm.mempolicy import MPOL_PREFERRED, Mempolicy, set_mempolicy
from rcu_pgdat.mm.page_alloc import Page, alloc_pages, free_pages
from rcu_pgdat.mm.system import System
from rcu_pgdat.mm.zonelist import zonelist_order

NODES = 3

#: ``(operation, node or held-block index, order)``.
_ops = st.lists(st.tuples(st.sampled_from(["offline", "online", "alloc", "free"]),
                          st.integers(0, 7), st.integers(0, 2)), max_size=14)


def _check_invariants(system: System, held: list[Page]) -> None:
    online = [nid for nid in range(NODES) if system.node_online.test(nid)]
    assert online, "the last node went offline"
    for nid in online:
        pgdat = system.pgdat(nid)
        assert list(pgdat.node_zonelists.zonerefs) == zonelist_order(system, nid)
        for zone in pgdat.node_zones:
            system.check_zone_accounting(zone, "property")
            assert not zone.isolated
    assert all(system.node_online.test(p.nid) for p in held)
    assert sorted(p.pfn for p in held) == [p.pfn for p in system.live_pages()]


@settings(max_examples=25, deadline=None)
@given(ops=_ops, migrate=st.booleans(), policy_mode=st.sampled_from(["veto", "rebind"]))
def test_any_hotplug_sequence_keeps_the_invariants(ops: list[tuple[str, int, int]],
                                                  migrate: bool, policy_mode: str) -> None:
    with built(nodes=NODES, cpus=NODES, pages=SMALL_ZONES, migrate=migrate,
               offline_timeout=0.01, policy_mode=policy_mode) as system, \
            Tasks(system, "user") as tasks, Actors("remover") as actors:
        task = tasks["user"]
        held: list[Page] = []
        for op, index, order in ops:
            nid = index % NODES
            if op == "offline":
                was_online = system.node_online.weight()
                result = actors.run("remover", system.remover.offline_node, nid)
                assert result in (OK, EBUSY, VETO, LAST_NODE, NOT_ONLINE)
                assert (result == LAST_NODE) == (was_online == 1 and system.node_online.test(nid))
                if result == EBUSY:
                    assert not migrate or any(p.nid == nid for p in held)
            elif op == "online":
                actors.run("remover", system.remover.online_node, nid)
            elif op == "alloc" and system.node_online.test(nid):
                set_mempolicy(system, task, Mempolicy(MPOL_PREFERRED, (nid,)))
                page = tasks.run("user", alloc_pages, system, task, order)
                if page is not None:
                    held.append(page)
            elif op == "free" and held:
                tasks.run("user", free_pages, system, held.pop(index % len(held)))
            _check_invariants(system, held)
        for page in held:
            tasks.run("user", free_pages, system, page)
        system.check_pages_conserved()
    assert system.collector.ok, system.collector.format()
