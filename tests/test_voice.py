"""Spoken prompts through the real audio path: ``aplay`` plays to an ALSA device whose samples go, paced
as a sound card takes them, into files (tests/audio_pacer.py), which sox measures: each page's prompt
is non-silent and as long as its recording, a page change cuts it, volume, mute and quiet hours hold,
and a missing device is a warning, never a crash."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton

from commands import doctor
from core.config import VoiceConfig, load_config
from kiosk import prompts
from kiosk.voice import SHIPPED_DIR, Voice, check_device, in_quiet_hours

pytestmark = pytest.mark.skipif(
    not (shutil.which("aplay") and shutil.which("sox")), reason="needs aplay (alsa-utils) and sox"
)

DEVICE = "kiosktest"
SAMPLE_RATE = 16_000
BYTES_PER_S = SAMPLE_RATE * 2


@pytest.fixture
def sink(tmp_path, monkeypatch) -> Path:
    """An ALSA device ``kiosktest`` (in the test's own ~/.asoundrc) recording into ``sink/*.raw``."""
    home, out = tmp_path / "home", tmp_path / "sink"
    home.mkdir()
    out.mkdir()
    pacer = Path(__file__).with_name("audio_pacer.py")
    (home / ".asoundrc").write_text(
        f'pcm.{DEVICE} {{\n  type file\n  slave.pcm "null"\n'
        f'  file "|{sys.executable} {pacer} {out} {BYTES_PER_S}"\n  format "raw"\n}}\n'
    )
    monkeypatch.setenv("HOME", str(home))
    return out


def recordings(sink: Path) -> list[Path]:
    return sorted(sink.glob("*.raw"))


def measure(raw: Path) -> tuple[float, float]:
    """(seconds, RMS amplitude 0-1) of a recording, by sox."""
    done = subprocess.run(
        [
            "sox",
            "-t",
            "raw",
            "-r",
            str(SAMPLE_RATE),
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            str(raw),
            "-n",
            "stat",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stats = dict(line.split(":", 1) for line in done.stderr.splitlines() if ":" in line)
    return float(stats["Length (seconds)"]), float(stats["RMS     amplitude"])


def recorded_seconds(name: str) -> float:
    with wave.open(str(SHIPPED_DIR / f"{name}.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SAMPLE_RATE, 1, 2)
        return w.getnframes() / SAMPLE_RATE


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("name", list(prompts.PROMPTS))
def test_each_prompt_plays_whole_and_audible(sink, name):
    voice = Voice(VoiceConfig(device=DEVICE, volume=100), minute_of_day=lambda: 720)
    try:
        voice.cue(name)
        voice.wait_idle()
    finally:
        voice.close()
    [raw] = recordings(sink)
    seconds, rms = measure(raw)
    expected = recorded_seconds(name)
    assert 1.0 < expected < 12.0  # a prompt, not a lecture
    assert seconds == pytest.approx(expected, abs=0.15)
    assert rms > 0.02, "silent"


def test_a_new_prompt_cuts_the_one_playing(sink):
    voice = Voice(VoiceConfig(device=DEVICE), minute_of_day=lambda: 720)
    try:
        voice.cue("reasons")
        wait_for(lambda: recordings(sink) and recordings(sink)[0].stat().st_size > BYTES_PER_S // 2)
        voice.cue("thanks")  # the citizen submitted: the thanks page
        voice.wait_idle()
    finally:
        voice.close()
    first, second = recordings(sink)
    assert measure(first)[0] < recorded_seconds("reasons") - 3  # cut, not finished
    assert measure(second)[0] == pytest.approx(recorded_seconds("thanks"), abs=0.15)
    assert [name for name, _ in voice.started] == ["reasons", "thanks"]


def test_volume_scales_the_samples(sink):
    levels = []
    for volume in (100, 40):
        voice = Voice(VoiceConfig(device=DEVICE, volume=volume), minute_of_day=lambda: 720)
        voice.cue("thanks")
        voice.wait_idle()
        voice.close()
        levels.append(measure(recordings(sink)[-1])[1])
    assert levels[1] == pytest.approx(levels[0] * 0.4, rel=0.05)


@pytest.mark.parametrize(
    "config, minute",
    [
        (VoiceConfig(device=DEVICE, mute=True), 720),
        (VoiceConfig(device=DEVICE, volume=0), 720),
        (VoiceConfig(device=DEVICE, quiet_hours=(22 * 60, 7 * 60)), 23 * 60),
        (VoiceConfig(device=DEVICE, quiet_hours=(22 * 60, 7 * 60)), 6 * 60 + 59),
    ],
    ids=["mute", "volume0", "quiet-evening", "quiet-morning"],
)
def test_mute_and_quiet_hours_say_nothing(sink, config, minute):
    voice = Voice(config, minute_of_day=lambda: minute)
    voice.cue("rate")
    voice.wait_idle()
    voice.close()
    assert recordings(sink) == [] and voice.started == []


def test_quiet_hours_span_midnight():
    assert in_quiet_hours((22 * 60, 7 * 60), 0) and not in_quiet_hours((22 * 60, 7 * 60), 7 * 60)
    assert in_quiet_hours((12 * 60, 13 * 60), 12 * 60 + 30) and not in_quiet_hours(None, 0)


def test_a_missing_device_is_a_warning_never_a_crash(sink, caplog):
    caplog.set_level(logging.WARNING)
    voice = Voice(VoiceConfig(device="no_such_device"), minute_of_day=lambda: 720)
    voice.cue("rate")
    voice.wait_idle()
    voice.cue("thanks")  # the failure of the first is heard when the next starts
    voice.wait_idle()
    voice.close()
    assert "no_such_device" in caplog.text
    assert "no_such_device" in check_device(VoiceConfig(device="no_such_device"))
    assert check_device(VoiceConfig(device=DEVICE)) is None


def test_no_player_is_a_warning(caplog, tmp_path):
    voice = Voice(VoiceConfig(), player=None)
    voice._player = None
    caplog.set_level(logging.WARNING)
    voice.cue("rate")
    voice.wait_idle()
    voice.close()
    assert "alsa-utils" in caplog.text
    assert "alsa-utils" in check_device(VoiceConfig(), player=None) or shutil.which("aplay")


def test_doctor_warns_about_a_broken_sound_device(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text('[device]\nid = "W03"\nwindow = "03"\n[voice]\ndevice = "no_such_device"\n')
    row = doctor.check_voice(load_config(path))
    assert row.status == doctor.WARN and "no_such_device" in row.detail
    path.write_text('[device]\nid = "W03"\nwindow = "03"\n[voice]\nmute = true\n')
    assert doctor.check_voice(load_config(path)).status == doctor.SKIP


def test_the_kiosk_speaks_each_page_and_a_page_change_cuts_the_prompt(qtbot, sink, tmp_path):
    from test_app import CASE_NO, STAFF_CARD, open_window, wait_page, write_config

    from drivers.sim import Simulator
    from kiosk.flow import DEBOUNCE_S

    with Simulator(tmp_path / "dev") as sim:
        config = write_config(tmp_path, sim)
        config.write_text(
            config.read_text() + f'[voice]\ndevice = "{DEVICE}"\nvolume = 100\nwelcome = true\n'
        )
        window = open_window(qtbot, config)
        voice = window.kiosk.voice
        try:
            qtbot.waitUntil(lambda: sim.is_open("card") and sim.is_open("ticket"), timeout=10_000)
            sim.swipe(STAFF_CARD)
            wait_page(qtbot, window, "ready")
            qtbot.waitUntil(lambda: [n for n, _ in voice.started] == ["welcome"], timeout=5000)
            sim.rate(CASE_NO, ticket="A012", item_code="11370211MB0001234X", item_name="不动产登记")
            wait_page(qtbot, window, "rate")
            qtbot.waitUntil(lambda: len(recordings(sink)) == 2, timeout=5000)  # welcome cut, rate playing
            assert window.pages["rate"].title.text() == prompts.RATE_CAPTION  # what is said is shown
            rate_raw = recordings(sink)[1]
            qtbot.waitUntil(lambda: rate_raw.stat().st_size > BYTES_PER_S // 2, timeout=5000)
            window.kiosk.clock.advance(DEBOUNCE_S + 0.05)
            button = window.pages["rate"].findChild(QAbstractButton, "rate_1")
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
            wait_page(qtbot, window, "reasons")
            assert window.pages["reasons"].title.text() == prompts.REASONS_CAPTION
            qtbot.waitUntil(lambda: [n for n, _ in voice.started][-1:] == ["reasons"], timeout=5000)
            voice.wait_idle()
        finally:
            window.kiosk.close()
    names = [n for n, _ in voice.started]
    assert names == ["welcome", "rate", "reasons"]
    welcome, rate, reasons = recordings(sink)
    assert measure(rate)[0] < recorded_seconds("rate") - 2  # the page change cut it
    assert measure(reasons)[0] == pytest.approx(recorded_seconds("reasons"), abs=0.15)


def test_voice_commands_play_and_check_the_configured_device(sink, tmp_path, capsys):
    from commands.cli import main as kiosk_main

    config = tmp_path / "kiosk.toml"
    config.write_text(f'[device]\nid = "W03"\nwindow = "03"\n[voice]\ndevice = "{DEVICE}"\n')
    assert kiosk_main(["voice", "--config", str(config), "check"]) == 0
    assert kiosk_main(["voice", "--config", str(config), "play", "thanks"]) == 0
    assert measure(recordings(sink)[-1])[0] == pytest.approx(recorded_seconds("thanks"), abs=0.15)
    assert kiosk_main(["voice", "--config", str(config), "play", "nonsense"]) == 2
    config.write_text('[device]\nid = "W03"\nwindow = "03"\n[voice]\ndevice = "no_such_device"\n')
    assert kiosk_main(["voice", "--config", str(config), "check"]) == 1
    assert "no_such_device" in capsys.readouterr().out


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="needs espeak-ng")
def test_the_default_prompts_are_generated_from_their_captions(tmp_path):
    from kiosk.voice import generate

    written = generate(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{n}.wav" for n in prompts.PROMPTS)
    for path in written:
        with wave.open(str(path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SAMPLE_RATE, 1, 2)
            seconds = w.getnframes() / SAMPLE_RATE
        # The same words as the shipped file, give or take espeak-ng's version.
        assert seconds == pytest.approx(recorded_seconds(path.stem), rel=0.25)
