"""Stripe's metadata rules: string keys and values, at most 50 keys, keys of at most 40
characters without square brackets, values of at most 500 characters. Updates merge into the
existing keys; an empty value deletes a key and an empty `metadata` deletes them all."""

from __future__ import annotations

from autumn_sync.emulator.errors import invalid
from autumn_sync.emulator.params import Params

MAX_KEYS = 50
MAX_KEY_LENGTH = 40
MAX_VALUE_LENGTH = 500


def merged(current: dict[str, str], params: Params, key: str = "metadata") -> dict[str, str]:
    """The metadata after applying the request's `metadata` parameter to `current`."""
    if not params.has(key):
        return dict(current)
    if params.is_empty(key):
        return {}
    changes = params.sub(key)
    assert changes is not None
    result = dict(current)
    for name in changes.names():
        value = _checked(changes, name)
        if value == "":
            result.pop(name, None)
        else:
            result[name] = value
    if len(result) > MAX_KEYS:
        raise invalid(
            f"Metadata may have at most {MAX_KEYS} keys; this request would leave {len(result)}.",
            params.name(key),
        )
    return result


def _checked(changes: Params, name: str) -> str:
    """The value sent for metadata key `name`, after checking key and value."""
    param = changes.name(name)
    if len(name) > MAX_KEY_LENGTH or "[" in name or "]" in name:
        raise invalid(
            f"Invalid metadata key '{name}': keys must be at most {MAX_KEY_LENGTH} "
            "characters and must not contain square brackets.",
            param,
        )
    value = changes.data[name]
    if not isinstance(value, str):
        raise invalid(f"Invalid metadata value for '{name}': values must be strings.", param)
    if len(value) > MAX_VALUE_LENGTH:
        raise invalid(
            f"Invalid metadata value for '{name}': values must be at most "
            f"{MAX_VALUE_LENGTH} characters.",
            param,
        )
    return value
