from sqlalchemy import Engine

from autumn_sync.pipeline import apply_plan, load_desired, make_plan
from tests.conftest import EXAMPLES


def test_example_converges(engine: Engine) -> None:
    desired = load_desired(EXAMPLES / "billing.yaml")
    first = make_plan(engine, desired)
    assert first.summary().add == 17  # 14 catalog records, 2 customers, 1 balance
    apply_plan(engine, first)
    assert make_plan(engine, desired).empty
