"""The JSON Schema of the file format, generated from the pydantic models."""

from __future__ import annotations

import json
from typing import Any

from autumn_sync.config.format import BillingFile


def json_schema() -> dict[str, Any]:
    """The schema as a dict (draft 2020-12). Decimals accept numbers (and numeric strings)."""
    return BillingFile.model_json_schema(mode="validation")


def json_schema_text() -> str:
    """The schema as the committed `schemas/billing.schema.json` holds it."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
