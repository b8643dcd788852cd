"""The import contracts in pyproject.toml (docs/architecture.md) hold, and they would catch a breach:
each planted import goes into a temporary copy of the tree, never into the real files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stream", "clients", "agent_adapters")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess:
    """`lint-imports` as a developer runs it from `root` (wide, so contract names are not wrapped)."""
    args = [str(LINT_IMPORTS), "--no-cache", "--no-logo", *(f"--contract={c}" for c in contracts)]
    return subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "400"})


def test_the_tree_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout.lower() and "broken" not in result.stdout.lower().replace(" 0 broken", "")


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "web"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(("module", "statement", "contract", "reported"), [
    ("stream/core/planted.py", "import stream.server.app", "layers",
     "stream.core.planted -> stream.server.app"),
    ("stream/engines/planted.py", "from stream.server import metrics", "layers",
     "stream.engines.planted -> stream.server.metrics"),
    ("stream/core/planted.py", "import asyncio", "core-sans-io", "stream.core.planted -> asyncio"),
    ("stream/server/planted.py", "import clients.say", "server-not-client",
     "stream.server.planted -> clients.say"),
    ("clients/planted.py", "from stream.engines import registry", "clients",
     "clients.planted -> stream.engines.registry"),
    ("agent_adapters/planted.py", "import stream.voices.library", "adapters",
     "agent_adapters.planted -> stream.voices.library"),
])
def test_a_planted_forbidden_import_breaks_its_contract(tree_copy, module, statement, contract, reported):
    (tree_copy / module).write_text(f'"""A forbidden import, planted by the test."""\n\n{statement}\n')
    result = lint_imports(tree_copy, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 broken" in result.stdout and reported in result.stdout, result.stdout


def test_a_stream_module_outside_every_layer_breaks_the_layers_contract(tree_copy):
    (tree_copy / "stream" / "helpers.py").write_text('"""Belongs to no layer."""\n')
    result = lint_imports(tree_copy, "layers")
    assert result.returncode == 1 and "stream.helpers" in result.stdout, result.stdout + result.stderr
