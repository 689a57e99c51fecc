"""The device simulator: stable symlinks over real ptys, unplug/replug, keypad answers, the config fragment,
and ``kiosk sim`` driven through stdin as a technician would."""

import fcntl
import os
import queue
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

import drivers.sim
from core.config import load_config, parse_config
from drivers.card import em4100_frame
from drivers.devices import CardSwiped, Devices, KeyPressed, TicketCalled
from drivers.sim import Simulator, em4100_data, wait_until


def test_paths_are_stable_symlinks_to_ptys_and_follow_a_replug(tmp_path):
    with Simulator(tmp_path) as sim:
        assert set(sim.paths) == {"card", "ticket", "keypad"}
        for name, path in sim.paths.items():
            assert Path(path).is_symlink()
            assert os.readlink(path) == sim.tty(name)
            assert sim.tty(name).startswith("/dev/pts/")
        sim.unplug("ticket")
        assert not os.path.lexists(sim.paths["ticket"])
        assert sim.tty("ticket") is None
        with pytest.raises(RuntimeError, match="ticket is unplugged"):
            sim.call("A1")
        sim.replug("ticket")
        assert os.readlink(sim.paths["ticket"]) == sim.tty("ticket")
    assert not os.path.lexists(tmp_path / "card")


def test_is_open_sees_an_exclusive_holder_but_not_a_shared_probe(tmp_path):
    with Simulator(tmp_path) as sim:
        fd = os.open(sim.paths["card"], os.O_RDWR | os.O_NOCTTY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # how the port layer probes before it opens (and flushes)
            assert not sim.is_open("card")
            fcntl.flock(fd, fcntl.LOCK_EX)  # how it holds the port once it is reading
            assert sim.is_open("card")
        finally:
            os.close(fd)
        assert not sim.is_open("card")


def test_own_folder_is_removed_on_close():
    sim = Simulator()
    folder = sim.folder
    assert folder.is_dir()
    sim.close()
    assert not folder.exists()


def test_em4100_data_for_every_card_form():
    assert em4100_data("13005D1DA5") == "13005D1DA5"  # EM data as printed keeps its version byte
    assert em4100_data("0006102437") == "00005D1DA5"  # ten digits are the decimal card number
    assert em4100_data("26defae7") == "0026DEFAE7"
    assert em4100_data("093,07589") == "00005D1DA5"
    with pytest.raises(ValueError):
        em4100_data("staff 7")


def test_config_fragment_is_a_valid_serial_config(tmp_path):
    with Simulator(tmp_path / "dev", ticket_encoding="gb18030") as sim:
        text = '[device]\nid = "T1"\nwindow = "03"\n\n' + sim.config_fragment(card_protocol="line")
        (tmp_path / "kiosk.toml").write_text(text, encoding="utf-8")
        config = load_config(tmp_path / "kiosk.toml")
        assert {name: s.port for name, s in config.serial.items()} == sim.paths
        assert config.serial["card"].protocol == "line" == sim.card_protocol
        assert config.serial["ticket"].encoding == "gb18030"


def test_keypad_answers_are_drained_in_order(tmp_path):
    with Simulator(tmp_path) as sim:
        kiosk_side = os.open(sim.paths["keypad"], os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(kiosk_side, b"OK5\r\nNO\r\nOK")
            answers = []
            wait_until(lambda: answers.extend(sim.keypad_answers()) or len(answers) == 2)
            assert answers == ["OK5", "NO"]
            os.write(kiosk_side, b"3\r\n")
            wait_until(lambda: answers.extend(sim.keypad_answers()) or len(answers) == 3)
            assert answers[2] == "OK3"
        finally:
            os.close(kiosk_side)


@pytest.mark.timeout(10)
def test_a_device_nobody_reads_reports_a_full_buffer_instead_of_hanging(tmp_path, monkeypatch):
    monkeypatch.setattr(drivers.sim, "SEND_TIMEOUT_S", 0.1)
    with Simulator(tmp_path) as sim:
        with pytest.raises(RuntimeError, match="ticket: device buffer full"):
            for _ in range(1000):  # far more than a pty buffers while nobody reads
                sim.scan("SP2026112800017" * 60)
        sim.unplug("ticket")  # and the simulator is still usable
        sim.replug("ticket")
        sim.scan("SP1")


class SimProcess:
    """``kiosk sim`` as a child process; its output lines arrive on a queue."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", "sim", *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, predicate, timeout=10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if predicate(line):
                return line

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()


def test_kiosk_sim_command(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "card,staff_no,name,title,photo\n26DEFAE7,S007,张三,科员,\n0006102437,S008,李四,,\n", encoding="utf-8"
    )
    fragment = tmp_path / "serial.toml"
    sim = SimProcess("--config-out", fragment, "--roster", roster)
    try:
        sim.expect(lambda line: line.startswith("config fragment written"))
        sim.expect(lambda line: "help" in line)
        serial = parse_config(
            {"device": {"id": "T", "window": "1"}} | tomllib.loads(fragment.read_text(encoding="utf-8")),
            tmp_path / "k.toml",
        ).serial
        events = []
        with Devices(serial, events.append) as devices:
            wait_until(lambda: all(s.state == "connected" for s in devices.status()))
            sim.send("paths")
            sim.expect(lambda line: line.startswith("keypad") and line.endswith("(open)"))
            sim.send("swipe 张三")
            sim.send("swipe S008")  # by staff number
            sim.send("press 5")
            wait_until(lambda: len(events) == 3)
            assert [e for e in events if isinstance(e, CardSwiped)] == [
                CardSwiped(em4100_frame(data)[1:-1].decode()) for data in ("0026DEFAE7", "00005D1DA5")
            ]
            assert KeyPressed(5) in events  # on its own reader thread, so in any order with the swipes
            devices.answer_keypad(5)
            assert sim.expect(lambda line: line.startswith("keypad answered")) == "keypad answered OK5"
            sim.send("unplug ticket")
            wait_until(lambda: devices.status()[1].state == "waiting", what="ticket loss noticed")
            sim.send("paths")
            assert sim.expect(lambda line: line.startswith("ticket")).endswith("-> unplugged")
            sim.send("call A1")
            assert sim.expect(lambda line: line.startswith("error")) == "error: ticket is unplugged"
            sim.send("replug ticket")
            wait_until(lambda: devices.status()[1].state == "connected", timeout_s=5, what="ticket back")
            sim.send("paths")
            sim.expect(lambda line: line.startswith("ticket") and line.endswith("(open)"))
            sim.send("call A2")
            wait_until(lambda: TicketCalled("A2") in events, what="call after replug")
            sim.send('rate "C 1')
            assert sim.expect(lambda line: line.startswith("error")) == "error: No closing quotation"
            sim.send("swipe")
            assert sim.expect(lambda line: line.startswith("usage")).startswith("usage: swipe CARD")
            sim.send("frobnicate")
            assert (
                sim.expect(lambda line: line.startswith("unknown"))
                == "unknown command 'frobnicate'; type help"
            )
            sim.send("garbage printer")
            assert (
                sim.expect(lambda line: line.startswith("error"))
                == "error: device is one of card, ticket, keypad"
            )
            sim.send("help")
            sim.expect(lambda line: line.startswith("  unplug DEVICE"))
        sim.send("quit")
        assert sim.proc.wait(timeout=10) == 0
    finally:
        sim.proc.kill()
        sim.proc.wait()


def test_kiosk_sim_with_an_unreadable_roster_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "commands.cli", "sim", "--roster", str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "missing.csv" in result.stderr and "cannot read roster" in result.stderr
