"""Oracles: prove from events alone that no reader touches freed pgdat memory.

The checkers never trust the code under test (docs/design.md, invariant 1): the harness
tells them what happened and they decide. Everything reaches one :class:`Collector`.

Setting up a run::

    collector = Collector(stop_on_first=True)      # False: gather every violation
    oracles = Oracles(collector)
    memory = TrackedAllocator(oracles, quarantine=64)
    with collector.install_excepthook(), oracles.might_sleep_checks():
        ... start workers; each polls ``collector.stopped`` and calls
            ``oracles.thread_exit()`` as its last act ...
    oracles.finish()                               # sections nobody closed
    print(collector.format() or oracles.stats_text())

Events the harness emits (keys name a flavor or domain: ``"rcu:qsbr"``, ``"srcu:pgdat"``);
each is a method of :class:`Oracles`:

* ``h = section_begin(key, sleepable)``: after ``read_lock()`` returns (``sleepable``
  for SRCU). ``section_end(key, h=None)``: before ``read_unlock()``; ends the innermost
  section of ``key``, or the one handle ``h`` names. Sections nest, across keys too.
* ``gp = gp_begin(key, blocking=True)``: before ``synchronize()`` (also the might-sleep
  check of the wait; ``blocking=False`` when nobody waits here: ``call_rcu``, a polled
  cookie). ``gp_end(gp)``: after it returns (the callback starts, the cookie polls
  done); reports ``gp-too-short``.
* ``retire(obj, key)``: ``obj`` was unpublished; the pipeline starts counting.
* ``p = deref(obj, keys, held=False)``: ``rcu_dereference``. Lockdep check (any key in
  ``keys`` protects; ``held=True`` for ``rcu_dereference_protected``), a Reader Pipe
  count, and a tracked object comes back as a generation-checked reference.
  ``on_read(obj, key)`` counts a read without the deref check.
* ``with boot():``: the RFC's boot-code exemption, explicit and counted.
* ``thread_exit()``: a worker's last call (``section-leak``); ``finish()``: end of run,
  sections still open anywhere.
* ``with might_sleep_checks():``: ``sleep-in-atomic`` through the scheduler's hook.
* ``stats()`` / ``stats_text()``: ``Reader Pipe`` / ``Reader Batch`` per key (the
  collector puts them in every report).

Readers take no lock: each thread keeps its own open sections and counts (see
:mod:`rcu_pgdat.check.oracles` for why a grace period still sees every section it
ends under), so readers run in parallel on free-threaded CPython.
:class:`NullOracles` takes the same events and checks nothing (for measuring).

Results: ``collector.violations``, ``collector.kinds()`` (the kind strings, in order),
``collector.stopped``, ``collector.format()``. Each :class:`Violation` has ``kind``,
``title`` (``BUG: <kind> <subject>``), ``thread``, ``stack``, ``what``, ``details``
and ``format()``.

Tracked memory (KASAN-like; see :mod:`rcu_pgdat.check.memory` for why it is sound)::

    class Zone(Tracked):                    # fields: annotated names, or __fields__
        name: str
        free_pages: int
    zone = memory.alloc(Zone, "zone[1].Normal", name="Normal", free_pages=0)
    memory.free(zone)                       # poison, free stack, quarantine
    memory.reinit(pgdat, node_id=1)         # reuse scheme: same object, new generation
    with memory.reinitializing(pgdat) as p: # ... or step by step; readers are caught
        p.node_zones = (...)

Every field read/write is checked; a bad one is reported and raises
:class:`ViolationError` in the accessing thread (it has no value to return). Frees are
reported and otherwise ignored. Violation kinds are the strings of :class:`Kind` (table
in :mod:`rcu_pgdat.check.kinds`). Other layers report their own violations with
``collector.report(Violation.capture(Kind.BUG, "in node 2: ...", sched.current_name()))``.
Tests force interleavings with :class:`rcu_pgdat.check.testing.Actors`.
"""

from __future__ import annotations

from ._stack import thread_stacks
from .collector import Collector
from .kinds import Kind
from .memory import (
    POISON,
    Tracked,
    TrackedAllocator,
    generation,
    is_live,
    ref_to,
    unwrap,
)
from .null import NullOracles
from .oracles import GracePeriod, Oracles
from .stats import PIPE_LEN, KeyStats, OracleStats
from .violation import Violation, ViolationError

__all__ = [
    "PIPE_LEN",
    "POISON",
    "Collector",
    "GracePeriod",
    "KeyStats",
    "Kind",
    "NullOracles",
    "OracleStats",
    "Oracles",
    "Tracked",
    "TrackedAllocator",
    "Violation",
    "ViolationError",
    "generation",
    "is_live",
    "ref_to",
    "thread_stacks",
    "unwrap",
]
