"""The voicewire replica class for Chatterbox on the test cluster, shrunk in its own process.

The session's random checkpoint (tests/chatterbox_checkpoint.py) has a reduced T3, which
`from_local` builds only while `reduced_t3()` is active, and a replica builds its engine itself
(`build_runtime`, in the replica's process): so this subclass shrinks the package's config in the
replica before the real constructor runs. The small test tuning (short chunks, 2 flow steps, a
24-token budget) keeps a turn on two CPU cores to seconds."""

from __future__ import annotations

_held: list = []


def shrink() -> None:
    """Reduce T3 for the life of this process (it only ever loads the test checkpoint) and make
    the test tuning what ChatterboxEngine builds when given none."""
    from stream.engines.chatterbox import engine
    from tests.chatterbox_checkpoint import TEST_TUNING, reduced_t3

    _held.append(reduced_t3())   # held: a collected generator context would run its `finally` and restore
    _held[-1].__enter__()
    base = engine.StreamTuning

    class TestTuning(base):
        def __init__(self, **overrides) -> None:
            super().__init__(**(TEST_TUNING | overrides))

    engine.StreamTuning = TestTuning


def replica_class():
    """stream.server.ray_serve's replica class, shrinking before its constructor runs."""
    from stream.server.ray_serve import _replica_class

    base = _replica_class()

    class ShrunkReplica(base):
        async def __init__(self, settings) -> None:
            shrink()
            await base.__init__(self, settings)

    return ShrunkReplica
