"""Where in a code object the shared-state accesses are: a static reading of bytecode.

For each instruction that loads, stores or deletes an attribute or a subscript, tests
``in``, or (below 3.12, where the call's target is not visible) loads a method to call,
:func:`sites` gives a :class:`Site`: the operation, a label for the schedule point, and
how to find the accessed object when the instruction is about to run. Operands are
recovered by walking back over the instructions that pushed them, as long as those are
plain loads (a local, a global, a cell, a constant, or an attribute chain of those):
``self.v``, ``d[k]``, ``x in shared``, ``self.a.b``. Anything else still gets its
schedule point; only the explanation's location is then unknown (the access is not
logged), which can hide a conflict from the explanation but never invents one.

Why reading the bytecode is enough: an access instruction's operands are on the value
stack when it runs, and for the plain loads above the value on the stack is exactly
what evaluating the same load in the frame gives at that moment (the frame's locals are
its own; a global or attribute read is re-read right after the schedule point, which is
when the instruction runs, since exactly one model thread runs per step).
"""

from __future__ import annotations

import builtins
import dis
import os
import types
from dataclasses import dataclass
from typing import Any

__all__ = ["Site", "sites", "resolve", "UNKNOWN", "MUTATORS"]

_FAST = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW", "LOAD_FAST_AND_CLEAR"})
_FAST2 = frozenset({"LOAD_FAST_LOAD_FAST", "LOAD_FAST_BORROW_LOAD_FAST_BORROW"})
_CONST = frozenset({"LOAD_CONST", "LOAD_SMALL_INT"})
_CELL = frozenset({"LOAD_DEREF", "LOAD_CLOSURE", "LOAD_CLASSDEREF"})

#: Method names (of the built-in containers) that change their object.
MUTATORS = frozenset({"append", "extend", "insert", "pop", "remove", "clear", "add",
                      "discard", "update", "setdefault", "popitem", "sort", "reverse",
                      "appendleft", "popleft", "extendleft", "rotate", "difference_update",
                      "intersection_update", "symmetric_difference_update",
                      "__setitem__", "__delitem__"})

#: An operand: ("fast"|"global"|"cell"|"const", name or value) or ("attr", base, name).
Operand = tuple[Any, ...]

UNKNOWN = object()


@dataclass(frozen=True)
class Site:
    """An access instruction: ``op`` on ``root``'s field (``field``, or the value of
    ``key`` for a subscript); ``label`` names its schedule point."""

    op: str                      # read write delete in call mutate
    kind: str                    # attr subscript in call
    root: Operand | None
    field: str
    key: Operand | None
    label: str
    where: str


def _text(op: Operand | None) -> str:
    if op is None:
        return "?"
    if op[0] == "attr":
        return f"{_text(op[1])}.{op[2]}"
    if op[0] == "const":
        return repr(op[1])
    return str(op[1])


def _produce(ins: list[dis.Instruction], j: int) -> tuple[list[Operand], int] | None:
    """The operands instruction ``j`` pushes (top last), and where its inputs end."""
    x = ins[j]
    name = x.opname
    if name in _FAST:
        return [("fast", x.argval)], j - 1
    if name in _FAST2:
        first, second = x.argval
        return [("fast", first), ("fast", second)], j - 1
    if name in _CONST:
        return [("const", x.argval)], j - 1
    if name in _CELL:
        return [("cell", x.argval)], j - 1
    if name in ("LOAD_GLOBAL", "LOAD_NAME") and "NULL" not in x.argrepr:
        return [("global", x.argval)], j - 1
    if name == "LOAD_ATTR" and "NULL" not in x.argrepr and j > 0:
        below = _produce(ins, j - 1)          # may push two: LOAD_FAST_LOAD_FAST
        if below is None:
            return None
        return below[0][:-1] + [("attr", below[0][-1], x.argval)], below[1]
    return None


