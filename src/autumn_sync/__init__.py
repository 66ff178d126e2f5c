"""autumn-sync: a billing catalog as code.

The YAML file is the desired state; the billing database (and Stripe) the current state; a
pure diff between them is a typed, ordered plan that can be rendered (text, JSON, Markdown)
and applied. The pipeline's verbs are importable from here (loaded on first use, so that
`autumn_sync.emulator` does not pull in the Stripe client).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["apply_plan", "load_desired", "make_plan", "read_current"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("autumn_sync.pipeline"), name)
    raise AttributeError(f"module 'autumn_sync' has no attribute {name!r}")
