"""The engine registry and what engines declare: names and `auto` from the registry, each engine's
own policy, workers, built-in voices and executor, and no engine-name tests outside the engines."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream.engines import registry
from stream.engines.base import EngineEntry, EngineLoadError
from stream.engines.chatterbox.policy import POLICY as CHATTERBOX_POLICY
from stream.engines.piper.engine import PiperEngine
from stream.engines.piper.policy import POLICY as PIPER_POLICY
from stream.inference.pool import InferencePool
from stream.settings import Settings

STREAM = Path(__file__).resolve().parents[2] / "stream"


def test_engine_names_come_from_the_registry():
    assert registry.ENGINE_NAMES == ("auto", "chatterbox", "chatterbox-turbo", "chatterbox-multilingual", "piper")
    assert isinstance(registry.create_engine("piper", Settings()), PiperEngine)
    with pytest.raises(EngineLoadError, match="unknown engine 'nope'; choose one of auto, chatterbox"):
        registry.create_engine("nope", Settings())


def test_auto_takes_the_first_engine_that_can_run_and_says_why_it_passed_the_others(monkeypatch):
    def entry(name: str, ok: bool, why: str) -> EngineEntry:
        return EngineEntry(names=(name,), create=lambda n, s: PiperEngine(), auto=lambda settings: (ok, why))

    monkeypatch.setattr(registry, "ENGINES", (entry("gpu", False, "no CUDA device"), entry("cpu", True, "runs anywhere")))
    assert registry.choose_engine(Settings(engine="auto")) == ("cpu", "auto: no CUDA device")
    monkeypatch.setattr(registry, "ENGINES", (entry("gpu", True, "CUDA device found"),))
    assert registry.choose_engine(Settings(engine="auto")) == ("gpu", "auto: CUDA device found")
    monkeypatch.setattr(registry, "ENGINES", (entry("gpu", False, "no CUDA device"),))
    with pytest.raises(EngineLoadError, match=r"auto found no engine that can run here \(no CUDA device\)"):
        registry.choose_engine(Settings(engine="auto"))
    assert registry.choose_engine(Settings(engine="piper")) == ("piper", "requested explicitly")


def test_the_registry_names_chatterbox_without_importing_torch():
    code = "import sys, stream.engines.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=STREAM.parent).stdout
    assert out.strip() == "False"


def test_piper_declares_its_policy_workers_voices_and_executor(piper_engine):
    assert vars(PiperEngine)["policy"] is PIPER_POLICY
    assert not PIPER_POLICY.normalizer.spell_out_numbers and CHATTERBOX_POLICY.normalizer.spell_out_numbers
    assert piper_engine.default_workers == max(1, min(4, os.cpu_count() or 1))
    assert [(v.id, v.name) for v in piper_engine.builtin_voices] == [("joe", "en_US-joe-medium")]
    assert piper_engine.builtin_voices[0].to_wire()["builtin"] is True
    assert piper_engine.default_voice().id == piper_engine.builtin_voices[0].id
    executor = piper_engine.create_executor(3)
    try:
        assert isinstance(executor, InferencePool) and executor.workers == 3
    finally:
        executor.shutdown()


def _engine_name_comparisons(path: Path, names: set[str]) -> list[str]:
    """`x == "piper"`, `name in ("chatterbox", ...)` and the like in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        constants = [c for o in operands for c in ([o] if isinstance(o, ast.Constant) else getattr(o, "elts", []))]
        if any(isinstance(c, ast.Constant) and c.value in names for c in constants):
            found.append(f"{path.relative_to(STREAM.parent)}:{node.lineno}")
    return found


def test_no_engine_name_is_tested_outside_the_engines():
    """Engine policy is declared by the engine: a new engine can never inherit another's by name."""
    names = {name for entry in registry.ENGINES for name in entry.names}
    found = [hit for path in sorted(STREAM.rglob("*.py")) if "engines" not in path.relative_to(STREAM).parts
             for hit in _engine_name_comparisons(path, names)]
    assert found == []
