"""Deprecations from pipecat and LiveKit are errors in the adapter tests and the doc examples: what a
framework deprecates, its next major release removes, and the adapters must have moved by then.

A `filterwarnings("error", ...)` is not enough: pipecat's `warn_deprecated` warns inside its own
`catch_warnings()` under the `always` filter, past any filter a test sets. Every shown warning goes
through `warnings.showwarning` (pytest records them there too), so that is where they are raised,
at the line that made the deprecated call. A deprecated call is reported at its caller
(`stacklevel`), so the frameworks' own files count, and so does the code that calls them: the
adapters, their tests, and a doc example. Any deprecation reported there counts (an LLM SDK's
deprecated model name in an example, too).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

FRAMEWORK_FILES = re.compile(r"[/\\](pipecat|livekit|agent_adapters)[/\\]|[/\\]test_adapters_\w+\.py$")
IGNORED = re.compile(
    # Python's notice that the stdlib module goes away in 3.13 (audioop-lts replaces it there), raised
    # at pipecat's `import audioop`: no pipecat or LiveKit API is involved
    r"'audioop' is deprecated"
)


def from_frameworks(message: Warning | str, category: type[Warning], filename: str, example: str | None) -> bool:
    """Whether a warning is a deprecation raised by, or at a call into, pipecat or LiveKit."""
    return (issubclass(category, DeprecationWarning) and not IGNORED.search(str(message))
            and (bool(FRAMEWORK_FILES.search(filename)) or filename == example))


@contextmanager
def raised(example: str | None = None) -> Iterator[None]:
    """Within: a framework deprecation raises at its call site; other warnings go on as before.
    `example` is the file of a doc example being run, whose calls count as framework calls."""
    previous = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        if from_frameworks(message, category, filename, example):
            raise message if isinstance(message, Warning) else category(message)
        previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
