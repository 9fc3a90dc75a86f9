"""Model adapters: one batched prediction interface for every model format."""
from auditkit.adapters.base import AdapterSpec, ModelAdapter, load_adapter

__all__ = ["AdapterSpec", "ModelAdapter", "load_adapter"]
