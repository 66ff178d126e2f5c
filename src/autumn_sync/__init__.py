"""autumn-sync: a billing catalog as code.

The YAML file is the desired state; the billing database (and Stripe) the current state; a
pure diff between them is a typed, ordered plan that can be rendered (text, JSON, Markdown)
and applied. The pipeline's verbs are importable from here, and so is the runtime API
(`Billing`: get_or_create, check, track) with its results and errors (all loaded on first
use, so that `autumn_sync.emulator` does not pull in the Stripe client).
"""

from __future__ import annotations

import importlib
from typing import Any

_PIPELINE = ("apply_plan", "load_desired", "make_plan", "read_current")
_RUNTIME = (
    "Billing",
    "BillingError",
    "CheckResult",
    "CustomerInfo",
    "FeatureBalance",
    "InvalidRequest",
    "PlanInfo",
    "TrackResult",
    "UnknownCustomer",
    "UnknownEntity",
    "UnknownFeature",
)
__all__ = [*_PIPELINE, *_RUNTIME]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _PIPELINE:
        return getattr(importlib.import_module("autumn_sync.pipeline"), name)
    if name in _RUNTIME:
        return getattr(importlib.import_module("autumn_sync.runtime"), name)
    raise AttributeError(f"module 'autumn_sync' has no attribute {name!r}")
