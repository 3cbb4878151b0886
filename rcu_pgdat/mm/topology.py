"""NUMA topology: nodes, CPUs, the boot-time ``cpu_to_node`` map and SLIT distances.

The topology is fixed for a run; what changes at run time (which nodes and CPUs are
online, which CPU a task runs on) lives in the node map and the CPU map.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Topology", "ZONE_NAMES", "LOCAL_DISTANCE", "REMOTE_DISTANCE"]

#: Zone types of every node, lowest first (the kernel's ``enum zone_type`` subset).
ZONE_NAMES: tuple[str, ...] = ("DMA32", "NORMAL", "MOVABLE")

#: SLIT conventions: 10 is local, 20 is one hop.
LOCAL_DISTANCE = 10
REMOTE_DISTANCE = 20


def _ring_distances(nr_nodes: int) -> tuple[tuple[int, ...], ...]:
    """A ring: 10 to itself, 20 to a neighbour, 10 more for every further hop."""
    rows = []
    for a in range(nr_nodes):
        row = []
        for b in range(nr_nodes):
            hops = min(abs(a - b), nr_nodes - abs(a - b))
            row.append(LOCAL_DISTANCE if hops == 0 else LOCAL_DISTANCE + 10 * hops)
        rows.append(tuple(row))
    return tuple(rows)


@dataclass(frozen=True)
class Topology:
    """N nodes, M CPUs spread round-robin, a SLIT matrix and per-zone page counts.

    Invariants (checked in ``__post_init__``): at least one node and one CPU per node at
    boot; the distance matrix is square, ``LOCAL_DISTANCE`` on the diagonal and larger
    off it; every ``cpu_to_node`` entry names a node.
    """

    nr_nodes: int = 4
    nr_cpus: int = 8
    pages_per_zone: tuple[int, ...] = (64, 256, 256)
    distance: tuple[tuple[int, ...], ...] = ()
    cpu_to_node: tuple[int, ...] = field(default=())
    #: ``nodes_by_distance`` of every node, computed once (the topology never changes).
    _by_distance: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False,
                                                      default=())

    def __post_init__(self) -> None:
        if self.nr_nodes < 1:
            raise ValueError(f"need at least one node, got {self.nr_nodes}")
        if self.nr_cpus < self.nr_nodes:
            raise ValueError(f"need at least one CPU per node: {self.nr_cpus} CPUs for "
                             f"{self.nr_nodes} nodes")
        if len(self.pages_per_zone) != len(ZONE_NAMES) or min(self.pages_per_zone) < 0:
            raise ValueError(f"pages_per_zone needs {len(ZONE_NAMES)} counts >= 0, "
                             f"got {self.pages_per_zone}")
        if not self.distance:
            object.__setattr__(self, "distance", _ring_distances(self.nr_nodes))
        if not self.cpu_to_node:
            object.__setattr__(self, "cpu_to_node",
                               tuple(cpu % self.nr_nodes for cpu in range(self.nr_cpus)))
        self._validate_maps()
        object.__setattr__(self, "_by_distance", tuple(
            tuple(sorted(range(self.nr_nodes), key=lambda other: (self.distance[nid][other],
                                                                 other)))
            for nid in range(self.nr_nodes)))

    def _validate_maps(self) -> None:
        n = self.nr_nodes
        if len(self.distance) != n or any(len(row) != n for row in self.distance):
            raise ValueError(f"distance matrix must be {n}x{n}")
        for a in range(n):
            for b in range(n):
                d = self.distance[a][b]
                if (a == b and d != LOCAL_DISTANCE) or (a != b and d <= LOCAL_DISTANCE):
                    raise ValueError(f"bad SLIT distance[{a}][{b}] = {d}: {LOCAL_DISTANCE} "
                                     f"on the diagonal, more than that elsewhere")
        if len(self.cpu_to_node) != self.nr_cpus or any(
                not 0 <= nid < n for nid in self.cpu_to_node):
            raise ValueError(f"cpu_to_node must map {self.nr_cpus} CPUs to nodes 0..{n - 1}")
        if set(self.cpu_to_node) != set(range(n)):
            raise ValueError("every node needs at least one CPU at boot")

    def nodes_by_distance(self, nid: int) -> list[int]:
        """All nodes, nearest to ``nid`` first (ties broken by node id: deterministic)."""
        return list(self._by_distance[nid])

    def cpus_of(self, nid: int) -> list[int]:
        """CPUs that belong to node ``nid`` by the boot-time map."""
        return [cpu for cpu, node in enumerate(self.cpu_to_node) if node == nid]

    @property
    def pages_per_node(self) -> int:
        """Pages every node brings when it is onlined."""
        return sum(self.pages_per_zone)
