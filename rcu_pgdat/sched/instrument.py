"""Instrumented schedule points: automatic points at the shared-state accesses of named
modules, so that code with no ``sched.point`` can be searched at access granularity.

``Instrumentation(["mymod"])`` finds every code object defined in ``mymod`` (functions,
methods, properties, nested functions and lambdas, by their ``co_consts``) and, while
enabled, runs a schedule point in the calling model thread before each access
instruction of those code objects (``_sites``: attribute and subscript loads, stores and
deletes, ``in`` tests, calls into C), and logs the access for the race explanation
(``accesses``). Other code, and threads the run does not own, run untouched.

Two backends, one behaviour:

* 3.12+: ``sys.monitoring``, ``INSTRUCTION`` events set locally on those code objects
  only (an instruction that is not an access returns ``DISABLE`` the first time, so it
  costs nothing after), plus ``CALL`` events, whose callback sees the callable and its
  first argument: a built-in (C) callable is an access to that argument, a Python one
  returns ``DISABLE``;
* 3.10-3.11: ``threading.settrace`` for the threads started while enabled (the run's
  model threads), tracing opcodes only in frames of those code objects; calls are
  seen at their ``LOAD_METHOD``, so a C method call on a plain operand is an access.

Why instruction events rather than ``LINE`` events: a line such as
``if key in table: table[key] += 1`` holds three accesses, and the bugs this exists for
(a containment check racing a mutation) live between two of them; a line-granularity
point cannot separate them. The per-access cost is measured by ``bench --only
intercept`` against explicit points.

Busy-waits stay schedulable: a thread that reads the same location at the same site
again while nothing was written since is spinning, and that read is a voluntary yield
point (``sched.yield_point``), so PCT demotes the spinner and exploration switches away
for free, as for ``time.sleep(0)``; the writer it waits for gets to run. (A spin that
reads nothing instrumented and never sleeps keeps the token: that is a hang report.)

Explicit ``sched.point`` stays the fast default: nothing is instrumented unless named.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
import types
from typing import Any, Callable, Iterable

from ..errors import UsageError
from ._hybrid import caller
from ._sites import MUTATORS, UNKNOWN, Site, resolve, sites

__all__ = ["Instrumentation", "code_objects"]

_TOOL_NAME = "rcu-pgdat"
_READS = frozenset({"read", "in"})
_C_CALLABLES = (types.BuiltinFunctionType, types.MethodDescriptorType,
                types.WrapperDescriptorType, types.MethodWrapperType,
                types.ClassMethodDescriptorType)


def _functions(obj: Any) -> Iterable[Any]:
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        return [f for f in (obj.fget, obj.fset, obj.fdel) if f is not None]
    return [obj]


def code_objects(module: types.ModuleType) -> list[types.CodeType]:
    """Every code object defined in ``module``'s file: its functions, its classes'
    methods (nested classes too) and every code nested in those (closures, lambdas,
    comprehensions), in definition order, each once."""
    filename = getattr(module, "__file__", None)
    found: dict[types.CodeType, None] = {}
    seen_classes: set[int] = set()

    def add_code(code: types.CodeType) -> None:
        if code.co_filename != filename or code in found:
            return
        found[code] = None
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                add_code(const)

    def add(obj: Any) -> None:
        if isinstance(obj, type):
            if id(obj) in seen_classes or obj.__module__ != module.__name__:
                return
            seen_classes.add(id(obj))
            for member in vars(obj).values():
                add(member)
            return
        for fn in _functions(obj):
            code = getattr(fn, "__code__", None)
            if isinstance(code, types.CodeType):
                add_code(code)

    for value in list(vars(module).values()):
        add(value)
    return list(found)


def _what(site: Site, root: Any, field: str) -> str:
    kind = type(root).__name__
    if site.kind == "attr":
        return f"{kind}.{field}"
    if site.kind == "subscript":
        return f"{kind}[{field}]"
    if site.kind == "call":
        return f"{kind}.{site.label.split()[1].rsplit('.', 1)[-1]}"
    return kind


@functools.lru_cache(maxsize=16)
def _sites_of(modules: tuple[str, ...]) -> dict[types.CodeType, dict[int, Site]]:
    """The access sites of every code object of ``modules`` (decoded once per process:
    a run re-runs the same code)."""
    table: dict[types.CodeType, dict[int, Site]] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise UsageError(f"cannot instrument {name!r}: {exc}") from None
        for code in code_objects(module):
            table[code] = sites(code)
    return table


class Instrumentation:
    """Schedule points and access logging at the accesses of ``modules``' code."""

    def __init__(self, modules: Iterable[str]) -> None:
        self.modules = tuple(modules)
        self._sites = _sites_of(self.modules)
        self._tool: int | None = None
        self._previous_trace: Any = None
        self._last: dict[str, tuple[Site, int, int]] = {}   # per thread: see _visit
        self._enabled = False

    @property
    def code_count(self) -> int:
        """How many code objects are instrumented."""
        return len(self._sites)

    # -- what happens at an access ----------------------------------------------------

    def _visit(self, site: Site, frame: types.FrameType) -> None:
        run, me = caller()
        if run is None:
            return
        log = run.access_log
        if site.op in _READS and self._last.get(me.name) == (
                site, id(resolve(site.root, frame)), log.writes):
            run.yield_point(site.label)     # the same read, nothing written since: a spin
        else:
            run.point(site.label)
        root = resolve(site.root, frame)
        self._last[me.name] = (site, id(root), log.writes)
        if root is UNKNOWN:
            return
        field = site.field
        if site.key is not None:
            key = resolve(site.key, frame)
            field = "?" if key is UNKNOWN else repr(key)[:40]
        run.access_log.add(int(run.now()) - 1, me.name, site.op, root, field,
                           _what(site, root, field), site.where)

    def _visit_call(self, code: types.CodeType, offset: int, frame: types.FrameType,
                    func: Any, arg0: Any) -> bool:
        """A call at ``offset``: an access when ``func`` is C code; False otherwise."""
        if not isinstance(func, _C_CALLABLES):
            return False
        run, me = caller()
        if run is None:
            return True
        name = getattr(func, "__name__", "call")
        owner = getattr(func, "__self__", None)
        root = owner if owner is not None and not isinstance(owner, types.ModuleType) \
            else arg0
        line = _line_of(code, offset)
        where = f"{code.co_filename.rsplit('/', 1)[-1]}:{line}"
        run.point(f"call {name}() {where}")
        if root is _MISSING or root is None:
            return True
        op = "mutate" if name in MUTATORS else "call"
        run.access_log.add(int(run.now()) - 1, me.name, op, root, "*",
                           f"{type(root).__name__}.{name}()", where)
        return True

    # -- switching on and off -----------------------------------------------------------

    def enable(self) -> None:
        """Start instrumenting (model threads started from now on, on 3.10-3.11)."""
        if self._enabled:
            return
        if _MONITORING is not None:
            self._enable_monitoring()
        else:
            self._previous_trace = threading.gettrace()
            threading.settrace(self._global_trace)
        self._enabled = True

    def disable(self) -> None:
        """Stop instrumenting; leaves no event, callback or trace function behind."""
        if not self._enabled:
            return
        self._enabled = False
        if _MONITORING is not None:
            self._disable_monitoring()
        else:
            threading.settrace(self._previous_trace)

    # sys.monitoring (3.12+) -------------------------------------------------------------

    def _enable_monitoring(self) -> None:
        mon = _MONITORING
        tool = next((t for t in (4, 3) if mon.get_tool(t) is None), None)
        if tool is None:
            raise UsageError("cannot instrument: sys.monitoring tool ids 3 and 4 are both "
                             "taken by other tools")
        mon.use_tool_id(tool, _TOOL_NAME)
        self._tool = tool
        table = self._sites
        disable = mon.DISABLE
        visit = self._visit
        getframe = sys._getframe

        def on_instruction(code: types.CodeType, offset: int) -> Any:
            site = table[code].get(offset)
            if site is None:
                return disable
            visit(site, getframe(1))
            return None

        def on_call(code: types.CodeType, offset: int, func: Any, arg0: Any) -> Any:
            if code not in table:
                return disable
            return None if self._visit_call(code, offset, getframe(1), func, arg0) \
                else disable

        mon.register_callback(tool, mon.events.INSTRUCTION, on_instruction)
        mon.register_callback(tool, mon.events.CALL, on_call)
        mon.restart_events()
        for code in table:
            mon.set_local_events(tool, code, mon.events.INSTRUCTION | mon.events.CALL)

    def _disable_monitoring(self) -> None:
        mon = _MONITORING
        tool = self._tool
        if tool is None:
            return
        for code in self._sites:
            mon.set_local_events(tool, code, 0)
        mon.register_callback(tool, mon.events.INSTRUCTION, None)
        mon.register_callback(tool, mon.events.CALL, None)
        mon.free_tool_id(tool)
        self._tool = None

    # settrace (3.10-3.11) ---------------------------------------------------------------

    def _global_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        table = self._sites.get(frame.f_code)
        if table is None or not self._enabled:
            return None
        frame.f_trace_lines = False
        frame.f_trace_opcodes = True
        visit = self._visit

        def local(frame: types.FrameType, event: str, arg: Any) -> Callable[..., Any]:
            if event == "opcode":
                site = table.get(frame.f_lasti)
                if site is not None:
                    visit(site, frame)
            return local
        return local


def _line_of(code: types.CodeType, offset: int) -> int:
    for start, end, line in code.co_lines():
        if start <= offset < end and line is not None:
            return line
    return code.co_firstlineno


_MONITORING: Any = getattr(sys, "monitoring", None)
_MISSING: Any = getattr(_MONITORING, "MISSING", object())
