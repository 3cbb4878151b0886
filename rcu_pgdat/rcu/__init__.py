"""The synchronization under test: RCU flavors and SRCU domains."""

from __future__ import annotations

from .memb import Memb
from .protocol import RCUFlavor, SRCUDomain
from .qsbr import QSBR
from .srcu import SRCU

__all__ = ["QSBR", "SRCU", "Memb", "RCUFlavor", "SRCUDomain"]
