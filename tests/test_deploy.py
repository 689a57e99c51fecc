"""The deployment files: systemd units (systemd-analyze verify when present), install.sh and uninstall.sh
run into a scratch root, the display environments and the udev rules."""

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from commands.doctor import qt_platform_plugin, read_env_file
from core.config import load_config

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
UNITS = {
    "kiosk.service": REPO / "kiosk.service",
    "kiosk-sync.service": DEPLOY / "kiosk-sync.service",
    "kiosk-hub.service": DEPLOY / "kiosk-hub.service",
}
INSTALLED_EXECUTABLE = "/opt/kiosk/venv/bin/kiosk"


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, by key, in order (systemd allows a key more than once)."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(DEPLOY / name), *args], capture_output=True, text=True, timeout=60)


def tree(root: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every path below ``root``: its mode and its content (a link's target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = (0, os.readlink(path))
        elif path.is_file():
            found[rel] = (stat.S_IMODE(path.stat().st_mode), path.read_bytes())
        else:
            found[rel] = (stat.S_IMODE(path.stat().st_mode), b"")
    return found


# --- units --------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    # verify insists that ExecStart exists: point it at this checkout's kiosk instead of /opt/kiosk.
    kiosk = Path(sys.executable).parent / "kiosk"
    assert kiosk.exists(), "the kiosk console script is installed in this environment"
    for name, source in UNITS.items():
        text = source.read_text(encoding="utf-8")
        assert INSTALLED_EXECUTABLE in text
        (tmp_path / name).write_text(text.replace(INSTALLED_EXECUTABLE, str(kiosk)), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    ours = [line for line in result.stderr.splitlines() if any(name in line for name in UNITS)]
    assert result.returncode == 0 and not ours, result.stderr


@pytest.mark.parametrize("name", UNITS)
def test_units_are_supervised_and_hardened(name):
    s = unit_settings(UNITS[name])
    assert s["Type"] == ["notify"] and s["Restart"] == ["always"]
    assert int(s["WatchdogSec"][0]) > 0
    # Automatic restarts alone never reach the start limit: an unattended terminal keeps retrying.
    assert int(s["StartLimitIntervalSec"][0]) / int(s["RestartSec"][0]) < int(s["StartLimitBurst"][0])
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectKernelTunables", "ProtectControlGroups"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"] and s["CapabilityBoundingSet"] == [""]
    assert s["ExecStart"][0].startswith(INSTALLED_EXECUTABLE)


def test_terminal_units_share_the_kiosk_user_state_and_config():
    for name in ("kiosk.service", "kiosk-sync.service"):
        s = unit_settings(UNITS[name])
        assert (
            s["User"] == ["kiosk"]
            and s["StateDirectory"] == ["kiosk"]
            and s["ConfigurationDirectory"] == ["kiosk"]
        )
        assert "--config /etc/kiosk/kiosk.toml" in s["ExecStart"][0]


def test_ui_unit_keeps_serial_and_display_devices_reachable():
    s = unit_settings(UNITS["kiosk.service"])
    assert {"dialout", "video", "input"} <= set(s["SupplementaryGroups"][0].split())
    # Each of these closes the device policy: no /dev/ttyUSB*, /dev/dri, /dev/input for the kiosk.
    for key in ("PrivateDevices", "ProtectClock", "DevicePolicy", "DeviceAllow"):
        assert key not in s, key
    assert s["BindReadOnlyPaths"] == ["-/tmp/.X11-unix"], "the X socket survives PrivateTmp"
    assert s["EnvironmentFile"] == ["-/etc/kiosk/display.env"]


# --- display environments and udev ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["x11", "eglfs", "linuxfb"])
def test_display_environments_name_a_shipped_qt_plugin(kind):
    env = read_env_file(DEPLOY / "display" / f"{kind}.env")
    platform = env["QT_QPA_PLATFORM"].split(":")[0]
    assert qt_platform_plugin(platform) is not None, platform
    if kind == "eglfs":
        assert env["QT_QPA_EGLFS_HIDECURSOR"] == "1"
        assert f"rotate={env['QT_QPA_EGLFS_ROTATION']}" in env["QT_QPA_EVDEV_TOUCHSCREEN_PARAMETERS"]
    if kind == "x11":
        assert env["DISPLAY"] == ":0"


def test_x11_session_script_turns_blanking_off_and_grants_the_kiosk_user():
    script = DEPLOY / "display" / "x11-session.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    text = script.read_text(encoding="utf-8")
    assert "xset s off" in text and "xset -dpms" in text and "xhost +SI:localuser:kiosk" in text


UDEV_PAIR = re.compile(r'[A-Z_]+(\{[A-Za-z_]+\})?(==|!=|\+=|=|:=)"[^"]*"')


def test_udev_rules_parse_and_give_the_config_its_stable_names():
    links, ignored = set(), False
    for line in (DEPLOY / "99-kiosk-serial.rules").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pairs = line.split(", ")
        assert all(UDEV_PAIR.fullmatch(p) for p in pairs), line
        links |= set(re.findall(r'SYMLINK\+="([^"]+)"', line))
        ignored |= 'ENV{ID_MM_DEVICE_IGNORE}="1"' in line
    assert ignored
    config = load_config(REPO / "config" / "kiosk.example.toml")
    assert {Path(s.port).name for s in config.serial.values()} == links


# --- install.sh and uninstall.sh ---------------------------------------------------------------------------


def test_install_into_a_scratch_root(tmp_path):
    root = tmp_path / "root"
    result = run_script("install.sh", "--root", str(root), "--no-venv", "--hub")
    assert result.returncode == 0, result.stdout + result.stderr
    etc = root / "etc"
    for unit in UNITS:
        assert (etc / "systemd" / "system" / unit).read_bytes() == UNITS[unit].read_bytes()
    config_file = etc / "kiosk" / "kiosk.toml"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o640
    config = load_config(config_file)
    assert config.store_path == Path("/var/lib/kiosk/kiosk.db"), "the log lives in StateDirectory="
    assert (etc / "kiosk" / "display.env").read_bytes() == (DEPLOY / "display" / "x11.env").read_bytes()
    assert (etc / "xdg" / "autostart" / "kiosk-x11-session.desktop").exists()
    assert (etc / "udev" / "rules.d" / "99-kiosk-serial.rules").exists()
    assert os.access(root / "opt" / "kiosk" / "bin" / "kiosk-x11-session", os.X_OK)
    assert (root / "var" / "lib" / "kiosk").is_dir()
    hub_env = etc / "kiosk-hub" / "hub.env"
    assert stat.S_IMODE(hub_env.stat().st_mode) == 0o600
    token, *comments = hub_env.read_text().splitlines()
    assert re.fullmatch(r"KIOSK_HUB_ADMIN_TOKEN=[0-9a-f]{48}", token)
    assert "# KIOSK_HUB_DB=postgresql+psycopg://hub:PASSWORD@db.example/hub" in comments
    if shutil.which("systemd-sysusers"):
        passwd = (etc / "passwd").read_text()
        assert re.search(r"^kiosk:x:\d+:\d+:[^:]*:/var/lib/kiosk:/usr/sbin/nologin$", passwd, re.M)
        assert re.search(r"^dialout:x:\d+:.*\bkiosk\b", (etc / "group").read_text(), re.M)
    if shutil.which("systemctl"):
        assert (etc / "systemd" / "system" / "graphical.target.wants" / "kiosk.service").is_symlink()
        assert (etc / "systemd" / "system" / "multi-user.target.wants" / "kiosk-sync.service").is_symlink()


def test_install_again_keeps_what_the_technician_edited(tmp_path):
    root = tmp_path / "root"
    assert run_script("install.sh", "--root", str(root), "--no-venv").returncode == 0
    config_file = root / "etc" / "kiosk" / "kiosk.toml"
    config_file.write_text(config_file.read_text().replace('id = "XHA-W03"', 'id = "SITE-W07"'))
    before = tree(root)
    again = run_script("install.sh", "--root", str(root), "--no-venv", "--display", "eglfs")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "kept /etc/kiosk/kiosk.toml" in again.stdout and "kept /etc/kiosk/display.env" in again.stdout
    assert tree(root) == before
    assert load_config(config_file).device.id == "SITE-W07"


def test_device_key_placeholder_is_private_and_never_overwritten(tmp_path):
    root = tmp_path / "root"
    assert run_script("install.sh", "--root", str(root), "--no-venv").returncode == 0
    key = root / "etc" / "kiosk" / "device.key"
    # Empty, 0640 (root:kiosk on a real system): the technician fills it in without choosing a mode.
    assert key.read_bytes() == b"" and stat.S_IMODE(key.stat().st_mode) == 0o640
    key.write_text("00112233445566778899aabbccddeeff\n")
    key.chmod(0o600)
    again = run_script("install.sh", "--root", str(root), "--no-venv")
    assert again.returncode == 0 and "kept /etc/kiosk/device.key" in again.stdout
    assert key.read_text() == "00112233445566778899aabbccddeeff\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    dry = run_script("install.sh", "--root", str(tmp_path / "other"), "--dry-run")
    assert "/etc/kiosk/device.key" in dry.stdout and "chgrp kiosk /etc/kiosk/device.key" in dry.stdout


def test_dry_run_changes_nothing_and_prints_every_step(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    result = run_script("install.sh", "--root", str(root), "--dry-run", "--display", "eglfs")
    assert result.returncode == 0, result.stderr
    assert list(root.iterdir()) == []
    for step in ("users", "directories", "software", "configuration", "udev", "systemd units"):
        assert f"==> {step}" in result.stdout
    assert f"display/eglfs.env {root}/etc/kiosk/display.env" in result.stdout


def test_install_refuses_bad_options(tmp_path):
    assert run_script("install.sh", "--display", "vga").returncode == 2
    assert run_script("install.sh", "--frobnicate").returncode == 2


def test_uninstall_keeps_the_log_and_config_unless_purged(tmp_path):
    root = tmp_path / "root"
    assert run_script("install.sh", "--root", str(root), "--no-venv").returncode == 0
    (root / "var" / "lib" / "kiosk" / "kiosk.db").write_bytes(b"ratings")
    result = run_script("uninstall.sh", "--root", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (root / "etc" / "systemd" / "system" / "kiosk.service").exists()
    assert not (root / "opt" / "kiosk").exists()
    assert (root / "var" / "lib" / "kiosk" / "kiosk.db").read_bytes() == b"ratings"
    assert (root / "etc" / "kiosk" / "kiosk.toml").exists()
    assert run_script("uninstall.sh", "--root", str(root), "--purge").returncode == 0
    assert not (root / "var" / "lib" / "kiosk").exists() and not (root / "etc" / "kiosk").exists()


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_scripts_pass_shellcheck():
    scripts = ["install.sh", "uninstall.sh", "lib.sh", "display/x11-session.sh"]
    result = subprocess.run(["shellcheck", "-x", *scripts], cwd=DEPLOY, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_install_hub_places_the_nginx_site_and_raises_debians_connection_limit(tmp_path):
    """The proxy is the supported layout: install.sh --hub ships it (tests/test_nginx.py runs it)."""
    root = tmp_path / "root"
    (root / "etc" / "nginx").mkdir(parents=True)
    debian = "user www-data;\nworker_processes auto;\nevents {\n\tworker_connections 768;\n}\n"
    (root / "etc" / "nginx" / "nginx.conf").write_text(debian)
    for _ in range(2):  # idempotent
        result = run_script("install.sh", "--root", str(root), "--no-venv", "--hub")
        assert result.returncode == 0, result.stdout + result.stderr
    nginx = root / "etc" / "nginx"
    site = nginx / "sites-available" / "kiosk-hub"
    assert site.read_bytes() == (DEPLOY / "nginx" / "kiosk-hub.conf").read_bytes()
    assert (nginx / "sites-enabled" / "kiosk-hub").resolve() == site.resolve()
    main = (nginx / "nginx.conf").read_text()
    assert "\tworker_connections 8192;" in main and main.count("worker_rlimit_nofile 16384;") == 1
    unit = (DEPLOY / "kiosk-hub.service").read_text()
    assert "LimitNOFILE=8192" in unit and "--host 127.0.0.1" in unit
