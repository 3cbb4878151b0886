"""The configuration of a stress run: every knob, its default, and what is impossible.

``RunConfig`` is the one description of a run: the CLI's flags map one to one onto its
fields (their defaults are the CLI's defaults), scenarios are sets of its values, a
trace carries it, and :func:`~stress.build.build` translates it, once, into the model's
``SystemConfig`` and the workers. Fields whose value is a name in a registry are
listed in ``CHOICES`` (the CLI's ``choices=`` come from there too).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Any

from rcu_pgdat import sched
from rcu_pgdat.errors import UsageError
from rcu_pgdat.harness import MODES
from rcu_pgdat.mm.hotplug import REMOVERS
from rcu_pgdat.mm.mempolicy import POLICY_MODES
from rcu_pgdat.mm.scheme import SCHEMES
from rcu_pgdat.mm.system import SystemConfig
from rcu_pgdat.mm.zonelist import ZONELIST_MODES
from rcu_pgdat.mutants import MUTANTS

from .workers import WORKER_KINDS

__all__ = ["RunConfig", "CHOICES", "DEFAULTS", "SCALE_THREADS", "MAX_NODES", "MAX_CPUS"]

#: The most nodes and CPUs a run may have: the kernel's own limits (MAX_NUMNODES with
#: NODES_SHIFT 10, NR_CPUS with MAXSMP). Beyond them the model would spend minutes and
#: gigabytes building a machine no kernel supports.
MAX_NODES = 1024
MAX_CPUS = 8192

#: The size up to which a free-running run keeps its settings as given (every named
#: scenario is smaller). Beyond it, one interpreter shared by more threads makes each
#: thread wait longer for its turn, so two settings follow the thread count: the stall
#: limit grows in proportion (``RunConfig.stall_limit``) and the stress scheduler's
#: yield probability shrinks in proportion (``RunConfig.yield_scale``).
SCALE_THREADS = 32

#: ``RunConfig`` fields whose value is a name in a registry, and that registry.
CHOICES: dict[str, Collection[str]] = {
    "scheme": SCHEMES,
    "remover": REMOVERS,
    "zonelist": ZONELIST_MODES,
    "policy_mode": POLICY_MODES,
    "sched": MODES,
}


def _strategy_default(name: str) -> int:
    """The default of a strategy option (``--pct-depth``, ...) in the registry."""
    return next(p.default for spec in sched.STRATEGIES.values() for p in spec.params
                if p.name == name)


@dataclass
class RunConfig:
    """Every knob of a run; the CLI flags map one to one onto these fields, and their
    defaults are the CLI's."""

    duration: float = 10.0
    seed: int = 1
    nodes: int = 4
    cpus: int = 8
    allocators: int = 2
    iterators: int = 2
    #: Two readers of each flavor's kind and four fake writers: why, in the opening
    #: comment of ``stress.workers``.
    sleepers: int = 2
    policy_users: int = 1
    fake_writers: int = 4
    scheme: str = SystemConfig.scheme
    flavor: str = "qsbr"
    srcu: str = "builtin"
    remover: str = SystemConfig.remover
    zonelist: str = SystemConfig.zonelist_mode
    policy_mode: str = SystemConfig.policy_mode
    sched: str = "stress"
    stall_timeout: float = 10.0
    status_interval: float = 2.0
    keep_going: bool = False
    scenario: str | None = None
    #: Known-bad variants to plug in, by name (``rcu_pgdat.mutants``): the run must
    #: report them. Empty: the code as configured.
    inject: tuple[str, ...] = ()
    #: Controlled modes: the step budget (workers stop at this clock), PCT's depth,
    #: DFS's preemption bound, and a schedule to replay instead of a seed's.
    steps: int = 20000
    pct_depth: int = _strategy_default("pct_depth")
    max_preemptions: int = _strategy_default("max_preemptions")
    max_schedules: int = _strategy_default("max_schedules")
    replay: str | None = None
    #: Re-runs allowed to shrink a failing controlled schedule (0: do not shrink).
    shrink_runs: int = 0
    #: Controlled modes: plain threading/queue/time act through the scheduler, and the
    #: shared accesses of these modules are schedule points (``rcu_pgdat.sched``).
    intercept: bool = True
    instrument: tuple[str, ...] = ()
    #: Controlled modes: a plug-in written in plain threading (it imports nothing of
    #: ``rcu_pgdat``) is instrumented too, as if named by ``instrument``
    #: (``stress.plugins.plain_plugin_modules``).
    instrument_plugins: bool = True

    def validate(self) -> None:
        """Raise ``ValueError`` with one line saying what is impossible (a value of the
        wrong type too: a trace file or a library caller may give anything)."""
        self._validate_types()
        for name in ("duration", "stall_timeout"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive number of "
                                 f"seconds, got {value}")
        if not 1 <= self.nodes <= MAX_NODES:
            raise ValueError(f"--nodes must be 1..{MAX_NODES}, got {self.nodes}")
        if not self.nodes <= self.cpus <= MAX_CPUS:
            raise ValueError(f"--cpus must be at least --nodes ({self.nodes}): every node "
                             f"needs a CPU, and at most {MAX_CPUS}, got {self.cpus}")
        for name in ("allocators", "iterators", "sleepers", "policy_users", "fake_writers"):
            count = getattr(self, name)
            if not 0 <= count <= 64:
                raise ValueError(f"--{name.replace('_', '-')} must be 0..64, got {count}")
        if self.allocators + self.iterators + self.sleepers + self.policy_users == 0:
            raise ValueError("no reader threads: give at least one allocator, iterator, "
                             "sleeper or policy user")
        for name, names in CHOICES.items():
            value = getattr(self, name)
            if value not in names:
                raise ValueError(f"--{name.replace('_', '-')} must be one of "
                                 f"{', '.join(names)}, got {value!r}")
        for module in self.instrument:
            if not all(part.isidentifier() for part in module.split(".")):
                raise ValueError(f"--instrument takes module names (a.b,c), got {module!r}")
        self._validate_strategy_options()
        self._validate_inject()

    def _validate_types(self) -> None:
        """Every field holds a value of its annotated type (``bool`` is no number)."""
        hints = typing.get_type_hints(RunConfig)
        for f in fields(self):
            value = getattr(self, f.name)
            if not _is_a(value, hints[f.name]):
                raise ValueError(f"--{f.name.replace('_', '-')} must be "
                                 f"{_type_name(hints[f.name])}, got {value!r}")

    def _validate_strategy_options(self) -> None:
        """The strategies' own checks (``--steps``, ``--pct-depth``, ...), whichever
        strategy runs: a flag given is a flag checked."""
        for spec in sched.STRATEGIES.values():
            try:
                spec.options(self.strategy_options())
            except UsageError as exc:
                raise ValueError(str(exc)) from None

    def _validate_inject(self) -> None:
        slots: dict[str, str] = {}
        for name in self.inject:
            if name not in MUTANTS:
                raise ValueError(f"unknown mutant {name!r}; --list-mutants shows them")
            mutant = MUTANTS[name]
            for key, value in mutant.needs.items():
                have = getattr(self, key)
                ok = have >= value if isinstance(value, int) else have == value
                if not ok:
                    want = f"at least {value}" if isinstance(value, int) else value
                    raise ValueError(f"mutant {name} needs --{key.replace('_', '-')} "
                                     f"{want}, not {have}")
            if "remover_cls" in mutant.system_kwargs and self.remover != SystemConfig.remover:
                raise ValueError(f"mutant {name} replaces the remover: leave --remover at "
                                 f"{SystemConfig.remover}, not {self.remover}")
            taken = [*mutant.system_kwargs, *mutant.workers,
                     *(["flavor"] if mutant.flavor_cls else []),
                     *(["srcu"] if mutant.srcu_cls else [])]
            for slot in taken:
                if slot in slots:
                    raise ValueError(f"mutants {slots[slot]} and {name} both replace "
                                     f"{slot}; inject them in separate runs")
                slots[slot] = name

    def stall_limit(self) -> float:
        """Seconds without progress that a free-running run reports as a stall.

        ``stall_timeout`` for up to ``SCALE_THREADS`` threads, in proportion
        beyond: the longest wait of a correct remover is a grace period (or a
        stop-machine) waiting out the slowest reader's current section, and every
        thread gets its share of one interpreter, so that wait grows with the threads.
        """
        return self.stall_timeout * max(1.0, len(self.thread_plan()) / SCALE_THREADS)

    def yield_scale(self) -> float:
        """The factor on the stress scheduler's yield probability: 1 up to
        ``SCALE_THREADS`` threads, in inverse proportion beyond.

        A yield at a schedule point lets every other runnable thread take its turn
        before the yielder runs again, so what a yield costs the yielder, and the
        foreign work it lets in, grow with the threads. Scaled this way the expected
        foreign work per schedule point stays what it is at ``SCALE_THREADS``; left at
        its value, the remover of a 256-thread run spent most of an offline regaining
        the interpreter after its own yields (its CPU time per operation is a few
        milliseconds; its wall time was a second and more).
        """
        return min(1.0, SCALE_THREADS / len(self.thread_plan()))

    def thread_plan(self) -> list[tuple[str, str]]:
        """``(kind, thread name)`` of every worker, in creation order (deterministic)."""
        counts = {"allocator": self.allocators, "iterator": self.iterators,
                  "sleeper": self.sleepers, "policy": self.policy_users,
                  "fake-writer": self.fake_writers, "remover": 1}
        plan = []
        for kind in WORKER_KINDS:
            n = counts[kind]
            for i in range(n):
                plan.append((kind, kind if kind == "remover" else f"{kind}-{i}"))
        return plan

    def strategy_options(self) -> dict[str, Any]:
        """The options of the controlled strategies (``rcu_pgdat.sched.STRATEGIES``):
        workers loop until the step budget, so it is the run length."""
        return {"steps": self.steps, "pct_depth": self.pct_depth,
                "max_preemptions": self.max_preemptions,
                "max_schedules": self.max_schedules}

    def as_dict(self) -> dict[str, Any]:
        """The parameters, for the JSON document and the echo at the start."""
        return {f.name: getattr(self, f.name) for f in fields(self)}



def _is_a(value: Any, hint: Any) -> bool:
    """``isinstance`` for the annotations ``RunConfig`` uses."""
    if isinstance(hint, types.UnionType):
        return any(_is_a(value, arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    if hint is type(None):
        return value is None
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    if isinstance(hint, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(hint))
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a name",
            type(None): "null"}.get(hint, "a list of names")


#: Every field's default (what the CLI's help says).
DEFAULTS: dict[str, Any] = RunConfig().as_dict()
