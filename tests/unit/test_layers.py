"""Layers point one way: the CLI uses hygge_dagster, which uses hygge_core; the engine knows nothing of either.

Read from the source (every module parsed, every import statement seen, even inside
functions), so a lazy import cannot hide a wrong-way dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The design card allows one Dagster object in the engine: the SQL pool resource, imported lazily.
DAGSTER_ALLOWED_IN_CORE = {"hygge_core/sql/resource.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def top_level(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def modules_of(package: str) -> list[Path]:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no modules found in {package}"
    return files


@pytest.mark.parametrize("path", modules_of("hygge_core"), ids=lambda p: str(p.relative_to(REPO)))
def test_engine_modules_import_neither_the_dagster_face_nor_the_cli(path: Path) -> None:
    imported = top_level(imported_modules(path))
    relative = str(path.relative_to(REPO))
    assert not imported & {"hygge_dagster", "hygge_cli"}, (
        f"{relative} imports {sorted(imported & {'hygge_dagster', 'hygge_cli'})}"
    )
    if relative not in DAGSTER_ALLOWED_IN_CORE:
        assert "dagster" not in imported, f"{relative} imports dagster; only {sorted(DAGSTER_ALLOWED_IN_CORE)} may"


@pytest.mark.parametrize("path", modules_of("hygge_dagster"), ids=lambda p: str(p.relative_to(REPO)))
def test_the_dagster_face_does_not_import_the_cli(path: Path) -> None:
    assert "hygge_cli" not in top_level(imported_modules(path))


def test_the_layering_check_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from dagster import asset\n    import hygge_dagster.run\n", encoding="utf-8")
    assert top_level(imported_modules(module)) == {"dagster", "hygge_dagster"}


def test_importing_the_engine_loads_no_dagster_module() -> None:
    """``python -X importtime -c "import hygge_core"`` names every module it imports, on stderr."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import hygge_core"], capture_output=True, text=True, check=True
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if line.startswith("import time:")}
    assert "hygge_core" in imported
    assert sorted(name for name in imported if name.split(".")[0] in {"dagster", "hygge_dagster", "hygge_cli"}) == []
