"""Loading and validating the billing file (the desired state)."""

from autumn_sync.config.load import load_file, load_text
from autumn_sync.config.problems import ConfigError, Problem

__all__ = ["ConfigError", "Problem", "load_file", "load_text"]
