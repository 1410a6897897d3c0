"""Settings: sources and precedence (arguments > environment > config file > defaults)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from permatoken._exceptions import ConfigError
from permatoken.settings import DEFAULT_GRAPH_URL, DEFAULT_GRAPH_VERSION, Settings, load_settings


def test_defaults(home: Path) -> None:
    s = load_settings()
    assert s.home == home
    assert s.graph_url == DEFAULT_GRAPH_URL and s.graph_version == DEFAULT_GRAPH_VERSION
    assert s.resolved_database_url == f"sqlite:///{home / 'permatoken.db'}"
    assert s.resolved_key_file == home / "key"
    assert s.key is None


def test_precedence_arguments_environment_config_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home.mkdir()
    (home / "config.toml").write_text(
        '[permatoken]\ngraph-url = "http://from-file:1"\n'
        'graph_version = "v20.0"\nlog_level = "DEBUG"\n'
    )
    s = load_settings()
    assert (s.graph_url, s.graph_version, s.log_level) == ("http://from-file:1", "v20.0", "DEBUG")
    monkeypatch.setenv("PERMATOKEN_GRAPH_URL", "http://from-env:2/")
    s = load_settings()
    assert s.graph_url == "http://from-env:2"  # trailing slash removed
    assert s.graph_version == "v20.0"
    s = load_settings(graph_url="http://from-arg:3", graph_version=None)
    assert s.graph_url == "http://from-arg:3"
    assert s.graph_version == "v20.0"  # None arguments do not override


def test_config_file_from_permatoken_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('graph_version = "v21.0"\n')
    monkeypatch.setenv("PERMATOKEN_CONFIG", str(cfg))
    assert load_settings().graph_version == "v21.0"


def test_broken_config_file_is_a_config_error(home: Path) -> None:
    home.mkdir()
    (home / "config.toml").write_text("this is = = not toml")
    with pytest.raises(ConfigError, match=r"config\.toml") as info:
        load_settings()
    assert info.value.hint


@pytest.mark.parametrize(
    ("env", "value", "setting"),
    [
        ("PERMATOKEN_GRAPH_VERSION", "25", "graph_version"),
        ("PERMATOKEN_GRAPH_URL", "graph.facebook.com", "graph_url"),
    ],
)
def test_invalid_setting_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, setting: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.setting == setting  # type: ignore[attr-defined]
    assert env in info.value.message


def test_unknown_setting_in_config_file_is_refused(home: Path) -> None:
    home.mkdir()
    (home / "config.toml").write_text('databse_url = "typo"\n')
    with pytest.raises(ConfigError, match="databse_url"):
        load_settings()


def test_key_from_environment_is_a_masked_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("PERMATOKEN_KEY", raw)
    s = load_settings()
    assert s.key is not None and s.key.reveal() == raw
    assert raw not in repr(s) and raw not in str(s)
    monkeypatch.setenv("PERMATOKEN_KEY", "  ")
    assert load_settings().key is None


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(Exception, match="frozen"):
        s.graph_url = "http://x"  # type: ignore[misc]
    assert isinstance(s, Settings)


def test_invalid_setting_names_where_it_came_from(home: Path) -> None:
    """An argument is blamed on its option, a config-file value on the file."""
    with pytest.raises(ConfigError, match=r"graph_version \(--graph-version\)"):
        load_settings(graph_version="25")
    home.mkdir()
    (home / "config.toml").write_text('graph_version = "25"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(home / "config.toml") in info.value.message


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("mysql://user:sekrit@host/db", "unsupported database 'mysql'"),
        ("foo://", "unsupported database 'foo'"),
        ("permatoken.db", "not a database URL"),
    ],
)
def test_database_url_is_checked_when_settings_load(url: str, text: str) -> None:
    """A URL of another kind is refused at once, without echoing it (it may hold a password)."""
    with pytest.raises(ConfigError, match=text) as info:
        load_settings(database_url=url)
    assert "--database-url" in info.value.message and "sekrit" not in info.value.message
    assert info.value.hint and "postgresql+psycopg://" in info.value.hint
    for good in ("sqlite:///x.db", "postgresql+psycopg://u@h/db", "postgres://u@h/db"):
        assert load_settings(database_url=good).database_url == good
