"""Read-only adapters that produce the current `State`."""
