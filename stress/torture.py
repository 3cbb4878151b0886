"""A short built-in RCU torture test, in the manner of the kernel's rcutorture.

Why it finds broken grace periods
---------------------------------
Writers keep replacing one shared element (``current``). An element's ``pipe_count``
records its age: 0 while it is current, 1 once a writer unlinked it (retired), and one
more for every grace period that completes after that; at ``PIPE_LEN`` (the oracles'
pipeline length, ``rcu_pgdat.check.PIPE_LEN``) it is freed
(poisoned). Readers, inside (randomly nested) read-side sections, pick up ``current``,
linger, and then look at the element's ``pipe_count`` once more before they leave.

A reader that began its section before the element was retired may legitimately see
1: the retiring writer's grace period is still waiting for it. It can never see 2 or
more: that would mean a grace period that began after the retirement (hence after the
reader's section began) has completed while the section is still open. So the
"Reader Pipe" histogram has entries only at 0 and 1 under a correct flavor, and any
entry further right, or any read of a freed element, is a failure (``!!!``).

The obvious simpler check, "the element is not freed", catches a broken flavor only
when its grace period is shorter than the reader's whole stay; the pipe count catches
every grace period that ends too early, however long the element then lives.

Grace periods are driven three ways (chosen at random per update): ``synchronize()``
followed by advancing every element the writer retired, ``get_state()`` plus
``cond_synchronize()``, and ``call_rcu()`` chains that advance one element per callback
and requeue it until it is freed (rcutorture's ``rcu_torture_cb``). The run uses only
the plug-in protocol (optional methods when present), so a user's flavor is tortured
exactly like the built-in ones.

The run installs a seeded ``StressScheduler``: the seed fixes each thread's random
choices and yield pattern, not the OS's scheduling, so this finds races rather than
replaying them. It is self-contained: no oracle is involved, the pipe counts are the
check.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from rcu_pgdat import sched
from rcu_pgdat.check import PIPE_LEN

from .plugins import FLAVORS, load_flavor
from .usage import CommandLineError, Parser, fail

__all__ = ["TortureResult", "run_torture", "main"]


class Element:
    """The shared element. ``pipe_count`` is written by one owner at a time: the
    writer that retires it, then (for ``call_rcu``) the callback chain it hands it to."""

    __slots__ = ("serial", "pipe_count", "freed")

    def __init__(self, serial: int) -> None:
        self.serial = serial
        self.pipe_count = 0
        self.freed = False


@dataclass
class TortureResult:
    """What a torture run saw; ``format()`` prints it rcutorture-style."""

    flavor: str
    duration: float
    seed: int
    readers: int
    writers: int
    #: Reader Pipe: reads that saw an element this many grace periods past retirement.
    reader_pipe: list[int] = field(default_factory=lambda: [0] * (PIPE_LEN + 1))
    #: Reader Batch: reads during which this many grace periods completed.
    reader_batch: list[int] = field(default_factory=lambda: [0] * (PIPE_LEN + 1))
    #: Free-Block Circulation: elements that reached each pipe stage.
    circulation: list[int] = field(default_factory=lambda: [0] * (PIPE_LEN + 1))
    versions: int = 0
    frees: int = 0
    grace_periods: int = 0
    freed_reads: int = 0
    errors: list[str] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)
    stats_lines: list[str] = field(default_factory=list)
    #: How to run this again (printed with a failure).
    reproduce: str = ""

    @property
    def reads(self) -> int:
        return sum(self.reader_pipe)

    @property
    def success(self) -> bool:
        return (not any(self.reader_pipe[2:]) and not self.freed_reads
                and not self.errors and not self.stalls)

    def format(self) -> str:
        """The report: parameters, periodic statistics, histograms, verdict."""
        tag = f"{self.flavor}-torture:"
        params = (f"nreaders={self.readers} nwriters={self.writers} "
                  f"duration={self.duration:g} seed={self.seed}")
        bad_pipe = "!!! " if any(self.reader_pipe[2:]) else ""
        bad_mbe = "!!! " if self.freed_reads else ""
        lines = [f"{tag}--- Start of test: {params}", *self.stats_lines,
                 f"{tag} {bad_mbe}{self.summary()}",
                 f"{tag} {bad_pipe}Reader Pipe: " + " ".join(map(str, self.reader_pipe)),
                 f"{tag} Reader Batch: " + " ".join(map(str, self.reader_batch)),
                 f"{tag} Free-Block Circulation: "
                 + " ".join(map(str, self.circulation))]
        lines += [f"{tag} !!! stall: {s}" for s in self.stalls]
        for error in self.errors:
            lines += [f"{tag} !!! {line}" for line in error.rstrip().splitlines()]
        verdict = "SUCCESS" if self.success else "FAILURE"
        lines.append(f"{tag}--- End of test: {verdict}: {params}")
        if not self.success:
            lines.append(f"reproduce: {self.reproduce}")
        return "\n".join(lines)

    def summary(self) -> str:
        return (f"ver: {self.versions} rtf: {self.frees} rtmbe: {self.freed_reads} "
                f"nt: {self.reads} gps: {self.grace_periods}")


class _Torture:
    """One run: the shared element, the threads and their per-thread counters."""

    def __init__(self, flavor: Any, result: TortureResult) -> None:
        self.flavor = flavor
        self.result = result
        self.current = Element(0)
        self.update_lock = sched.Mutex("torture.update")   # guards current, serial
        self.serial = 0
        self.stop = False
        self.stopping_callbacks = False
        # One slot per writer (written by that writer only), summed for statistics.
        self.gps = [0] * result.writers
        self.frees = [0] * (result.writers + 1)           # last slot: callbacks
        self.circulation = [[0] * (PIPE_LEN + 1) for _ in range(result.writers + 1)]
        self.pipes = [[0] * (PIPE_LEN + 1) for _ in range(result.readers)]
        self.batches = [[0] * (PIPE_LEN + 1) for _ in range(result.readers)]
        self.freed_reads = [0] * result.readers
        #: Per writer: elements it retired and advances with its own grace periods.
        self.retired: list[list[Element]] = [[] for _ in range(result.writers)]
        self.optional = {name: getattr(flavor, name, None) for name in (
            "register_thread", "unregister_thread", "quiescent_state", "thread_offline",
            "thread_online", "call_rcu", "get_state", "cond_synchronize", "shutdown")}

    def call(self, name: str) -> None:
        fn = self.optional[name]
        if fn is not None:
            fn()

    def rng(self, name: str) -> random.Random:
        return random.Random((self.result.seed << 32) ^ zlib.crc32(name.encode()))

    def guarded(self, body: Callable[[], None]) -> Callable[[], None]:
        """``body`` with every exception recorded as a failure, never lost."""
        def run() -> None:
            try:
                body()
            except BaseException:  # noqa: BLE001 - reported in the result
                self.result.errors.append(
                    f"{threading.current_thread().name}: {traceback.format_exc()}")
        return run

    # -- readers ----------------------------------------------------------------------

    def reader(self, index: int) -> None:
        rng = self.rng(f"reader-{index}")
        f = self.flavor
        pipe, batch = self.pipes[index], self.batches[index]
        self.call("register_thread")
        while not self.stop:
            depth = rng.randint(1, 3)
            for _ in range(depth):
                f.read_lock()
            sched.point("torture:reader:deref")
            p = self.current                       # rcu_dereference()
            started = sum(self.gps)
            for _ in range(rng.randint(0, 30)):    # linger inside the section
                sched.point("torture:reader:linger")
            sched.point("torture:reader:check")
            count = min(p.pipe_count, PIPE_LEN)
            if p.freed:
                self.freed_reads[index] += 1
            pipe[count] += 1
            batch[min(sum(self.gps) - started, PIPE_LEN)] += 1
            for _ in range(depth):
                f.read_unlock()
            self.call("quiescent_state")
            if rng.random() < 0.01 and self.optional["thread_offline"] is not None:
                self.call("thread_offline")        # a QSBR reader that blocks a while
                sched.sleep(rng.random() * 1e-4)
                self.call("thread_online")
        self.call("unregister_thread")

    # -- writers ----------------------------------------------------------------------

    def retire(self, old: Element, slot: int) -> None:
        """Count ``old`` at its current stage and move it one stage along."""
        self.circulation[slot][min(old.pipe_count, PIPE_LEN)] += 1
        old.pipe_count += 1
        if old.pipe_count >= PIPE_LEN:
            old.freed = True
            self.frees[slot] += 1

    def writer(self, index: int) -> None:
        rng = self.rng(f"writer-{index}")
        f = self.flavor
        has = self.optional
        modes = (["sync"] + (["cond"] if has["get_state"] and has["cond_synchronize"] else [])
                 + (["call_rcu"] * 2 if has["call_rcu"] else []))
        while not self.stop:
            with self.update_lock:
                self.serial += 1
                new = Element(self.serial)
                old, self.current = self.current, new       # rcu_assign_pointer()
            self.retire(old, index)                # 0 -> 1: unlinked
            mode = rng.choice(modes)
            if mode == "call_rcu":
                f.call_rcu(partial(self.advance_by_callback, old))
            else:
                self.retired[index].append(old)
                if mode == "sync":
                    f.synchronize()
                else:
                    cookie = f.get_state()
                    sched.point("torture:writer:between")
                    f.cond_synchronize(cookie)
                self.gps[index] += 1
                self.advance(index)
            if rng.random() < 0.1:
                sched.sleep(rng.random() * 2e-4)

    def advance(self, index: int) -> None:
        """A grace period of writer ``index`` ended: its retired elements age by one."""
        for e in self.retired[index]:
            self.retire(e, index)
        self.retired[index] = [e for e in self.retired[index] if not e.freed]

    def advance_by_callback(self, element: Element) -> None:
        """rcu_torture_cb: one grace period passed for ``element``; requeue until freed."""
        self.retire(element, self.result.writers)
        if element.freed:
            return
        if self.stopping_callbacks:                # readers are gone: free at once
            while not element.freed:
                self.retire(element, self.result.writers)
            return
        self.flavor.call_rcu(partial(self.advance_by_callback, element))

    # -- the run ----------------------------------------------------------------------

    def collect(self) -> None:
        r = self.result
        r.reader_pipe = [sum(col) for col in zip(*self.pipes, strict=True)]
        r.reader_batch = [sum(col) for col in zip(*self.batches, strict=True)]
        r.circulation = [sum(col) for col in zip(*self.circulation, strict=True)]
        r.versions = self.serial
        r.frees = sum(self.frees)
        r.grace_periods = sum(self.gps)
        r.freed_reads = sum(self.freed_reads)


def _finish(thread: threading.Thread, timeout: float) -> bool:
    """Wait for ``thread`` to end, through the scheduler; whether it did."""
    return sched.wait_until(lambda: not thread.is_alive(), f"join {thread.name}", timeout)


def run_torture(flavor_name: str | Callable[[], Any] = "qsbr", duration: float = 1.0,
                seed: int = 0, readers: int = 4, writers: int = 2,
                stat_interval: float = 0.5, stall_timeout: float = 5.0) -> TortureResult:
    """Torture one flavor for ``duration`` seconds; see the module comment.

    ``flavor_name`` is what ``--flavor`` takes (a name in ``stress.plugins.FLAVORS`` or
    ``MODULE:ATTR``) or a factory returning an object that implements
    ``rcu_pgdat.rcu.RCUFlavor``. A thread that does not finish within ``stall_timeout``
    seconds after the run is told to stop is reported as a stall.
    """
    if readers < 1 or writers < 1:
        raise ValueError(f"need at least one reader and one writer, got "
                         f"readers={readers} writers={writers}")
    if isinstance(flavor_name, str):
        flavor = load_flavor(flavor_name)
    else:
        factory = flavor_name
        flavor = factory()
    name = str(getattr(flavor, "name", flavor_name))
    result = TortureResult(name, duration, seed, readers, writers)
    if isinstance(flavor_name, str):
        result.reproduce = (f"rcu-pgdat-stress torture {flavor_name} --duration "
                            f"{duration:g} --seed {seed} --readers {readers} "
                            f"--writers {writers}")
    else:
        where = f"{factory.__module__}.{getattr(factory, '__qualname__', factory)}"
        result.reproduce = (f"run_torture({where}, duration={duration:g}, seed={seed}, "
                            f"readers={readers}, writers={writers})")
    t = _Torture(flavor, result)
    with sched.install(sched.StressScheduler(seed=seed)):
        threads = ([sched.spawn(t.guarded(partial(t.reader, i)), f"torture-reader-{i}")
                    for i in range(readers)]
                   + [sched.spawn(t.guarded(partial(t.writer, i)), f"torture-writer-{i}")
                      for i in range(writers)])
        for thread in threads:
            thread.start()
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < duration:
            sched.sleep(min(stat_interval, duration - elapsed))
            t.collect()
            result.stats_lines.append(f"{name}-torture: {result.summary()} "
                                      f"t={time.monotonic() - start:.1f}s")
        t.stop = True
        for thread in threads:
            if not _finish(thread, stall_timeout):
                result.stalls.append(f"{thread.name} did not finish within "
                                     f"{stall_timeout:g}s (a grace period that never ends?)")
        t.stopping_callbacks = True                # callback chains end (even on a stall)
        if not result.stalls:
            for index in range(writers):           # every reader is gone: drain
                while t.retired[index]:
                    t.advance(index)
            closer = sched.spawn(t.guarded(lambda: t.call("shutdown")), "torture-shutdown")
            closer.start()
            if not _finish(closer, stall_timeout):
                result.stalls.append("shutdown() (barrier of pending callbacks) did not "
                                     f"finish within {stall_timeout:g}s")
    t.collect()
    return result


def main(argv: list[str] | None = None) -> int:
    """``rcu-pgdat-stress torture FLAVOR [--duration S] [--seed N] ...``: 0 on
    SUCCESS, 1 on FAILURE, 2 for bad usage (a plug-in that does not load: 125, from
    the CLI)."""
    prog = "rcu-pgdat-stress torture"
    parser = Parser(
        prog=prog,
        description="A short rcutorture-like run of one RCU flavor: readers check how "
                    "many grace periods the element they hold has seen (Reader Pipe).")
    parser.add_argument("flavor", help=f"{', '.join(FLAVORS)} or MODULE:ATTR (a plug-in; "
                        "the current directory is put on sys.path to import MODULE)")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="(default 0)")
    parser.add_argument("--readers", type=int, default=4, help="(default 4)")
    parser.add_argument("--writers", type=int, default=2, help="(default 2)")
    try:
        args = parser.parse_args(argv)
        if args.flavor not in FLAVORS and ":" not in args.flavor:
            parser.error(f"unknown flavor {args.flavor!r}: {', '.join(FLAVORS)} or "
                         "MODULE:ATTR")
        if args.readers < 1 or args.writers < 1 or args.duration <= 0:
            parser.error("--duration must be positive, --readers and --writers at least 1")
    except CommandLineError as exc:
        return fail(prog, exc)
    result = run_torture(args.flavor, args.duration, args.seed, args.readers, args.writers)
    print(result.format())
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
