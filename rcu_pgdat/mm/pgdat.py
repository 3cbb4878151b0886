"""The node descriptor (``pg_data_t``), its zones and its zonelist, as tracked memory.

Every object here is allocated through the oracles' tracked allocator, so a field
touched after the object was freed (or while a reused pgdat is being reset) is caught
where it happens. The layout mirrors the kernel's:

* ``PglistData``: ``node_id``, ``node_zones`` (a tuple of :class:`Zone`), ``nr_zones``,
  ``node_zonelists`` (the node's :class:`Zonelist`), ``node_present_pages``;
* ``Zone``: ``zone_pgdat`` (its node id), ``name``, ``present_pages``, ``free_pages``,
  ``isolated`` (set while its node is being removed: no new allocation may land there),
  and ``lock``, the zone lock (a spin lock: it may be taken in a read-side section);
* ``Zonelist``: ``zonerefs``, a list of zones in fallback order. It is rewritten in
  place by ``build_all_zonelists`` (see ``zonelist``), as the kernel's is.

Who writes what: the remover (holding the hotplug lock) initializes and frees these
objects; ``free_pages``/``isolated`` change only under the zone's ``lock``; ``zonerefs``
changes only inside a zonelist rebuild.

``repr()`` is the tracked default (label, generation, state): it reads no field, so
printing a freed object in a report is itself safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..check import Tracked, TrackedAllocator
from .. import sched
from .locks import SpinLock
from .topology import ZONE_NAMES, Topology

__all__ = ["PglistData", "Zone", "Zonelist", "alloc_node_data", "free_node_data",
           "reset_node_data"]


class Zone(Tracked):
    """One zone of one node (the kernel's ``struct zone``)."""

    __fields__ = ("zone_pgdat", "idx", "name", "present_pages", "free_pages", "isolated",
                  "lock")
    if TYPE_CHECKING:        # the fields, for type checkers (the metaclass makes them)
        zone_pgdat: int
        idx: int
        name: str
        present_pages: int
        free_pages: int
        isolated: bool
        lock: SpinLock


class Zonelist(Tracked):
    """A node's fallback list of zones (``pgdat->node_zonelists[ZONELIST_FALLBACK]``)."""

    __fields__ = ("node_id", "zonerefs")
    if TYPE_CHECKING:
        node_id: int
        zonerefs: list[Zone]


class PglistData(Tracked):
    """The node descriptor (``pg_data_t``)."""

    __fields__ = ("node_id", "node_zones", "nr_zones", "node_zonelists",
                  "node_present_pages")
    if TYPE_CHECKING:
        node_id: int
        node_zones: tuple[Zone, ...]
        nr_zones: int
        node_zonelists: Zonelist
        node_present_pages: int


def _zone_fields(nid: int, idx: int, pages: int) -> dict[str, Any]:
    return dict(zone_pgdat=nid, idx=idx, name=ZONE_NAMES[idx], present_pages=pages,
                free_pages=pages, isolated=False,
                lock=SpinLock(f"node{nid}.{ZONE_NAMES[idx]}.lock"))


def _pgdat_fields(nid: int, zones: tuple[Zone, ...], zonelist: Zonelist,
                  topology: Topology) -> dict[str, Any]:
    return dict(node_id=nid, node_zones=zones, nr_zones=len(zones), node_zonelists=zonelist,
                node_present_pages=topology.pages_per_node)


def alloc_node_data(allocator: TrackedAllocator, nid: int, topology: Topology) -> PglistData:
    """A fresh pgdat with its zones (all pages free) and an empty zonelist.

    The zonelist is filled by ``build_all_zonelists`` once the node is online.
    """
    zones = tuple(allocator.alloc(Zone, f"zone[{nid}].{ZONE_NAMES[idx]}",
                                  **_zone_fields(nid, idx, pages))
                  for idx, pages in enumerate(topology.pages_per_zone))
    zonelist = allocator.alloc(Zonelist, f"zonelist[{nid}]", node_id=nid, zonerefs=[])
    return allocator.alloc(PglistData, f"pgdat[{nid}]",
                           **_pgdat_fields(nid, zones, zonelist, topology))


def free_node_data(allocator: TrackedAllocator, pgdat: PglistData) -> None:
    """Free a pgdat, its zonelist and its zones (each poisoned and quarantined)."""
    zones = pgdat.node_zones
    zonelist = pgdat.node_zonelists
    allocator.free(pgdat)
    allocator.free(zonelist)
    for zone in zones:
        allocator.free(zone)


def reset_node_data(allocator: TrackedAllocator, pgdat: PglistData,
                    topology: Topology) -> None:
    """Re-initialize a kept pgdat for re-online (the ``reuse`` scheme), in place.

    Every object gets a new generation; a reader still walking the old one is caught.
    Safe only when no reader can still hold it: after the node went offline *and* a
    grace period of every flavor readers use has elapsed since (see ``hotplug``).
    """
    nid = pgdat.node_id
    zones = pgdat.node_zones
    zonelist = pgdat.node_zonelists
    # The pgdat first: from its first store on, a walker that still holds it is caught.
    with allocator.reinitializing(pgdat, **_pgdat_fields(nid, zones, zonelist, topology)):
        sched.point("reset_pgdat:zones")
        for zone in zones:
            with allocator.reinitializing(zone, **_zone_fields(nid, zone.idx,
                                                       topology.pages_per_zone[zone.idx])):
                sched.point("reset_pgdat:zone")
        with allocator.reinitializing(zonelist, node_id=nid, zonerefs=[]):
            sched.point("reset_pgdat:zonelist")
