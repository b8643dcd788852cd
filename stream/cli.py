"""The `voicewire` console command: `serve` runs the server, `keys` manages API keys and credits,
`say`, `chat` and `voices` talk to a running server.

The server's commands are registered by `stream.server.cli`. The client commands live in `clients/`
and reach the server only over the wire, so they are named here by module and imported (importlib)
only when chosen: no `stream` module imports the client (the import contracts, see
docs/architecture.md), and `voicewire serve` never loads client code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from stream.server.cli import add_server_commands


@dataclass(frozen=True)
class ClientCommand:
    """A command whose parser `module.register(subparsers)` adds; `help` lists it without the import."""

    module: str
    register: str
    help: str


CLIENT_COMMANDS: dict[str, ClientCommand] = {
    "say": ClientCommand("clients.say", "add_say_parser", "speak text through a running voicewire server"),
    "chat": ClientCommand("agent_adapters.chat", "add_chat_parser",
                          "terminal voice chat: an LLM's replies spoken through the speakers"),
    "voices": ClientCommand("clients.voices_command", "add_voices_parser",
                            "list the voices of a running voicewire server"),
}


def _version() -> str:
    """The installed distribution's version (a source tree that was never installed has none)."""
    try:
        return version("voicewire")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; of the client commands only `command`'s module is imported, the
    others are stubs with their name and help (enough for `voicewire --help`)."""
    parser = argparse.ArgumentParser(prog="voicewire", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"voicewire {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_server_commands(sub)
    for name, spec in CLIENT_COMMANDS.items():
        if name == command:
            getattr(importlib.import_module(spec.module), spec.register)(sub)
        else:
            sub.add_parser(name, help=spec.help, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # A first pass over the stubs finds the command (argparse, so top-level options of any kind are
    # skipped correctly); the second parses its arguments with its real parser.
    chosen, _ = build_parser().parse_known_args(argv)
    args = build_parser(chosen.command).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
