"""Typed access to decoded request parameters, with Stripe-style validation errors.

Each accessor names the parameter as Stripe does in `error.param` (`recurring[interval]`,
`tiers[1][up_to]`), and `check_known` rejects parameters an endpoint does not take — which is
how Stripe refuses, for instance, `unit_amount` on a price update.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from autumn_sync.emulator.errors import invalid, missing_param, unknown_params
from autumn_sync.emulator.forms import Form, Node


class Params:
    """A mapping of request parameters at one nesting level."""

    def __init__(self, data: Form, prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def name(self, key: str) -> str:
        """The parameter's full name as Stripe prints it."""
        return f"{self.prefix}[{key}]" if self.prefix else key

    def has(self, key: str) -> bool:
        """Whether the parameter was sent at all (an empty value counts)."""
        return key in self.data

    def is_empty(self, key: str) -> bool:
        """Whether the parameter was sent as an empty string (Stripe's way to unset)."""
        return self.data.get(key) == ""

    def reject_empty(self, key: str) -> None:
        """Refuse an empty string for a parameter that cannot be unset."""
        if self.is_empty(key):
            raise invalid(
                f"You passed an empty string for '{self.name(key)}'. Empty values unset a "
                f"parameter, and '{self.name(key)}' cannot be unset: remove it from the "
                "request or send a value.",
                self.name(key),
                "parameter_invalid_empty",
            )

    def names(self) -> list[str]:
        """The parameter names at this level, in the order sent."""
        return list(self.data)

    def check_known(self, allowed: Iterable[str]) -> None:
        """Refuse the request if it carries a parameter outside `allowed`."""
        known = set(allowed) | {"expand"}
        extra = [self.name(key) for key in self.data if key not in known]
        if extra:
            raise unknown_params(extra)

    def require(self, key: str) -> None:
        """Refuse the request if `key` is absent or empty."""
        if key not in self.data or self.data[key] == "":
            raise missing_param(self.name(key))

    def string(
        self, key: str, *, required: bool = False, choices: Iterable[str] | None = None
    ) -> str | None:
        """A string parameter (None when absent); `choices` restricts its values."""
        if required:
            self.require(key)
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise invalid(f"Invalid {self.name(key)}: expected a string.", self.name(key))
        if choices is not None:
            _check_choice(self.name(key), value, list(choices))
        return value

    def integer(
        self, key: str, *, required: bool = False, minimum: int | None = None
    ) -> int | None:
        """An integer parameter, at least `minimum` when given."""
        text = self.string(key, required=required)
        if text is None or text == "":
            return None
        try:
            value = int(text)
        except ValueError:
            raise invalid(
                f"Invalid integer: {text}", self.name(key), "parameter_invalid_integer"
            ) from None
        if minimum is not None and value < minimum:
            raise invalid(f"Invalid {self.name(key)}: must be at least {minimum}.", self.name(key))
        return value

    def boolean(self, key: str) -> bool | None:
        """A boolean parameter sent as `true`/`false`."""
        text = self.string(key)
        if text is None:
            return None
        if text not in ("true", "false"):
            raise invalid(f"Invalid boolean: {text}", self.name(key))
        return text == "true"

    def decimal(self, key: str, *, required: bool = False, places: int = 12) -> Decimal | None:
        """A non-negative decimal with at most `places` decimal places."""
        text = self.string(key, required=required)
        if text is None or text == "":
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise invalid(f"Invalid decimal: {text}", self.name(key)) from None
        exponent = value.as_tuple().exponent
        if not value.is_finite() or value < 0 or (isinstance(exponent, int) and -exponent > places):
            raise invalid(
                f"Invalid {self.name(key)}: must be a non-negative number with at most "
                f"{places} decimal places.",
                self.name(key),
            )
        return value

    def number(self, key: str) -> float | None:
        """A floating-point parameter (used for `percent_off`)."""
        text = self.string(key)
        if text is None or text == "":
            return None
        try:
            return float(text)
        except ValueError:
            raise invalid(f"Invalid number: {text}", self.name(key)) from None

    def sub(self, key: str, *, required: bool = False) -> Params | None:
        """A nested hash (None when absent or sent empty)."""
        if required:
            self.require(key)
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise invalid(f"Invalid {self.name(key)}: expected a hash.", self.name(key))
        return Params(value, self.name(key))

    def items(self, key: str) -> list[Params]:
        """An array of hashes (`items[0][price]=...`), in index order."""
        return [self._as_params(key, index, node) for index, node in self._array(key)]

    def strings(self, key: str) -> list[str]:
        """An array of strings (`ids[0]=a` or `ids[]=a`)."""
        values: list[str] = []
        for index, node in self._array(key):
            if not isinstance(node, str):
                raise invalid(f"Invalid {self.name(key)}[{index}]: expected a string.")
            values.append(node)
        return values

    def _array(self, key: str) -> list[tuple[str, Node]]:
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, list):
            return [(str(i), v) for i, v in enumerate(value)]
        if isinstance(value, str):
            raise invalid(f"Invalid array: {self.name(key)} must be an array.", self.name(key))
        if not all(k.isdigit() for k in value):
            raise invalid(f"Invalid array: {self.name(key)} must be an array.", self.name(key))
        return sorted(value.items(), key=lambda pair: int(pair[0]))

    def _as_params(self, key: str, index: str, node: Node) -> Params:
        name = f"{self.name(key)}[{index}]"
        if not isinstance(node, dict):
            raise invalid(f"Invalid {name}: expected a hash.", name)
        return Params(node, name)


def _check_choice(name: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        listed = ", ".join(f"`{c}`" for c in choices)
        raise invalid(f"Invalid {name}: must be one of {listed}", name)
