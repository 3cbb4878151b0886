"""Broken readers: worker bodies that misuse the RFC's read-side API.

Each replaces one worker kind's loop (``RunConfig.inject``), written against the model's
API as kernel code would be. They take the runner's context, task and statistics
objects (``stress.workers``) by duck typing: ``ctx.system``, ``ctx.should_stop()``,
``ctx.sleep_time``, ``stats.loops``/``reads``/``sections``/``sleeps``.
"""

from __future__ import annotations

from typing import Any

from ..mm.task import Task

__all__ = ["iterator_unlocked", "sleeper_atomic", "iterator_keeps_pointer"]


def iterator_unlocked(ctx: Any, task: Task, stats: Any) -> None:
    """``for_each_online_node()`` + ``NODE_DATA()`` without ``pgdat_remove_read_lock()``."""
    system = ctx.system
    while not ctx.should_stop():
        stats.loops += 1
        for nid in system.for_each_online_node():
            pgdat = system.NODE_DATA(nid)            # outside any read-side section
            if pgdat is not None:
                stats.reads += pgdat.nr_zones
        task.cond_resched()


def sleeper_atomic(ctx: Any, task: Task, stats: Any) -> None:
    """Sleeps holding the non-sleepable ``pgdat_remove_read_lock()``."""
    system = ctx.system
    while not ctx.should_stop():
        stats.loops += 1
        system.scheme.read_lock(task)                # should be the sleepable lock
        try:
            stats.sections += 1
            online = list(system.for_each_online_node())
            if online:
                pgdat = system.NODE_DATA(online[task.rng.randrange(len(online))])
                task.sleep(ctx.sleep_time * task.rng.random())
                stats.sleeps += 1
                stats.reads += pgdat is not None and pgdat.nr_zones > 0
        finally:
            system.scheme.read_unlock(task)
        task.cond_resched()


def iterator_keeps_pointer(ctx: Any, task: Task, stats: Any) -> None:
    """Keeps the pgdat it found in a section and reads it after ``read_unlock()``, for
    many loops, re-finding it only now and then (a cached ``NODE_DATA()`` pointer)."""
    system = ctx.system
    kept = None
    while not ctx.should_stop():
        stats.loops += 1
        if kept is None or stats.loops % 50 == 0:
            system.scheme.read_lock(task)
            try:
                stats.sections += 1
                online = list(system.for_each_online_node())
                kept = system.NODE_DATA(online[task.rng.randrange(len(online))])
            finally:
                system.scheme.read_unlock(task)
        if kept is not None:
            stats.reads += kept.node_present_pages > 0     # no section held: stale
        task.cond_resched()
