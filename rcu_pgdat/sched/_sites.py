"""Where in a code object the shared-state accesses are: a static reading of bytecode.

For each instruction that loads, stores or deletes an attribute or a subscript, tests
``in``, or (below 3.12, where the call's target is not visible) loads a method to call,
:func:`sites` gives a :class:`Site`: the operation, a label for the schedule point, and
how to find the accessed object when the instruction is about to run. Operands come
from an abstract run of the value stack over straight-line code: plain loads (a local,
a global, a cell, a constant, an attribute chain of those) push what they load,
``COPY``/``SWAP`` (and 3.10's ``DUP_TOP``/``ROT_*``) move it, anything else pushes
"unknown"; a jump target or the end of a flow starts from nothing known. So
``self.v``, ``d[k]``, ``x in shared``, ``self.a.b`` and ``self.n += 1`` are all
located. An unknown operand still gets its schedule point; only the explanation's
location is then missing (the access is not logged), which can hide a conflict from
the explanation but never invents one.

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


# (pops, pushes) of value-stack instructions whose result is not an operand we track:
# what they leave on the stack is unknown, what lies below it stays known.
_EFFECTS = {"BINARY_OP": (2, 1), "BINARY_SUBSCR": (2, 1), "COMPARE_OP": (2, 1),
            "CONTAINS_OP": (2, 1), "IS_OP": (2, 1), "UNARY_NOT": (1, 1),
            "UNARY_NEGATIVE": (1, 1), "UNARY_INVERT": (1, 1), "TO_BOOL": (1, 1),
            "POP_TOP": (1, 0), "STORE_FAST": (1, 0), "STORE_NAME": (1, 0),
            "STORE_GLOBAL": (1, 0), "STORE_DEREF": (1, 0), "STORE_ATTR": (2, 0),
            "STORE_SUBSCR": (3, 0), "DELETE_SUBSCR": (2, 0), "DELETE_ATTR": (1, 0),
            "NOP": (0, 0), "RESUME": (0, 0), "PRECALL": (0, 0), "CACHE": (0, 0)}
_END_OF_FLOW = ("RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE",
                "JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_ABSOLUTE", "JUMP",
                "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_NO_INTERRUPT")


def _pushed(x: dis.Instruction, stack: list[Operand | None]) -> list[Operand | None] | None:
    """What a plain load pushes (top last), or None if ``x`` is not one."""
    name = x.opname
    if name in _FAST:
        return [("fast", x.argval)]
    if name in _FAST2:
        first, second = x.argval
        return [("fast", first), ("fast", second)]
    if name in _CONST:
        return [("const", x.argval)]
    if name in _CELL:
        return [("cell", x.argval)]
    if name in ("LOAD_GLOBAL", "LOAD_NAME"):
        if "NULL" not in x.argrepr:
            return [("global", x.argval)]
        loaded: Operand = ("global", x.argval)
        return [None, loaded] if x.argrepr.startswith("NULL") else [loaded, None]
    return None


def _step(x: dis.Instruction, stack: list[Operand | None]) -> None:
    """Apply instruction ``x`` to the abstract value stack (unknown values are None)."""
    name = x.opname

    def pop() -> Operand | None:
        return stack.pop() if stack else None
    pushed = _pushed(x, stack)
    if pushed is not None:
        stack.extend(pushed)
    elif name == "LOAD_ATTR" and "NULL" not in x.argrepr:
        base = pop()
        stack.append(None if base is None else ("attr", base, x.argval))
    elif name in ("LOAD_ATTR", "LOAD_METHOD"):     # a method load: callable and self
        pop()
        stack.extend([None, None])
    elif name in ("COPY", "DUP_TOP"):
        n = x.arg if name == "COPY" else 1
        stack.append(stack[-n] if n and len(stack) >= n else None)
    elif name == "DUP_TOP_TWO":
        stack.extend(stack[-2:] if len(stack) >= 2 else [None, None])
    elif name in ("SWAP", "ROT_TWO"):
        n = x.arg if name == "SWAP" else 2
        if n and len(stack) >= n:
            stack[-1], stack[-n] = stack[-n], stack[-1]
        else:
            stack[:] = [None] * len(stack)
    elif name == "ROT_THREE" and len(stack) >= 3:
        stack[-3:] = [stack[-1], stack[-3], stack[-2]]
    elif name in _EFFECTS or name.startswith(("BINARY_", "INPLACE_")):
        pops, pushes = _EFFECTS.get(name, (2, 1))
        for _ in range(pops):
            pop()
        stack.extend([None] * pushes)
    else:                                   # anything else: keep the depth, forget values
        try:
            effect = dis.stack_effect(x.opcode, x.arg, jump=False)
        except ValueError:
            effect = 0
        depth = max(0, len(stack) + effect)
        stack[:] = [None] * depth
    if name in _END_OF_FLOW:
        stack.clear()


def _stacks(ins: list[dis.Instruction]) -> list[list[Operand | None]]:
    """The abstract stack before each instruction, within straight-line code: a jump
    target starts from nothing known (popping nothing gives None: unknown)."""
    out: list[list[Operand | None]] = []
    stack: list[Operand | None] = []
    for x in ins:
        if x.is_jump_target:
            stack = []
        out.append(list(stack))
        _step(x, stack)
    return out


def _top(stack: list[Operand | None], n: int) -> list[Operand | None]:
    """The ``n`` values on top (bottom first), None where unknown."""
    have = stack[-n:] if n <= len(stack) else stack[:]
    return [None] * (n - len(have)) + have


def _is_subscript(x: dis.Instruction) -> bool:
    return x.opname == "BINARY_SUBSCR" or (x.opname == "BINARY_OP" and x.argrepr == "[]")


def sites(code: types.CodeType) -> dict[int, Site]:
    """Offset -> :class:`Site` for every access instruction of ``code`` (not nested)."""
    ins = [x for x in dis.get_instructions(code) if x.opname != "CACHE"]
    stacks = _stacks(ins)
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
            (root,) = _top(stacks[i], 1)
            site = Site("read", "attr", root, x.argval, None,
                        f"read {_text(root)}.{x.argval} {where}", where)
        elif name in ("STORE_ATTR", "DELETE_ATTR"):
            (root,) = _top(stacks[i], 1)
            op = "write" if name == "STORE_ATTR" else "delete"
            site = Site(op, "attr", root, x.argval, None,
                        f"{op} {_text(root)}.{x.argval} {where}", where)
        elif _is_subscript(x) or name in ("STORE_SUBSCR", "DELETE_SUBSCR"):
            root, key = _top(stacks[i], 2)
            op = "read" if _is_subscript(x) else "write" if name == "STORE_SUBSCR" else "delete"
            site = Site(op, "subscript", root, "?", key,
                        f"{op} {_text(root)}[{_text(key)}] {where}", where)
        elif name == "CONTAINS_OP":
            item, root = _top(stacks[i], 2)
            site = Site("in", "in", root, "*", None,
                        f"test {_text(item)} in {_text(root)} {where}", where)
        elif name == "LOAD_METHOD":             # below 3.12: the call's target is hidden
            (root,) = _top(stacks[i], 1)
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
