"""Named scenarios, like rcutorture's TREE01 / SRCU-N configurations.

A scenario is a set of :class:`~stress.config.RunConfig` values; flags given on the command
line override them. Every scenario is a *correct* configuration: it must end with no
violation (the mutant catalogue is where broken ones live). ``--list-scenarios`` prints
this table.

Every scenario keeps the update side of the defaults (``stress.workers`` says why): at
least one fake writer per flavor beside the remover, and two readers of each flavor
wherever there are two flavors' worth of threads, so that updaters overlap and readers
outlive grace periods they did not hold. Only ``TINY`` has one reader of each kind: it
is meant to be explored exhaustively.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCENARIOS", "DEFAULT_SCENARIO", "describe"]

DEFAULT_SCENARIO = "DEFAULT"

#: name -> (one-line description, RunConfig overrides)
SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "DEFAULT": ("the RFC corrected: QSBR + SRCU, stop-machine zonelists, every reader kind",
                {}),
    "TREE01": ("general-purpose (memb) RCU, more readers",
               {"flavor": "memb", "allocators": 3, "iterators": 3}),
    "SRCU-N": ("sleepable readers dominate: four sleepers beside one iterator",
               {"sleepers": 4, "iterators": 1, "allocators": 1}),
    "SEQCOUNT": ("today's zonelist rebuild: no stop-machine, allocators retry on a seqcount",
                 {"zonelist": "seqcount", "allocators": 4}),
    "REBIND": ("mempolicy rebind mode, three policy users: no veto, policies move",
               {"policy_mode": "rebind", "policy_users": 3}),
    "RWLOCK": ("the alternative the RFC rejects: one reader-writer semaphore",
               {"scheme": "rwlock"}),
    "REUSE": ("what Linux did: keep the pgdat, reset it on re-online after a grace period",
              {"scheme": "reuse"}),
    "BIG": ("sixteen nodes, thirty-two CPUs, many threads",
            {"nodes": 16, "cpus": 32, "allocators": 4, "iterators": 4, "sleepers": 3,
             "policy_users": 2, "fake_writers": 6}),
    "TINY": ("two nodes, two CPUs, one reader of each kind and one fake writer per flavor: "
             "small enough to explore",
             {"nodes": 2, "cpus": 2, "allocators": 1, "iterators": 1, "sleepers": 1,
              "policy_users": 1, "fake_writers": 2}),
}


def describe() -> str:
    """The table ``--list-scenarios`` prints."""
    width = max(map(len, SCENARIOS))
    lines = []
    for name, (text, values) in SCENARIOS.items():
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in values.items())
        lines.append(f"{name:<{width}}  {text}" + (f"\n{'':<{width}}  ({flags})" if flags else ""))
    return "\n".join(lines)
