"""The layers import downward only, and no module imports itself back round a cycle.

Imports are read with ``ast`` from every module of ``rcu_pgdat`` and ``stress`` (those
inside functions too: a late import is still a dependency). Not counted: imports under
``if TYPE_CHECKING:`` (never executed; annotations only) and the implicit execution of
a parent package's ``__init__`` (``from rcu_pgdat import sched`` depends on
``rcu_pgdat.sched``, not on the package's public face).

The allowed order, top to bottom (the README's layer table says the same). A module may
import its own group and any lower rank; two groups of one rank are peers and import
neither way.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: rank -> the groups of that rank (a group is a module or package and all below it).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("stress", "rcu_pgdat.pytest_plugin", "rcu_pgdat"),   # front ends, the public face
    ("rcu_pgdat.mutants",),                                 # known-bad variants
    ("rcu_pgdat.mm",),                                      # the kernel model
    ("rcu_pgdat.harness",),                                 # runs, checked wrappers
    ("rcu_pgdat.rcu", "rcu_pgdat.check"),                   # code under test; oracles
    ("rcu_pgdat.sched",),                                   # schedule points, schedulers
    ("rcu_pgdat.errors",),                                  # the exception hierarchy
)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                skipped.update(id(n) for n in ast.walk(stmt))
    return skipped


def imports_of(source: str, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules that module ``name`` imports (see the module docstring)."""
    tree = ast.parse(source)
    skipped = _type_checking_nodes(tree)
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    found.add(sub)
                elif target in known:
                    found.add(target)
    found.discard(name)
    return found


def project_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports, for ``rcu_pgdat`` and ``stress``."""
    paths = {module_name(p, root): p for top in ("rcu_pgdat", "stress")
             for p in (root / top).rglob("*.py")}
    known = set(paths)
    return {name: imports_of(p.read_text(encoding="utf-8"), name, p.name == "__init__.py",
                             known) for name, p in paths.items()}


def group_of(module: str) -> tuple[int, str]:
    """(rank, group) of ``module``: the longest group name that contains it."""
    best: tuple[int, str] | None = None
    for rank, groups in enumerate(LAYERS):
        for group in groups:
            if module == group or module.startswith(group + "."):
                if best is None or len(group) > len(best[1]):
                    best = (rank, group)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS and the README")
    return best


def upward_imports(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """``a -> b`` for every import of a higher rank or of a peer group."""
    bad = []
    for module, targets in sorted(graph.items()):
        rank, group = group_of(module)
        for target in sorted(targets):
            t_rank, t_group = group_of(target)
            if t_group != group and t_rank <= rank:
                bad.append(f"{module} -> {target}")
    return bad


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    assert cycles(project_graph()) == []


def test_no_upward_import_between_layers() -> None:
    assert upward_imports(project_graph()) == []


def test_every_module_is_in_a_layer() -> None:
    for module in project_graph():
        group_of(module)


def test_the_readme_lists_the_layers_in_this_order() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.splitlines() if line.startswith("| `")]
    rows = [line.split("`")[1].rstrip("/").replace("/", ".").removesuffix(".py")
            for line in table]
    listed = [g for g in rows if any(g in groups for groups in LAYERS)]
    order = [g for groups in LAYERS for g in groups if g in listed]
    assert listed == order and {"stress", "rcu_pgdat.mm", "rcu_pgdat.harness",
                                "rcu_pgdat.sched"} <= set(listed)


# -- the checks can fail ---------------------------------------------------------------------


def test_a_cycle_and_an_upward_import_are_found(tmp_path: Path) -> None:
    """A small tree with the two faults this file forbids: both are reported."""
    for name, text in {
        "rcu_pgdat/__init__.py": "",
        "rcu_pgdat/errors.py": "",
        "rcu_pgdat/sched/__init__.py": "from . import runner\n",
        "rcu_pgdat/sched/runner.py": "def f():\n    from .shrink import g\n",
        "rcu_pgdat/sched/shrink.py": "from .runner import f\n",
        "rcu_pgdat/check/__init__.py": "from ..harness import checked\n",
        "rcu_pgdat/rcu/__init__.py": "from typing import TYPE_CHECKING\n"
                                     "if TYPE_CHECKING:\n    from ..check import x\n",
        "rcu_pgdat/harness/__init__.py": "",
        "rcu_pgdat/harness/checked.py": "from .. import check\n",
        "rcu_pgdat/check/oracles.py": "from rcu_pgdat import sched\n",
        "stress/__init__.py": "",
    }.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    graph = project_graph(tmp_path)
    assert graph["rcu_pgdat.check.oracles"] == {"rcu_pgdat.sched"}
    assert graph["rcu_pgdat.rcu"] == set()                     # TYPE_CHECKING only
    assert cycles(graph) == [["rcu_pgdat.check", "rcu_pgdat.harness.checked"],
                             ["rcu_pgdat.sched.runner", "rcu_pgdat.sched.shrink"]]
    assert upward_imports(graph) == ["rcu_pgdat.check -> rcu_pgdat.harness.checked"]
    with pytest.raises(AssertionError, match="belongs to no layer"):
        group_of("elsewhere.module")
