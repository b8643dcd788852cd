"""Every example in README.md and docs/ runs as written, against a live server.

Each ```python, ```bash and ```sh block is one example. It runs in a fresh folder, in its own
interpreter or shell, against a real server with the Piper engine; the fake LLM server
(tests/fake_llm.py) answers for the LLM an example calls. The only edit is the address: the examples
say 127.0.0.1:8765 (voicewire) and 127.0.0.1:11434 (an Ollama-style OpenAI-compatible server), and
the test's servers listen on free ports; the Anthropic SDK finds the fake through
`ANTHROPIC_BASE_URL`. Deprecations from pipecat and LiveKit fail an example (tests/deprecations.py).

A block that cannot run here says why in the line above it, `<!-- doc-test: skip REASON -->`, and is
reported as a skip with that reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(?:<!-- doc-test: (?P<mark>[^>]*?) -->\n)?^```(?P<lang>python|bash|sh)\n(?P<code>.*?)^```",
                   re.M | re.S)
VOICEWIRE_ADDRESS = "127.0.0.1:8765"
LLM_ADDRESS = "127.0.0.1:11434"
# a plain interpreter with the deprecation check around the example, run as __main__
RUN_EXAMPLE = """import runpy, sys, warnings
sys.path.insert(0, sys.argv[2])
from tests import deprecations
warnings.simplefilter("always", DeprecationWarning)
with deprecations.raised(example=sys.argv[1]):
    runpy.run_path(sys.argv[1], run_name="__main__")
"""


@dataclass(frozen=True)
class Example:
    doc: Path
    line: int
    lang: str
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def examples() -> list[Example]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            mark = match.group("mark")
            if mark is not None and not mark.startswith("skip "):
                raise ValueError(f"{doc}: unknown doc-test mark {mark!r} (only 'skip REASON')")
            line = text.count("\n", 0, match.start("lang")) + 1
            found.append(Example(doc, line, match.group("lang"), match.group("code"),
                                 mark[len("skip "):] if mark else None))
    return found


EXAMPLES = examples()


def test_the_docs_have_examples_and_every_skip_says_why():
    assert len(EXAMPLES) >= 10
    assert all(e.skip is None or len(e.skip) > 10 for e in EXAMPLES)


@pytest.fixture
def fake_llm():
    llm = FakeLLM(reply="Saturday: a walk in the park, then lunch by the river.").start(free_port())
    yield llm
    llm.stop()


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_runs_as_written(example, server, fake_llm, tmp_path):
    if example.skip:
        pytest.skip(example.skip)
    code = (example.code.replace(VOICEWIRE_ADDRESS, f"127.0.0.1:{server.port}")
            .replace(LLM_ADDRESS, f"127.0.0.1:{fake_llm.port}"))
    env = {**os.environ,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "VOICEWIRE_URL": server.ws_url,  # what `voicewire say` and `chat` use without --url
           "VOICEWIRE_DATA_DIR": str(tmp_path / "data"),  # `voicewire keys` never touches ~/.voicewire
           "ANTHROPIC_BASE_URL": fake_llm.anthropic_base_url, "ANTHROPIC_API_KEY": "doc-test"}
    if example.lang == "python":
        script = tmp_path / "example.py"
        script.write_text(code)
        command = [sys.executable, "-c", RUN_EXAMPLE, str(script), str(ROOT)]
    else:
        command = ["bash", "-euo", "pipefail", "-c", code]
    # its own process group, so nothing an example starts in the background outlives it
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, f"{example.id} failed:\n{out}\n{err}"


def test_the_seed_promise_follows_the_engine_capabilities(piper_engine):
    """A seed gives the same audio only where `ready.capabilities.deterministic_seed` says so: the docs
    promise it under that name, and Piper, which declares it false, is said to ignore the seed."""
    seed_row = next(line for line in (ROOT / "docs" / "http-api.md").read_text().splitlines()
                    if line.startswith("| `seed` |"))
    assert "`ready.capabilities.deterministic_seed` is true" in seed_row and "Piper ignores it" in seed_row
    assert "capabilities.deterministic_seed" in (ROOT / "docs" / "protocol.md").read_text()
    capabilities = piper_engine.capabilities
    assert capabilities.deterministic_seed is False and "seed" not in capabilities.generation_fields
