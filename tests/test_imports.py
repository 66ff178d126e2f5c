"""The package's modules import without cycles: the graph of their module-level imports has
none, every module imports alone in a fresh interpreter, and only the gateway imports the
`stripe` package (the emulator imports nothing of the core)."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import autumn_sync

PACKAGE = Path(autumn_sync.__file__).parent
SOURCE = PACKAGE.parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()
SCRIPTS = "autumn_sync.database.migrations"  # Alembic's scripts: loaded by Alembic, by path


def _imports(path: Path) -> set[str]:
    """The modules `path` imports when it is loaded: module-level imports, not those under
    `if TYPE_CHECKING:` nor inside functions; `from package import submodule` is an import
    of the submodule."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("autumn_sync"))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("autumn_sync"):
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    found.add(submodule if submodule in MODULES else str(node.module))
            elif isinstance(node, ast.If | ast.Try | ast.With):
                visit(node.body)
                visit(getattr(node, "orelse", []))

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


GRAPH = {module: _imports(path) for module, path in MODULES.items()}


def test_the_module_graph_has_no_cycle() -> None:
    assert len(GRAPH) > 100
    try:
        TopologicalSorter(GRAPH).prepare()
    except CycleError as cycle:
        pytest.fail(f"import cycle: {' → '.join(cycle.args[1])}")


def test_only_the_gateway_imports_stripe_and_the_emulator_nothing_of_the_core() -> None:
    """Among the core's modules (the emulator's `client()` hands tests a `stripe` client)."""
    importers = sorted(
        module
        for module, path in MODULES.items()
        if not module.startswith("autumn_sync.emulator")
        and any(
            isinstance(node, ast.Import) and any(a.name == "stripe" for a in node.names)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    )
    assert importers == ["autumn_sync.stripe.gateway"]
    for module, imported in GRAPH.items():
        if module.startswith("autumn_sync.emulator"):
            assert all(name.startswith("autumn_sync.emulator") for name in imported), module


def _import_alone(module: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120
    )
    return module, done.stderr.strip().splitlines()[-1] if done.returncode else ""


@pytest.mark.slow
def test_every_module_imports_alone() -> None:
    """Each module first in a fresh interpreter: no order of imports can meet a half-made
    module."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        modules = sorted(m for m in MODULES if not m.startswith(SCRIPTS))
        failures = {m: error for m, error in pool.map(_import_alone, modules) if error}
    assert failures == {}
