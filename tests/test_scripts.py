"""scripts/serve and scripts/test as a new user runs them: a line per phase with the elapsed time, pip's
own progress, every error on screen with the phase it happened in, and the apt step explained.

They run in a copy of the scripts with a stand-in `.venv` whose `python` records its arguments, so no
package is downloaded and the shared `.venv` is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/usr/bin/env bash
echo "python $*" >> "$CALLS"
if [ "$1" = --version ]; then echo "Python 3.11.7"; exit 0; fi
if [ -n "${FAIL_PIP:-}" ] && [[ "$*" == *"pip install --progress-bar on -e"* ]]; then
    echo "ERROR: Could not find a version that satisfies the requirement torch" >&2
    exit 1
fi
"""
FAKE_ACTIVATE = 'export PATH="$PWD/.venv/bin:$PATH"\n'
STUB = '#!/usr/bin/env bash\necho "{name} $*" >> "$CALLS"\n{body}\n'


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The scripts and pyproject.toml, a stand-in .venv, and stub `id`/`ldconfig` on PATH."""
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    executable(bin_dir / "python", FAKE_PYTHON)
    (bin_dir / "activate").write_text(FAKE_ACTIVATE)
    executable(bin_dir / "voicewire", STUB.format(name="voicewire", body=""))
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    executable(stubs / "id", STUB.format(name="id", body="echo 1000"))  # not root
    executable(stubs / "ldconfig", STUB.format(name="ldconfig", body=""))  # no PortAudio
    return tmp_path


def run(checkout: Path, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PATH": f"{checkout / 'stubs'}:{os.environ['PATH']}",
               "CALLS": str(checkout / "calls.log"), **env}
    environ.pop("VIRTUAL_ENV", None)
    return subprocess.run([str(checkout / "scripts" / script), *args], cwd=checkout, env=environ,
                          capture_output=True, text=True, timeout=60)


def phases(stderr: str) -> list[str]:
    return re.findall(r"^(?:serve|test) \[ *\d+s\] (.*)$", stderr, re.M)


def test_serve_says_each_phase_with_the_time_and_lets_pip_show_its_progress(checkout):
    done = run(checkout, "serve", "--port", "9999")
    assert done.returncode == 0, done.stderr
    assert phases(done.stderr) == [
        "upgrading pip",
        "installing voicewire[piper] and its dependencies into .venv (a first run downloads several GB: minutes)",
        "installed voicewire[piper]",
        "starting voicewire serve --engine piper --port 9999",
    ]
    calls = (checkout / "calls.log").read_text()
    assert "python -m pip install --progress-bar on -e .[piper]" in calls and " -q" not in calls
    assert "voicewire serve --engine piper --port 9999" in calls

    again = run(checkout, "serve")
    assert phases(again.stderr)[0].startswith("voicewire[piper] already installed in .venv")


def test_a_failed_install_keeps_pips_error_and_names_the_phase(checkout):
    done = run(checkout, "serve", FAIL_PIP="1")
    assert done.returncode == 1
    assert "ERROR: Could not find a version that satisfies the requirement torch" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"serve: failed \(exit 1\) after \d+s, while installing voicewire\[piper\] .*", last)
    assert not (checkout / ".venv" / ".voicewire-installed").exists()  # the next run tries again


def test_scripts_test_says_what_it_would_install_with_apt_and_how_when_not_root(checkout):
    done = run(checkout, "test", "-q", "tests/x.py")
    assert done.returncode == 0, done.stderr
    said = phases(done.stderr)
    not_root = next(p for p in said if p.startswith("not root"))
    assert "libportaudio2" in not_root and "sudo apt-get install" in not_root
    assert said[-1] == "running pytest -q tests/x.py"
    assert "python -m pytest -q tests/x.py" in (checkout / "calls.log").read_text()


def test_ci_runs_the_readme_test_command():
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_names_what_scripts_test_installs_with_apt_and_what_to_do_when_not_root():
    packages = re.findall(r"missing\+=\((\S+)\)", (ROOT / "scripts" / "test").read_text())
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Quickstart")
    quickstart = readme[start:readme.index("\n## ", start)]
    assert packages == ["chromium", "libportaudio2", "postgresql"]
    assert all(f"`{package}`" in quickstart for package in packages)
    assert f"sudo apt-get install {' '.join(packages)}" in quickstart and "Not root?" in quickstart
