"""The technician's rough edges: the hub's ratings export on the command line, messages that name what
they mean (an unknown section, the file by its full path, counts in good English)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests
from test_hub_support import ADMIN_TOKEN, ROOT, register, thread_hub, upload_case

from core.config import ConfigError, load_config


def kiosk(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_ratings_export_on_the_command_line_is_the_apis(tmp_path):
    data = tmp_path / "hub"
    with thread_hub(data) as hub:
        secret = register(hub.store)
        upload_case(hub.url, secret, tmp_path / "k.db", "370211202611280012", rated=True)
        api = requests.get(
            f"{hub.url}/api/v1/ratings", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5
        )
        api_csv = requests.get(
            f"{hub.url}/api/v1/ratings",
            params={"format": "csv"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=5,
        )
    result = kiosk("hub", "ratings", "export", "--data", str(data))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == api.json() and api.json()["count"] == 1
    assert result.stderr.strip().splitlines()[-1] == "kiosk hub: 1 ratings"
    result = kiosk("hub", "ratings", "export", "--data", str(data), "--format", "csv", "--from", "2000-01-01")
    assert result.stdout == api_csv.text.replace("\r\n", "\n")  # (text=True reads CRLF as LF)
    result = kiosk("hub", "ratings", "export", "--data", str(data), "--to", "yesterday")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(
        "kiosk hub: --from/--to:"
    )


def test_a_misspelt_section_is_named_as_a_section(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text('[device]\nid = "X"\nwindow = "01"\n[hubb]\nurl = "http://h"\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"{path}: [hubb]: unknown section"


def test_a_toml_syntax_error_names_the_file_by_its_full_path(tmp_path):
    (tmp_path / "kiosk.toml").write_text('[device]\nid = "X\n')
    result = kiosk("doctor", "--config", "kiosk.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{tmp_path / 'kiosk.toml'}: TOML syntax error" in result.stdout + result.stderr