def _operands(ins: list[dis.Instruction], i: int, n: int) -> list[Operand | None]:
    """The ``n`` values on top of the stack before instruction ``i`` (bottom first)."""
    found: list[Operand] = []
    j = i - 1
    while len(found) < n and j >= 0:
        produced = _produce(ins, j)
        if produced is None:
            break
        found[:0] = produced[0]
        j = produced[1]
    found = found[-n:]
    return [None] * (n - len(found)) + list(found)


def _is_subscript(x: dis.Instruction) -> bool:
    return x.opname == "BINARY_SUBSCR" or (x.opname == "BINARY_OP" and x.argrepr == "[]")


def sites(code: types.CodeType) -> dict[int, Site]:
    """Offset -> :class:`Site` for every access instruction of ``code`` (not nested)."""
    ins = [x for x in dis.get_instructions(code) if x.opname != "CACHE"]
    base = os.path.basename(code.co_filename)
    out: dict[int, Site] = {}
    line = code.co_firstlineno
    for i, x in enumerate(ins):
        positions = getattr(x, "positions", None)
        lineno = positions.lineno if positions is not None else x.starts_line
        if lineno:
            line = lineno
        where = f"{base}:{line}"
        name = x.opname
        site: Site | None = None
        if name == "LOAD_ATTR" and "NULL" not in x.argrepr:
            (root,) = _operands(ins, i, 1)
            site = Site("read", "attr", root, x.argval, None,
                        f"read {_text(root)}.{x.argval} {where}", where)
        elif name in ("STORE_ATTR", "DELETE_ATTR"):
            (root,) = _operands(ins, i, 1)
            op = "write" if name == "STORE_ATTR" else "delete"
            site = Site(op, "attr", root, x.argval, None,
                        f"{op} {_text(root)}.{x.argval} {where}", where)
        elif _is_subscript(x) or name in ("STORE_SUBSCR", "DELETE_SUBSCR"):
            root, key = _operands(ins, i, 2)
            op = "read" if _is_subscript(x) else "write" if name == "STORE_SUBSCR" else "delete"
            site = Site(op, "subscript", root, "?", key,
                        f"{op} {_text(root)}[{_text(key)}] {where}", where)
        elif name == "CONTAINS_OP":
            item, root = _operands(ins, i, 2)
            site = Site("in", "in", root, "*", None,
                        f"test {_text(item)} in {_text(root)} {where}", where)
        elif name == "LOAD_METHOD":             # below 3.12: the call's target is hidden
            (root,) = _operands(ins, i, 1)
            op = "mutate" if x.argval in MUTATORS else "call"
            site = Site(op, "call", root, "*", None,
                        f"call {_text(root)}.{x.argval}() {where}", where)
        if site is not None:
            out[x.offset] = site
    return out


def _attribute(obj: Any, name: str) -> Any:
    """``obj.name`` if it is plain data (instance dict or slot), else UNKNOWN: never
    runs a property or ``__getattr__``."""
    try:
        return vars(obj)[name]
    except (TypeError, KeyError):
        pass
    slot = getattr(type(obj), name, None)
    if isinstance(slot, types.MemberDescriptorType):
        try:
            return slot.__get__(obj)
        except AttributeError:
            return UNKNOWN
    if isinstance(obj, types.ModuleType):
        return vars(obj).get(name, UNKNOWN)
    return UNKNOWN


def resolve(op: Operand | None, frame: types.FrameType) -> Any:
    """The value of operand ``op`` in ``frame`` now, or UNKNOWN."""
    if op is None:
        return UNKNOWN
    tag = op[0]
    if tag == "const":
        return op[1]
    if tag == "attr":
        base = resolve(op[1], frame)
        return UNKNOWN if base is UNKNOWN else _attribute(base, op[2])
    if tag == "global":
        value = frame.f_globals.get(op[1], UNKNOWN)
        return getattr(builtins, op[1], UNKNOWN) if value is UNKNOWN else value
    return frame.f_locals.get(op[1], UNKNOWN)
