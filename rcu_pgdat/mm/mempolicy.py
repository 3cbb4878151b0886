"""Memory policies (default, preferred, bind, interleave) and what happens on node offline.

A task's policy is an immutable :class:`Mempolicy`; changing it replaces the task's
``mempolicy`` attribute in one store, under the task's ``policy_lock``. An allocator
loads the attribute once and works with that snapshot, so it never sees half a policy.

The RFC leaves open what a policy does when its node goes away. Two documented modes:

``veto`` (default)
    A policy whose node set would become empty (bind or interleave on that node only)
    vetoes the offline (``NOTIFY_BAD``): the remover rolls back and reports VETO. A
    preferred policy moves to the nearest online node; a multi-node bind or interleave
    drops the node.
``rebind``
    Never veto: an emptied bind or interleave falls back to the nearest online node,
    as cpuset rebinding does.

Ordering with ``set_mempolicy()``: the remover marks the node "being removed" before
it runs the notifier chain, and both the chain's per-task step and ``set_mempolicy``
hold the task's ``policy_lock``. So a concurrent ``set_mempolicy`` either ran its node
check before the mark (and its store before the chain's step for that task, which then
rebinds it) or after (and refuses the node). Checking without the lock would let a store
land after the rebind, leaving a policy on an offline node.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterable

from .. import sched
from ..errors import UsageError
from .notifier import MEM_GOING_OFFLINE, MEM_OFFLINE, NOTIFY_BAD, NOTIFY_OK

if TYPE_CHECKING:
    from .system import System
    from .task import Task

__all__ = ["Mempolicy", "MPOL_DEFAULT", "MPOL_PREFERRED", "MPOL_BIND", "MPOL_INTERLEAVE",
           "POLICY_MODES", "set_mempolicy", "policy_offline_step", "PolicyOfflineResult",
           "MempolicyNotifier"]

MPOL_DEFAULT = "default"
MPOL_PREFERRED = "preferred"
MPOL_BIND = "bind"
MPOL_INTERLEAVE = "interleave"

#: The offline behaviours described in the module docstring.
POLICY_MODES = ("veto", "rebind")


@dataclass(frozen=True)
class Mempolicy:
    """An immutable memory policy. ``nodes`` is sorted; empty for ``default``."""

    mode: str = MPOL_DEFAULT
    nodes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in (MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE):
            raise ValueError(f"unknown mempolicy mode {self.mode!r}")
        if self.mode == MPOL_DEFAULT and self.nodes:
            raise ValueError("the default policy takes no nodes")
        if self.mode == MPOL_PREFERRED and len(self.nodes) != 1:
            raise ValueError("a preferred policy names exactly one node")
        if self.mode in (MPOL_BIND, MPOL_INTERLEAVE) and not self.nodes:
            raise ValueError(f"a {self.mode} policy needs at least one node")
        object.__setattr__(self, "nodes", tuple(sorted(set(self.nodes))))

    def __str__(self) -> str:
        return self.mode if not self.nodes else f"{self.mode}:{','.join(map(str, self.nodes))}"


@dataclass(frozen=True)
class PolicyOfflineResult:
    """What a policy does when node ``nid`` goes offline: keep, change, or veto."""

    veto: bool
    policy: Mempolicy


def set_mempolicy(system: "System", task: "Task", policy: Mempolicy) -> None:
    """Install ``policy`` for ``task``; refuses nodes that are offline or being removed.

    Raises ``UsageError`` (the model's ``-EINVAL``) for such nodes, as the kernel does.
    """
    with task.policy_lock:
        for nid in policy.nodes:
            sched.point("set_mempolicy:check")
            if not 0 <= nid < system.topology.nr_nodes:
                raise UsageError(f"set_mempolicy: no node {nid}")
            if not system.node_online.test(nid) or system.node_removing.test(nid):
                raise UsageError(f"set_mempolicy: node {nid} is offline or being removed")
        sched.point("set_mempolicy:store")
        task.mempolicy = policy


def _nearest_online(system: "System", nid: int, exclude: Iterable[int]) -> int | None:
    skip = set(exclude)
    for other in system.topology.nodes_by_distance(nid):
        if other not in skip and system.node_online.test(other) \
                and not system.node_removing.test(other):
            return other
    return None


def policy_offline_step(system: "System", policy: Mempolicy, nid: int,
                        mode: str) -> PolicyOfflineResult:
    """Decide, for one policy, what node ``nid`` going offline does to it (see module doc)."""
    if nid not in policy.nodes:
        return PolicyOfflineResult(False, policy)
    rest = tuple(n for n in policy.nodes if n != nid)
    if policy.mode in (MPOL_BIND, MPOL_INTERLEAVE) and rest:
        return PolicyOfflineResult(False, replace(policy, nodes=rest))
    if policy.mode in (MPOL_BIND, MPOL_INTERLEAVE) and mode == "veto":
        return PolicyOfflineResult(True, policy)
    target = _nearest_online(system, nid, exclude=(nid,))
    if target is None:          # only the last node left: the remover refuses that earlier
        return PolicyOfflineResult(True, policy)
    return PolicyOfflineResult(False, replace(policy, nodes=(target,)))


class MempolicyNotifier:
    """The mempolicy subscriber of the memory notifier chain (see the module doc).

    ``MEM_GOING_OFFLINE``: veto if some task's policy cannot live without the node
    (mode ``veto``); nothing changes yet, so a cancel has nothing to undo.
    ``MEM_OFFLINE``: rebind every policy that names the node, under each task's lock.
    """

    def __init__(self, system: "System") -> None:
        self.system = system

    def __call__(self, event: str, nid: int) -> str:
        mode = self.system.config.policy_mode
        if event == MEM_GOING_OFFLINE:
            for task in list(self.system.tasks):
                with task.policy_lock:
                    if policy_offline_step(self.system, task.mempolicy, nid, mode).veto:
                        return NOTIFY_BAD
        elif event == MEM_OFFLINE:
            for task in list(self.system.tasks):
                self.rebind(task, nid, mode)
        return NOTIFY_OK

    def rebind(self, task: "Task", nid: int, mode: str) -> None:
        """Move ``task``'s policy off node ``nid``. Free-running, a policy without the
        node stays as it is: no store and no schedule point (the interpreter may switch
        anywhere regardless), so the chain's cost per task is one lock round. Controlled,
        every task's rebind is a point, the place a racing ``set_mempolicy`` can run."""
        with task.policy_lock:
            policy = task.mempolicy
            if nid in policy.nodes or sched.active().controlled:
                sched.point("mempolicy:rebind")
                task.mempolicy = policy_offline_step(self.system, policy, nid, mode).policy
