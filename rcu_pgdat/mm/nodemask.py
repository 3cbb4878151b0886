"""``node_online_map``: which nodes are online, with atomic set and clear of one bit.

The kernel keeps a bitmap and flips bits with ``set_bit``/``clear_bit`` (atomic
read-modify-write of one word). A Python ``int`` bitmap would need a load, an or, and a
store: two removers' updates, or an update racing a reader's load, could lose a bit on
free-threaded CPython. So the map is a list of booleans: setting or clearing a bit is
one list-item store, and testing it one list-item load, both atomic on their own.

Readers walking the map (``for_each_online_node``) read each bit once, in order, as the
kernel's ``for_each_node_state`` does: a walk that races an offline may or may not see
the node, and that is exactly the window the pgdat read lock has to cover.
"""

from __future__ import annotations

from typing import Iterator

from .. import sched

__all__ = ["NodeMap"]


class NodeMap:
    """A map of node state bits (online, or "being removed") for ``nr_nodes`` nodes."""

    __slots__ = ("name", "_bits")

    def __init__(self, nr_nodes: int, name: str = "node_online_map",
                 initial: bool = False) -> None:
        self.name = name
        self._bits = [initial] * nr_nodes   # one list item per node: atomic load/store

    def set(self, nid: int) -> None:
        """``node_set_online``-style atomic set of one bit."""
        sched.point(f"{self.name}:set")
        self._bits[nid] = True

    def clear(self, nid: int) -> None:
        """``node_set_offline``-style atomic clear of one bit."""
        sched.point(f"{self.name}:clear")
        self._bits[nid] = False

    def test(self, nid: int) -> bool:
        """Whether the bit of ``nid`` is set (one atomic load)."""
        return self._bits[nid]

    def __iter__(self) -> Iterator[int]:
        """Node ids whose bit is set, lowest first; each bit is read once, racily."""
        for nid in range(len(self._bits)):
            sched.point(f"{self.name}:walk")
            if self._bits[nid]:
                yield nid

    def weight(self) -> int:
        """How many bits are set (a snapshot, each bit read once)."""
        return sum(1 for bit in list(self._bits) if bit)

    def snapshot(self) -> tuple[bool, ...]:
        """The bits as a tuple (for reports and rollback checks)."""
        return tuple(self._bits)

    def __len__(self) -> int:
        return len(self._bits)

    def __repr__(self) -> str:
        on = [nid for nid, bit in enumerate(self._bits) if bit]
        return f"<NodeMap {self.name} {on}>"
