"""Loading RCU flavors and SRCU domains: built-in names or a user's ``module:attr``.

The built-in names are registries, ``FLAVORS`` and ``SRCU_DOMAINS`` (name -> factory),
which the CLI's help and the torture subcommand list. A plug-in is named by import
path; to import it (or a module ``--instrument`` names), the current directory is put
first on ``sys.path`` (as ``python -m`` does), only then and only once: importing this
module changes nothing. ``attr`` may be a class or a factory (called with no argument)
or a ready instance. It must have the protocol's required methods
(``rcu_pgdat.rcu.protocol``); anything else the harness uses is optional. A plug-in
that does not import, has no such attribute, raises while it is built, or lacks a
required method raises :class:`PluginError`, which the CLI turns into exit code 125 so
that ``git bisect run`` skips the commit.

A plug-in written in plain ``threading`` (its module imports nothing of ``rcu_pgdat``)
has no schedule point of its own: a controlled run would switch threads only at its
locks and waits (interception), never between two of its plain loads and stores, where
races such as a lost ``+=`` or a load and a store split by a flip live.
:func:`plain_plugin_modules` names such modules so that controlled runs instrument them
by default (every shared access a schedule point, ``--instrument``); a module that
imports ``rcu_pgdat`` placed its own points and is left as its author marked it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import sys
import traceback
from collections.abc import Iterable
from typing import Any, Callable

from rcu_pgdat.errors import RCUPgdatError
from rcu_pgdat.rcu import SRCU, Memb, QSBR
from rcu_pgdat.rcu.protocol import RCU_REQUIRED, SRCU_REQUIRED

__all__ = ["PluginError", "load_flavor", "load_srcu", "load_instrumented", "FLAVORS",
           "SRCU_DOMAINS", "plain_plugin_modules"]

#: The built-in RCU flavors by name (``--flavor``), each a factory of a fresh instance.
FLAVORS: dict[str, Callable[[], Any]] = {"qsbr": QSBR, "memb": Memb}
#: The built-in SRCU domains by name (``--srcu``): a factory taking the domain's name.
SRCU_DOMAINS: dict[str, Callable[[str], Any]] = {"builtin": SRCU}


class PluginError(RCUPgdatError):
    """A plug-in could not be loaded or does not implement the protocol."""


def _import_attr(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise PluginError(f"plug-in {spec!r} is not of the form MODULE:ATTR "
                          "(for example mypkg.myrcu:MyRCU)")
    _cwd_on_path()
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:   # SyntaxError, SystemExit in module code, ...
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise PluginError(f"plug-in module {module_name!r} does not import: {last}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"plug-in module {module_name!r} has no attribute "
                              f"{attr!r}") from None
    return obj


def _instantiate(spec: str, obj: Any, required: tuple[str, ...], what: str) -> Any:
    if isinstance(obj, type) or (callable(obj) and not all(hasattr(obj, m) for m in required)):
        try:
            obj = obj()
        except BaseException as exc:
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            raise PluginError(f"plug-in {spec!r} could not be built: {last}") from None
    try:
        missing = [m for m in required if not callable(getattr(obj, m, None))]
        getattr(obj, "name", None)       # the harness reads it while it builds the run
    except BaseException as exc:         # a property that raises, or even exits
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise PluginError(f"plug-in {spec!r} could not be built: {last}") from None
    if missing:
        raise PluginError(f"plug-in {spec!r} does not implement the {what} protocol: "
                          f"missing {', '.join(missing)} (see README, 'Plug-ins')")
    return obj


def load_flavor(spec: str) -> Any:
    """An RCU flavor: a name in ``FLAVORS`` or ``MODULE:ATTR``."""
    if spec in FLAVORS:
        return FLAVORS[spec]()
    if ":" not in spec:
        raise PluginError(f"unknown flavor {spec!r}: {', '.join(FLAVORS)} or MODULE:ATTR")
    return _instantiate(spec, _import_attr(spec), RCU_REQUIRED, "RCU")


def load_srcu(spec: str, name: str = "pgdat") -> Any:
    """An SRCU domain: a name in ``SRCU_DOMAINS`` or ``MODULE:ATTR``."""
    if spec in SRCU_DOMAINS:
        return SRCU_DOMAINS[spec](name)
    if ":" not in spec:
        raise PluginError(f"unknown SRCU {spec!r}: {', '.join(SRCU_DOMAINS)} or MODULE:ATTR")
    return _instantiate(spec, _import_attr(spec), SRCU_REQUIRED, "SRCU")


def load_instrumented(names: tuple[str, ...]) -> None:
    """Import the modules ``--instrument`` names (a module that does not import is a
    plug-in that does not import: :class:`PluginError`)."""
    if names:
        _cwd_on_path()
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            raise PluginError(f"--instrument {name}: the module does not import: "
                              f"{last}") from None


def plain_plugin_modules(specs: Iterable[str]) -> tuple[str, ...]:
    """The modules of the ``MODULE:ATTR`` plug-ins among ``specs`` that are written in
    plain threading (see the module docstring), each once, in the order given. Built-in
    names and modules whose source cannot be read are not plain."""
    found: list[str] = []
    for spec in specs:
        module_name, sep, _ = spec.partition(":")
        if sep and module_name not in found and _is_plain(module_name):
            found.append(module_name)
    return tuple(found)


@functools.lru_cache(maxsize=None)
def _is_plain(module_name: str) -> bool:
    """Whether the module's source imports nothing of ``rcu_pgdat`` (read once: the
    answer is asked at every controlled run of a sweep)."""
    _cwd_on_path()
    try:
        path = getattr(importlib.import_module(module_name), "__file__", None)
        if path is None or not path.endswith(".py"):
            return False
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except BaseException:          # loading reports it: this only asks a question
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        if any(name.split(".")[0] == "rcu_pgdat" for name in names):
            return False
    return True


def _cwd_on_path() -> None:
    """Let ``MODULE:ATTR`` name a module in the current directory, as ``python -m`` does."""
    if "" not in sys.path:
        sys.path.insert(0, "")
