"""auditkit: audits of trained machine-learning models, gated by a YAML policy."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
