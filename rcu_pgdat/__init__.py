"""rcu-pgdat: a concurrency-verification harness for RCU-protected pgdat hot-remove.

The public face: the RCU flavors and SRCU domains, the plug-in protocol, the scheduler
API that algorithms and plug-ins call, and the errors. Everything in modules whose name
starts with an underscore is private.
"""

from __future__ import annotations

from . import errors, sched

__all__ = ["errors", "sched", "__version__"]

__version__ = "0.1.0"
