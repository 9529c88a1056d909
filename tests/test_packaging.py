"""What the service ships: the installed packages hold no benchmark or load generator, and no shipped module
imports one or a dev-only library."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
SHIPPED = PYPROJECT["tool"]["setuptools"]["packages"]
DEV_ONLY = ("benchmarks", "matplotlib", "psutil", "pytest", "playwright", "tests", "sklearn")


def _modules() -> list[Path]:
    return sorted(p for package in SHIPPED for p in (ROOT / package.replace(".", "/")).glob("*.py"))


def test_no_benchmark_package_is_shipped() -> None:
    assert not [p for p in SHIPPED if p.split(".")[0] in ("benchmarks", "tests")]
    assert not [p for p in _modules() if p.stem.startswith("bench") or p.stem == "scale"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_modules_import_no_dev_only_package(path: Path) -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & set(DEV_ONLY)
