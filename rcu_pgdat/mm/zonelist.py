"""Zonelists: each node's fallback order of zones, and ``build_all_zonelists()``.

A node's zonelist lists the zones of every online node, nearest node first (SLIT
distance, ties by node id), and within a node the highest zone first, as the kernel's
node-ordered zonelists do. ``build_all_zonelists`` rewrites every online node's list
*in place*, one entry at a time, in one of two ways:

``stop-machine`` (the RFC, and the kernel of 2008)
    The rewrite runs inside ``stop_machine()``: no task is inside a non-preemptible
    read-side section, so no ``alloc_pages()`` walk sees a half-written list. A
    preemptible (sleepable) reader may be parked mid-walk and resume on the new list:
    it may skip or repeat a zone, never touch a freed one, because zones are freed only
    after a grace period that covers it.
``seqcount`` (today's kernel, ``zonelist_update_seq``)
    No stop-machine: the rewrite is bracketed by a sequence count, and an allocator
    whose walk overlapped a rewrite (and found nothing) retries with the new list.

In both, a zone removed from the lists stays allocated until the remover's grace period
has ended, so a walk that read the old entry still finds live memory.

Schedule points: before every entry where they are the only places another thread can
run, or where what a reader sees half-way is the point: in a controlled run (one model
thread runs between two points, so each point is an interleaving the strategy may pick)
and in ``seqcount`` mode (allocators walk a list while it is rewritten). Free-running
in ``stop-machine`` mode, once per list: there the interpreter switches threads at any
bytecode whatever the points, so a point reaches no state that a run cannot reach
without it; it only offers an extra yield. No reader that walks a zonelist inside a
non-preemptible section runs during the rewrite, and a preemptible one that caught a
list half-written holds only zones of the old or the new list, all live until the
grace period. A yield offer per entry made the rebuild cost nodes squared offers (8,192
at 64 nodes) with every non-preemptible task parked, for no state a bug needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import sched
from .pgdat import PglistData, Zone

if TYPE_CHECKING:
    from .system import System

__all__ = ["ZONELIST_MODES", "REBUILD_PROGRESS", "build_all_zonelists", "zonelist_order"]

ZONELIST_MODES = ("stop-machine", "seqcount")
#: The progress label of one node's zonelist rewritten (``sched.progress``): a rebuild
#: rewrites nodes x zones entries, so on a large machine it is a long step of the
#: remover that must not look like a stall or a livelock while it advances.
REBUILD_PROGRESS = "node zonelist rebuilt"


def _live_zones(system: "System") -> dict[int, list[Zone]]:
    """Each node a zonelist may lead to now (online, not being removed): its zones,
    highest first. Called by the remover (or by boot code) only."""
    live: dict[int, list[Zone]] = {}
    for nid in range(system.topology.nr_nodes):
        if not system.node_online.test(nid) or system.node_removing.test(nid):
            continue
        pgdat = system.node_data[nid]
        if pgdat is not None:
            live[nid] = list(reversed(pgdat.node_zones))
    return live


def _order(system: "System", nid: int, live: dict[int, list[Zone]]) -> list[Zone]:
    return [zone for other in system.topology.nodes_by_distance(nid) if other in live
            for zone in live[other]]


def zonelist_order(system: "System", nid: int) -> list[Zone]:
    """The zones ``nid``'s zonelist should hold now: online nodes by distance.

    Called by the remover (or by boot code) only; nodes being removed are left out.
    """
    return _order(system, nid, _live_zones(system))


def _rewrite(pgdat: PglistData, zones: list[Zone], each_entry: bool) -> None:
    refs = pgdat.node_zonelists.zonerefs
    if not each_entry:
        sched.point("build_zonelists:list")
    for i, zone in enumerate(zones):
        if each_entry:
            sched.point("build_zonelists:entry")
        if i < len(refs):
            refs[i] = zone
        else:
            refs.append(zone)
    if each_entry:
        sched.point("build_zonelists:trim")
    del refs[len(zones):]


def _rebuild_all(system: "System", each_entry: bool) -> None:
    """Rewrite every online node's list. The nodes' states and zones are read once for
    all lists: only the remover, which runs this, changes them."""
    live = _live_zones(system)
    for nid in range(system.topology.nr_nodes):
        if not system.node_online.test(nid):
            continue
        pgdat = system.node_data[nid]
        if pgdat is not None:
            _rewrite(pgdat, _order(system, nid, live), each_entry)
            system.remover.advance(REBUILD_PROGRESS)


def build_all_zonelists(system: "System") -> None:
    """Rebuild every online node's zonelist, in the run's zonelist mode (module doc)."""
    if system.config.zonelist_mode == "stop-machine":
        each_entry = sched.active().controlled
        system.stop_machine.run(lambda: _rebuild_all(system, each_entry),
                                "build_all_zonelists")
    else:
        system.zonelist_seq.write_begin()
        try:
            _rebuild_all(system, each_entry=True)
        finally:
            system.zonelist_seq.write_end()
    system.stats.zonelist_rebuilds += 1
