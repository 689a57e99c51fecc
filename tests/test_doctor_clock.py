"""``kiosk doctor``'s time checks: NTP synchronisation through the real ``timedatectl`` / ``chronyc``
command lines (stand-in executables on PATH answering as the real ones do) and the offset to the hub."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from commands import doctor


def fake_command(folder: Path, name: str, stdout: str, code: int = 0) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' '{stdout}'\nexit {code}\n")  # builtins only: PATH is bare
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def run_on(folder: Path):
    def run(cmd, **kw):
        return subprocess.run(cmd, env={**os.environ, "PATH": str(folder)}, **kw)

    return run


@pytest.mark.parametrize(
    ("timedatectl", "chronyc", "status", "words"),
    [
        (("yes", 0), None, "ok", "NTP synchronized"),
        (("no", 0), None, "warn", "not NTP synchronized"),
        (("System has not been booted with systemd", 1), ("Leap status     : Normal", 0), "ok", "chronyc"),
        (None, ("Leap status     : Not synchronised", 0), "warn", "Not synchronised"),
        (None, None, "warn", "neither timedatectl nor chronyc"),
    ],
)
def test_time_sync(tmp_path, timedatectl, chronyc, status, words):
    if timedatectl:
        fake_command(tmp_path, "timedatectl", *timedatectl)
    if chronyc:
        fake_command(tmp_path, "chronyc", *chronyc)
    row = doctor.check_time_sync(run_on(tmp_path))
    assert row.status == status and words in row.detail
    if status != "ok":
        assert row.fix


@pytest.mark.parametrize(("skew", "status"), [(None, "skip"), (3.0, "ok"), (-75.0, "warn"), (400.0, "FAIL")])
def test_clock_against_the_hub(skew, status):
    row = doctor.check_hub_clock(skew)
    assert row.status == status
    if skew is not None:
        assert f"{skew:+.0f} s" in row.detail


def test_the_fix_for_a_refused_device_names_the_hubs_data_folder():
    assert "--data folder" in doctor.FIX_REGISTRY and "NEW EMPTY DATABASE" in doctor.FIX_REGISTRY


def test_counters_read_as_english():
    assert doctor._count(1, "frame") == "1 frame" and doctor._count(0, "reconnect") == "0 reconnects"
