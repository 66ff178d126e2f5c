"""autumn-sync: a billing catalog as code.

The YAML file is the desired state; the billing database is the current state; a pure diff
between them is a typed, ordered plan that can be rendered (text, JSON, Markdown) and applied.
"""

from autumn_sync.pipeline import apply_plan, load_desired, make_plan, read_current

__all__ = ["apply_plan", "load_desired", "make_plan", "read_current"]
__version__ = "0.1.0"
