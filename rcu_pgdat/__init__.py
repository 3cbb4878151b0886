"""rcu-pgdat: a concurrency-verification harness for RCU-protected pgdat hot-remove.

The public face, re-exported here; everything in modules whose name starts with an
underscore is private:

* the RCU flavors and SRCU domains: :class:`QSBR`, :class:`Memb`, :class:`SRCU`;
* the plug-in protocol they implement: :class:`RCUFlavor`, :class:`SRCUDomain`, and the
  checked wrappers the harness drives any implementation through (``rcu_pgdat.harness``);
* the scheduler API for algorithms and plug-ins: :mod:`rcu_pgdat.sched`
  (``sched.point``, ``sched.wait_until``, ``sched.Mutex``, ``sched.Event``, the
  controlled scheduler);
* the model's entry points: :class:`System`, :class:`SystemConfig`, :class:`Topology`;
* the oracles (:mod:`rcu_pgdat.check`) and the error hierarchy (:mod:`rcu_pgdat.errors`).
"""

from __future__ import annotations

from . import check, errors, sched
from .errors import RCUPgdatError, UsageError
from .mm.system import System, SystemConfig
from .mm.topology import Topology
from .rcu import SRCU, Memb, QSBR, RCUFlavor, SRCUDomain

__all__ = [
    "QSBR",
    "SRCU",
    "Memb",
    "RCUFlavor",
    "RCUPgdatError",
    "SRCUDomain",
    "System",
    "SystemConfig",
    "Topology",
    "UsageError",
    "__version__",
    "check",
    "errors",
    "sched",
]

__version__ = "0.1.0"
