"""The package graph of docs/architecture.md, and the two installable halves.

The graph is written down as import-linter contracts in pyproject.toml; ``lint-imports`` checks every
import (function-level ones too). The halves: a hub server installs ``.[hub]`` only, a terminal
``.[terminal]`` only; each is proven by running its commands in a Python where the other half's
distributions cannot be imported (as if not installed).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "drivers", "kiosk", "sync", "hub", "commands")
# The import names of each extra's distributions (and of what they bring along).
IMPORT_NAMES = {
    "PySide6-Essentials": ["PySide6", "shiboken6"],
    "pyserial": ["serial"],
    "qrcode": ["qrcode"],
    "sqlite-utils": ["sqlite_utils"],
    "requests": ["requests"],
    "fastapi": ["fastapi", "starlette", "pydantic"],
    "uvicorn": ["uvicorn"],
    "SQLAlchemy": ["sqlalchemy"],
    "alembic": ["alembic"],
    "gmssl": ["gmssl"],
    "psycopg[binary]": ["psycopg"],
    "chinese-calendar": ["chinese_calendar"],
    "argon2-cffi": ["argon2"],
    "weasyprint": ["weasyprint"],
    "openpyxl": ["openpyxl"],
    "segno": ["segno"],
    "jinja2": ["jinja2"],
    "tqdm": ["tqdm"],
}


def _only_in(name: str, other: str) -> list[str]:
    """The import names of extra ``name`` that extra ``other`` does not bring too."""
    return sorted(set(_extra(name)) - set(_extra(other)))


def _extra(name: str) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = []
    for requirement in project["optional-dependencies"][name]:
        dist = requirement.split(">")[0].split("<")[0].split("=")[0].strip()
        names += IMPORT_NAMES.get(dist, [dist.replace("-", "_").lower()])
    return names


def test_the_import_contracts_hold():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_says_what_it_owns_and_must_not_import(package):
    doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    assert doc and "must not import" in doc.lower().replace("\n", " "), package


def test_every_extra_is_mapped_to_its_import_names():
    for extra in ("terminal", "hub"):
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        for requirement in project["optional-dependencies"][extra]:
            dist = requirement.split(">")[0].split("<")[0].split("=")[0].strip()
            assert dist in IMPORT_NAMES, f"add {dist} of the {extra} extra to IMPORT_NAMES"


# Runs in a fresh interpreter: the blocked distributions raise ImportError as if not installed, then
# every module of the half is imported and its commands run.
_HALF = r"""
import importlib, json, pkgutil, sys
blocked, packages, skip, commands = json.loads(sys.argv[1])

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in this half)", name=name)
        return None

sys.meta_path.insert(0, Blocker())
for package in packages:
    importlib.import_module(package)
    for info in pkgutil.walk_packages(sys.modules[package].__path__, package + "."):
        if info.name not in skip and not info.name.startswith(tuple(s + "." for s in skip)):
            importlib.import_module(info.name)
from commands.cli import main
codes = [main(argv) for argv in commands]
print(json.dumps(codes))
"""


def _run_half(blocked, packages, skip, commands):
    result = subprocess.run(
        [sys.executable, "-c", _HALF, json.dumps([blocked, packages, skip, commands])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen", "HOME": "/tmp"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_the_hub_half_runs_without_the_terminal_packages(tmp_path):
    codes, _ = _run_half(
        _only_in("terminal", "hub"),
        ["core", "hub"],
        ["core.store", "core.requests_auth"],  # the terminal's: sqlite-utils, requests
        [
            ["hub", "device", "add", "XHA-W01", "--data", str(tmp_path)],
            ["hub", "key", "export", "--data", str(tmp_path)],
        ],
    )
    assert codes == [0, 0]


def test_the_terminal_half_runs_without_the_hub_packages(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text('[device]\nid = "XHA-W01"\nwindow = "01"\n[hub]\nurl = "http://127.0.0.1:9"\n')
    (tmp_path / "device.key").write_text("00" * 32)
    codes, stderr = _run_half(
        _only_in("hub", "terminal"),
        ["core", "drivers", "kiosk", "sync"],
        [],
        [
            ["export", "--config", str(config)],
            ["sync", "--once", "--config", str(config)],  # an empty log: nothing to send
            ["doctor", "--config", str(config)],  # fails its checks (no hub, no ports), runs every one
        ],
    )
    assert codes == [0, 0, 1], stderr[-3000:]
