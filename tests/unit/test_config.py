"""Settings: validated hard, one clear line on failure, every one documented."""

import re
from pathlib import Path

import pytest

from app.config import Settings, load_settings
from app.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * 40


def test_missing_secret_key_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RADIOSILENCE_SECRET_KEY", raising=False)
    monkeypatch.chdir(ROOT / "tests")  # no .env here
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "RADIOSILENCE_SECRET_KEY is missing" in info.value.message
    assert "\n" not in info.value.message


@pytest.mark.parametrize("key", ["change-me", "short"])
def test_placeholder_or_short_secret_key_is_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="RADIOSILENCE_SECRET_KEY"):
        load_settings(secret_key=key, _env_file=None)


def test_unknown_database_driver_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"RADIOSILENCE_DATABASE_URL .*sqlite\+aiosqlite"):
        load_settings(secret_key=GOOD_KEY, database_url="mysql://x/y", _env_file=None)


def test_defaults_are_sqlite_on_loopback() -> None:
    s = load_settings(secret_key=GOOD_KEY, _env_file=None)
    assert s.database_url == "sqlite+aiosqlite:///./var/radiosilence.db"
    assert (s.host, s.port) == ("127.0.0.1", 8000)


def test_env_example_and_readme_list_every_setting() -> None:
    names = {f"RADIOSILENCE_{n.upper()}" for n in Settings.model_fields}
    example = set(
        re.findall(
            r"^#?\s*(RADIOSILENCE_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE
        )
    )
    assert example == names
    readme = (ROOT / "README.md").read_text()
    assert [n for n in sorted(names) if n not in readme] == []
