"""The hub's configuration file: every key read, one clear error (exit 2, file and key named) per kind of
mistake, and the command line's flags over the file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from commands.cli import main
from core.tomlconfig import ConfigError
from hub.config import HubConfig, load_hub_config

FULL = """
[server]
host = "0.0.0.0"
port = 8800
public_url = "https://pj.example.gov.cn"

[database]
url = "sqlite:////var/lib/kiosk-hub/hub.db"

[deadline]
working_days = 3
calendar_file = "calendar.toml"

[upstream]
profile = "shandong"
url = "https://province.example/api"
app = "APPMARK"
key_file = "upstream.key"

[[alerts]]
kind = "dingtalk"
url = "https://oapi.dingtalk.example/robot/send?access_token=x"
events = ["bad_rating", "overdue"]
secret_file = "dingtalk.secret"

[[alerts]]
kind = "webhook"
url = "http://127.0.0.1:9000/hook"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_every_key_is_read(tmp_path):
    (tmp_path / "upstream.key").write_text("00" * 32 + "\n")
    config = load_hub_config(write(tmp_path, FULL))
    assert (config.server.host, config.server.port) == ("0.0.0.0", 8800)
    assert config.server.public_url == "https://pj.example.gov.cn"
    assert config.database_url == "sqlite:////var/lib/kiosk-hub/hub.db"
    assert config.deadline.working_days == 3 and config.deadline.calendar_file == tmp_path / "calendar.toml"
    assert config.upstream and config.upstream.profile == "shandong"
    assert config.upstream.key_file == tmp_path / "upstream.key"
    assert [a.kind for a in config.alerts] == ["dingtalk", "webhook"]
    assert config.alerts[0].events == ("bad_rating", "overdue")
    assert config.alerts[1].events == ("bad_rating", "due_soon", "overdue", "device_offline")


def test_without_a_file_everything_has_its_default(monkeypatch):
    monkeypatch.delenv("KIOSK_HUB_CONFIG", raising=False)
    monkeypatch.setattr("hub.config.DEFAULT_PATH", Path("/nonexistent/hub.toml"))
    assert load_hub_config(None) == HubConfig()


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[hubb]\n", "[hubb]", "unknown section"),
        ("[server]\nprot = 1\n", "[server] prot", "unknown key"),
        ("[server]\nport = 0\n", "[server] port", "expected 1 to 65535"),
        ('[server]\nport = "8700"\n', "[server] port", "expected an integer"),
        ('[server]\npublic_url = "pj.example"\n', "[server] public_url", "http"),
        ("[deadline]\nworking_days = 0\n", "[deadline] working_days", "expected 1 to 60"),
        (
            '[upstream]\nprofile = "guangdong"\nurl = "https://x"\napp = "A"\nkey_file = "k"\n',
            "profile",
            "one of",
        ),
        ('[upstream]\nprofile = "json-v1"\nurl = "ftp://x"\napp = "A"\nkey_file = "k"\n', "url", "http"),
        ('[upstream]\nprofile = "json-v1"\nurl = "https://x"\napp = "A"\n', "key_file", "required"),
        ('[[alerts]]\nkind = "sms"\nurl = "https://x"\n', "[alerts.0] kind", "one of"),
        ('[[alerts]]\nkind = "wecom"\nurl = "https://x"\nevents = ["bad"]\n', "events", "some of"),
    ],
)
def test_each_mistake_is_one_error_naming_the_key(tmp_path, text, key, problem):
    with pytest.raises(ConfigError) as e:
        load_hub_config(write(tmp_path, text))
    assert key in str(e.value) and problem in str(e.value) and str(tmp_path) in str(e.value)


def test_a_bad_file_is_exit_2_with_one_line(tmp_path, capsys):
    path = write(tmp_path, "[server]\nport = -1\n")
    assert main(["hub", "device", "add", "XHA-W01", "--config", str(path), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "[server] port" in err and "Traceback" not in err
    assert main(["hub", "key", "export", "--config", str(tmp_path / "missing.toml")]) == 2


def test_the_files_database_is_used_unless_a_flag_names_another(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KIOSK_HUB_DB", raising=False)
    db = tmp_path / "from-file.db"
    path = write(tmp_path, f'[database]\nurl = "sqlite:///{db}"\n')
    assert main(["hub", "--config", str(path), "--key-file", str(tmp_path / "k"), "key", "export"]) == 0
    assert db.exists()
    other = tmp_path / "flag"
    assert main(["hub", "device", "add", "XHA-W01", "--config", str(path), "--data", str(other)]) == 0
    assert (other / "hub.db").exists()
