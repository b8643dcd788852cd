"""`storage`: the tests of this folder that take it run once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from stream.storage import Storage, open_storage


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, tmp_path) -> str:
    """A URL of an empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'voicewire.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def open_url(tmp_path) -> Iterator[Callable[[str], Storage]]:
    """Open storage on a URL (as many times as a test needs: each is another process's view); all
    are closed at the end."""
    opened: list[Storage] = []

    def open_(url: str) -> Storage:
        opened.append(open_storage(url, tmp_path / "unused.sqlite3"))
        return opened[-1]

    yield open_
    for storage in opened:
        storage.close()


@pytest.fixture
def storage(storage_url, open_url) -> Storage:
    return open_url(storage_url)
