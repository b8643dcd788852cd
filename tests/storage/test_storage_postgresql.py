"""The PostgreSQL backend on a real server: migrations from replicas starting at once, errors at
start, and an outage (the server stopped, then restarted) seen by repositories and the change feed."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from stream.storage import Change, DatabaseUrlError, StorageUnavailable, Topic, open_storage
from stream.storage.postgresql import SCHEMA
from stream.storage.postgresql.database import CONNECT_TIMEOUT_S
from tests.postgres_server import wait_until


def test_replicas_starting_at_once_migrate_once(postgres_url, open_url):
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def replica() -> None:
        start.wait()
        try:
            open_url(postgres_url)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(postgres_url) as conn:
        applied = conn.execute("SELECT component, version FROM schema_migrations ORDER BY component").fetchall()
    assert applied == sorted((component, 1) for component in SCHEMA)


def test_a_later_migration_applies_on_the_next_start(postgres_url, monkeypatch):
    open_storage(postgres_url, "/unused").close()
    extended = {**SCHEMA, "voices": (*SCHEMA["voices"], "ALTER TABLE voices ADD COLUMN language text")}
    monkeypatch.setattr("stream.storage.postgresql.SCHEMA", extended)
    storage = open_storage(postgres_url, "/unused")
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations WHERE component = 'voices'").fetchone() == (2,)
        conn.execute("SELECT language FROM voices")
    storage.close()


@pytest.mark.parametrize("url, rule", [
    ("postgresql://app:hunter2@127.0.0.1:1/voicewire", "Connection refused"),        # nothing listens on port 1
    ("postgresql://app:hunter2@127.0.0.1:99999/voicewire", 'invalid port number: "99999"'),
    ("postgres://app:hunter2@/voicewire?nonsense=1", "is malformed"),
])
def test_a_database_that_cannot_be_used_stops_the_start_naming_it_without_the_password(url, rule):
    with pytest.raises((StorageUnavailable, DatabaseUrlError)) as err:
        open_storage(url, "/unused")
    message = str(err.value)
    assert message.startswith("database_url: ") and rule in message and "://***@" in message, message
    assert "hunter2" not in message and "\n" not in message


def test_a_missing_database_is_named(postgres_server):
    with pytest.raises(StorageUnavailable, match='database "no_such_db" does not exist') as err:
        open_storage(postgres_server.url("no_such_db", password="hunter2"), "/unused")
    assert "hunter2" not in str(err.value)


def answers(storage) -> bool:
    try:
        return storage.keys.get("key_a") is not None
    except StorageUnavailable:
        return False


def test_a_user_who_may_not_create_the_schema_is_told_so(postgres_server, postgres_url):
    role = "reader_" + postgres_url.rsplit("_", 1)[1]      # roles are per server: one of this test's own
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = postgres_url.replace("postgres@", f"{role}:hunter2@")
    with pytest.raises(StorageUnavailable, match="permission denied for schema public") as err:
        open_storage(url, "/unused")
    assert str(err.value).startswith("database_url: cannot use postgresql://***@") and "hunter2" not in str(err.value)


def test_an_outage_fails_fast_with_storage_unavailable_and_everything_recovers(postgres_server, postgres_url,
                                                                                open_url):
    storage, other = open_url(postgres_url), open_url(postgres_url)
    storage.keys.create("key_a", None, "digest-a", "vw_aaaaa", 100)
    seen: list[Change] = []
    storage.changes.subscribe(seen.append)

    postgres_server.stop()
    calls = {
        "find_active": lambda: storage.keys.find_active("digest-a"),
        "charge": lambda: storage.keys.charge("key_a", 1),
        "leases.acquire": lambda: storage.leases.acquire("key_a", "s1", "r1", limit=2),
    }
    waited = []
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="is unavailable") as err:
            call()
        waited.append(time.monotonic() - started)
        assert "postgresql://***@127.0.0.1" in str(err.value), name
    # The first call waits out the pool's timeout (not a hang); the next ones, right after, do not wait again.
    assert waited[0] < 10 and all(w < CONNECT_TIMEOUT_S / 2 for w in waited[1:]), waited

    postgres_server.start()
    wait_until(lambda: answers(storage), 10, "service after the database returned")
    wait_until(lambda: len(seen) >= len(Topic), 10, "the feed's drop-everything after reconnecting")
    assert seen == [Change(topic) for topic in Topic]           # caches drop what they may have missed
    assert storage.keys.charge("key_a", 1) == 99                # nothing was charged during the outage
    other.keys.revoke("key_a")                                  # and changes flow again
    wait_until(lambda: Change(Topic.KEYS, "key_a") in seen, 1.0, "a change after the restart")
