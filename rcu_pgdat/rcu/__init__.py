"""The synchronization under test: RCU flavors and SRCU domains.

Every flavor and domain runs in one of two modes (``mode=CHECKED``, the default, or
``mode=FAST``); ``_flavor`` explains both, and ``flavor.reader()`` the reader handle.
"""

from __future__ import annotations

from .callbacks import CallbackWorker
from ._flavor import CHECKED, FAST, MODES
from .memb import Memb
from .protocol import RCUFlavor, SRCUDomain
from .qsbr import QSBR
from .srcu import SRCU

__all__ = ["CHECKED", "FAST", "MODES", "CallbackWorker", "QSBR", "SRCU", "Memb", "RCUFlavor",
           "SRCUDomain"]
