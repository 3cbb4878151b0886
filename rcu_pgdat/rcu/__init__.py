"""The synchronization under test: RCU flavors and SRCU domains."""

from __future__ import annotations

from .protocol import RCUFlavor, SRCUDomain

__all__ = ["RCUFlavor", "SRCUDomain"]
