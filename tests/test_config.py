"""The configuration file: defaults, relative paths, and one clear error per kind of mistake."""

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from core.domain import DEFAULT_REASONS

REPO = Path(__file__).resolve().parents[1]
MINIMAL = '[device]\nid = "XHA-W03"\nwindow = "03"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_has_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.device.id == "XHA-W03"
    assert config.store_path == tmp_path / "kiosk.db"
    assert config.roster_path is None
    assert config.serial == {}
    assert config.hub is None and config.qr is None
    assert config.ui.rating_timeout_s == 60 and config.ui.thanks_s == 3 and config.ui.fullscreen
    assert config.reasons == DEFAULT_REASONS


def test_example_config_loads_and_paths_are_relative_to_the_file():
    config = load_config(REPO / "config" / "kiosk.example.toml")
    assert config.store_path == REPO / "config" / "kiosk.db"
    assert config.hub.secret_file == REPO / "config" / "device.key"
    assert set(config.serial) == {"card", "ticket", "keypad"}
    assert config.serial_device("card").protocol == "em4100"
    assert config.serial_device("ticket").encoding == "utf-8"
    assert config.qr.base_url == "http://127.0.0.1:8700/q/"


def test_qr_base_url_defaults_to_the_hub(tmp_path):
    config = load_config(write(tmp_path, MINIMAL + '[hub]\nurl = "http://hub.example:8700/"\n'))
    assert config.hub.url == "http://hub.example:8700"
    assert config.qr.base_url == "http://hub.example:8700/q/"
    assert config.hub.public_key_file is None


def test_reasons_replace_the_default_catalogue(tmp_path):
    text = (
        MINIMAL
        + '[[reasons]]\ncode = "501"\nlabel = "窗口不足"\n\n[[reasons]]\ncode = "502"\nlabel = "其他"\n'
    )
    config = load_config(write(tmp_path, text))
    assert [r.code for r in config.reasons] == ["501", "502"]
    assert config.reasons[0].group == "其他"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[device]\nid = 'a'\nwindow = '03'\ncolour = 'red'\n", "[device] colour", "unknown key"),
        ("[device]\nwindow = '03'\n", "[device] id", "required key is missing"),
        ("[device]\nid = 'has space'\nwindow = '03'\n", "[device] id", "A-Z a-z 0-9"),
        ("[device]\nid = 'a'\nwindow = 3\n", "[device] window", "expected a string"),
        (MINIMAL + "[serial.card]\nbaudrate = 9600\n", "[serial.card] port", "required key is missing"),
        (MINIMAL + "[serial.printer]\nport = '/dev/x'\n", "[serial.printer]", "unknown device"),
        (
            MINIMAL + "[serial.card]\nport = '/dev/x'\nprotocol = 'wiegand'\n",
            "[serial.card] protocol",
            "em4100",
        ),
        (
            MINIMAL + "[serial.ticket]\nport = '/dev/x'\nencoding = 'big5'\n",
            "[serial.ticket] encoding",
            "gb18030",
        ),
        (
            MINIMAL + "[serial.keypad]\nport = '/dev/x'\nbaudrate = 1234\n",
            "[serial.keypad] baudrate",
            "one of",
        ),
        (
            MINIMAL + "[serial.keypad]\nport = '/dev/x'\nencoding = 'utf-8'\n",
            "[serial.keypad] encoding",
            "unknown key",
        ),
        (MINIMAL + "[ui]\nfullscreen = 1\n", "[ui] fullscreen", "true or false"),
        (MINIMAL + "[ui]\nthanks_s = true\n", "[ui] thanks_s", "an integer"),
        (MINIMAL + "[ui]\nrating_timeout_s = 1\n", "[ui] rating_timeout_s", "5 to 3600"),
        (MINIMAL + "[hub]\nsecret_file = 'k'\n", "[hub] url", "required key is missing"),
        (MINIMAL + "[hub]\nurl = 'ftp://x'\n", "[hub] url", "http://"),
        (MINIMAL + "[store]\npath = ''\n", "[store] path", "non-empty path"),
        (MINIMAL + "[[reasons]]\ncode = 'a b'\nlabel = 'x'\n", "[reasons.0] code", "A-Z a-z 0-9"),
        ("reasons = []\n" + MINIMAL, "[[reasons]]", "at least one"),
        ("printer = 1\n" + MINIMAL, "printer", "unknown key"),
        ("device = 'x'\n", "[device]", "expected a table"),
    ],
)
def test_each_mistake_names_the_file_and_key(tmp_path, text, key, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key
    assert words in info.value.problem
    assert str(path) in str(info.value)


def test_missing_file_and_syntax_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="TOML syntax error"):
        load_config(write(tmp_path, "[device\n"))
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "bin.toml")


def test_config_error_is_exit_2_with_one_line_and_no_traceback(tmp_path):
    path = write(tmp_path, MINIMAL + "[ui]\nthanks_s = 'three'\n")
    result = subprocess.run(
        [sys.executable, "-m", "commands.cli", "export", "--config", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"configuration error: {path}: [ui] thanks_s: expected an integer, got 'three'"
    ]


def test_config_comes_from_the_environment(tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("KIOSK_CONFIG", str(path))
    assert load_config().path == path


def test_the_device_secret_file(tmp_path):
    from core.config import read_device_secret

    config, key = tmp_path / "kiosk.toml", tmp_path / "device.key"
    key.write_text("00ff10\n")
    assert read_device_secret(config, key) == b"\x00\xff\x10"
    for text, words in (("", "is empty"), ("zz", "expected hex text"), ("秘密", "expected hex text")):
        key.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=words):
            read_device_secret(config, key)
    key.unlink()
    with pytest.raises(ConfigError, match=r"\[hub\] secret_file"):
        read_device_secret(config, key)
