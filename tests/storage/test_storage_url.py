"""`--database-url`: what is accepted, what is refused (naming the field and the rule), and that a
password never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.storage import DatabaseUrlError, open_storage, parse_database_url


@pytest.mark.parametrize("url, path", [
    ("sqlite:///srv/voicewire/db.sqlite3", "/srv/voicewire/db.sqlite3"),
    ("sqlite:////srv/voicewire/db.sqlite3", "/srv/voicewire/db.sqlite3"),   # SQLAlchemy's absolute form
    ("SQLite:///srv/my%20data/db", "/srv/my data/db"),
    ("  sqlite:///srv/db  ", "/srv/db"),
])
def test_sqlite_urls_name_an_absolute_file(url, path):
    parsed = parse_database_url(url)
    assert (parsed.scheme, parsed.path, parsed.redacted) == ("sqlite", Path(path), f"sqlite://{path}")


@pytest.mark.parametrize("url, rule", [
    ("voicewire.sqlite3", "is not a URL"),
    ("/var/lib/voicewire.sqlite3", "is not a URL"),
    ("sqlite://relative/db.sqlite3", "has no host"),
    ("sqlite:///", "names no file"),
    ("sqlite:///srv/data/", "names a directory"),
    ("sqlite:///srv/db?mode=ro", "no query or fragment"),
    ("mysql://root:hunter2@db/voicewire", "unsupported scheme 'mysql'"),
    ("sqlite://app:hunter2@host/db", "has no host"),
    ("postgresql://app:hunter2@db/voicewire?no_such_option=1", "is malformed"),
    ("postgres://app:hun/ter2@db/voicewire?no_such_option=1", "is malformed"),
])
def test_unusable_urls_are_refused_naming_the_field_and_rule_without_the_password(url, rule, tmp_path):
    with pytest.raises(DatabaseUrlError) as err:
        open_storage(url, tmp_path / "unused.sqlite3")
    message = str(err.value)
    assert message.startswith("database_url: ") and rule in message
    assert "hunter2" not in message and "ter2" not in message
    if "@" in url:
        assert "***@" in message


@pytest.mark.parametrize("url, dsn", [
    ("postgresql://app:hunter2@db.internal:5432/voicewire", "postgresql://app:hunter2@db.internal:5432/voicewire"),
    ("postgres://app:hunter2@db/voicewire", "postgresql://app:hunter2@db/voicewire"),
    ("PostgreSQL+psycopg://app:hun/ter2@@db/voicewire?sslmode=require",
     "postgresql://app:hun/ter2@@db/voicewire?sslmode=require"),
])
def test_postgresql_urls_keep_their_dsn_for_the_driver_and_show_no_password(url, dsn):
    parsed = parse_database_url(url)
    assert (parsed.scheme, parsed.dsn) == ("postgresql", dsn)
    assert parsed.redacted.endswith("://***@" + dsn.rsplit("@", 1)[1])
    assert "hunter2" not in repr(parsed) and "ter2" not in repr(parsed)


def test_unset_or_empty_means_the_file_in_the_data_dir(tmp_path):
    for url in (None, "", "  "):
        storage = open_storage(url, tmp_path / "voicewire.sqlite3")
        assert storage.url.path == tmp_path / "voicewire.sqlite3"
