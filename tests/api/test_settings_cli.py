"""Secret key handling and the ``echosclero users`` command."""

import io
import os
import stat

import pytest

from echosclero.api.settings import SettingsError, load_secret_key
from echosclero.cli import main


def test_secret_key_generated_once_with_0600(tmp_path, monkeypatch):
    monkeypatch.delenv("ECHOSCLERO_SECRET_KEY", raising=False)
    k1 = load_secret_key(tmp_path)
    assert len(k1) >= 32 and stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert load_secret_key(tmp_path) == k1
    os.chmod(tmp_path / "secret_key", 0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        load_secret_key(tmp_path)


def test_short_env_key_refused(monkeypatch):
    monkeypatch.setenv("ECHOSCLERO_SECRET_KEY", "short")
    with pytest.raises(SettingsError, match="shorter than 32"):
        load_secret_key()


def test_users_create_reads_password_from_stdin(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["users", "create", "alice", "--role", "physician", "--database-url", url]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["users", "create", "alice", "--role", "physician", "--database-url", url]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["users", "create", "bob", "--role", "surgeon", "--database-url", url]) == 2
    assert main(["users", "list", "--database-url", url]) == 0
    out, err = capsys.readouterr()
    assert "alice\tphysician" in out and "already exists" in err and "role" in err
