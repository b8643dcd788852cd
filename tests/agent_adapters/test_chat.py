"""`voicewire chat` as a user runs it: a real process, a real server, typed lines on stdin."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from tests.clients.test_playback import null_alsa_home
from tests.conftest import free_port
from tests.fake_llm import FakeLLM


class ChatProcess:
    """`voicewire chat` in a subprocess; lines of its stdout are read on a thread."""

    def __init__(self, *args: str, env: dict | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "stream.cli", "chat", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def type(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"no line starting {prefix!r}; saw:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def close(self) -> int:
        self.proc.stdin.close()
        code = self.proc.wait(timeout=30)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code


@pytest.fixture
def null_audio_env(tmp_path):
    """Environment for a child process whose ALSA default output is a null device."""
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        pytest.skip(f"PortAudio is not installed (Debian: libportaudio2): {exc}")
    return {"HOME": str(null_alsa_home(tmp_path / "home"))}


def test_scripted_chat_plays_each_reply_and_shows_ttfa(server, null_audio_env):
    chat = ChatProcess("--url", server.ws_url, "--tokens-per-second", "60", "--exaggeration", "0.8",
                       env=null_audio_env)
    assert "offline scripted responder" in chat.expect("voicewire chat")
    chat.type("Hello there")
    assert chat.expect("bot: ").startswith("bot: Sure!")  # a phrase is shown as its audio starts
    ttfa = chat.expect("[TTFA ")
    assert 0 < float(ttfa.split()[1]) < 3000
    played = chat.expect("[played ")
    seconds = float(played.split()[1])
    assert seconds > 2.0  # the whole reply went through the PortAudio stream
    chat.type("/voice joe")
    chat.expect("[voice: joe")
    chat.type("/exaggeration 1.4")
    chat.expect("[exaggeration: 1.4]")
    chat.type("And again")
    chat.expect("[TTFA ")
    chat.expect("[played ")
    assert chat.close() == 0


def test_typing_while_it_speaks_interrupts(server, null_audio_env):
    chat = ChatProcess("--url", server.ws_url, "--tokens-per-second", "6", "--prebuffer-ms", "80",
                       env=null_audio_env)
    chat.type("Say something")
    chat.expect("[TTFA ")
    time.sleep(1.0)  # "Sure!" is spoken at once; let a few more of the reply's words stream before barging in
    chat.type("Wait, stop")
    interrupted = chat.expect("[interrupted after ")
    heard, total = int(interrupted.split()[2]), int(interrupted.split()[4])
    assert heard < total
    chat.expect("[TTFA ")  # the typed line started the next turn right away
    chat.type("/quit")  # interrupts that one too, then quits
    chat.expect("[interrupted after ")
    assert chat.proc.wait(timeout=30) == 0


def test_openai_compatible_llm_gets_the_conversation(server):
    llm = FakeLLM(reply="The answer is forty two. Anything else?", tokens_per_second=80).start(free_port())
    try:
        chat = ChatProcess("--url", server.ws_url, "--llm-url", llm.openai_base_url, "--llm-model", "tiny",
                           "--no-play")
        chat.type("What is the answer?")
        chat.expect("[TTFA ")
        chat.type("Thanks")  # may arrive while the first reply still streams: then it interrupts it
        chat.expect("[TTFA ")
        assert chat.close() == 0
    finally:
        llm.stop()
    first, second = (r.body for r in llm.requests)
    assert first["model"] == "tiny" and first["stream"] is True
    assert first["messages"][-1] == {"role": "user", "content": "What is the answer?"}
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert second["messages"][2]["content"] in "The answer is forty two. Anything else?"


def test_unreachable_server_is_reported(tmp_path):
    done = subprocess.run([sys.executable, "-m", "stream.cli", "chat", "--url",
                           f"ws://127.0.0.1:{free_port()}/v1/stream", "--no-play"],
                          input="", capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "chat:" in done.stderr
