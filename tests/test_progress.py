"""Progress bars for long work (core/progress.py): drawn on stderr when it is a terminal, absent when it
is a pipe (systemd's journal, CI), and never on stdout. The real commands run as child processes with
stderr on a real pseudo-terminal (the pty module), then with pipes."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios

import pytest
from test_hub_support import agent_env, fill_log, register, thread_hub, write_kiosk_config

from commands.hubprocess import kiosk_command
from core.progress import advance, set_total, shown, task
from core.store import EventLog

BAR = "%|"  # tqdm's bar: "100%|██████████| 300/300 [00:00<00:00, 1.2k events/s]"


def run(args: list[str], *, terminal: bool, cwd=None) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``kiosk ARGS``; stderr on a pseudo-terminal when ``terminal``."""
    env = {**agent_env(), "TERM": "xterm", "COLUMNS": "120"}
    if not terminal:
        done = subprocess.run(
            kiosk_command(*args), capture_output=True, text=True, env=env, cwd=cwd, timeout=120
        )
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 40 rows, 120 columns
    proc = subprocess.Popen(
        kiosk_command(*args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        cwd=cwd,
    )
    os.close(slave)
    terminal_text = bytearray()
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child has closed the terminal's other end
                break
            if not data:
                break
            terminal_text += data
        stdout = proc.stdout.read().decode() if proc.stdout else ""
        proc.wait(60)
    finally:
        os.close(master)
        if proc.stdout:
            proc.stdout.close()
    return proc.returncode, stdout, terminal_text.decode("utf-8", errors="replace")


def assert_bar(text: str, what: str) -> None:
    assert what in text and BAR in text, text[-2000:]


def assert_no_bar(*texts: str) -> None:
    for text in texts:
        assert BAR not in text and "\r" not in text, text[-2000:]


@pytest.fixture
def hub_with_events(tmp_path):
    """A hub (SQLite) serving in this process, and a kiosk folder whose log it has not seen yet."""
    with thread_hub(tmp_path / "hub") as hub:
        hub.secret = register(hub.store)
        kiosk = tmp_path / "kiosk"
        kiosk.mkdir()
        hub.kiosk_config = write_kiosk_config(kiosk, hub.url, hub.secret)
        hub.kiosk_log = kiosk / "kiosk.db"
        hub.data = tmp_path / "hub"
        yield hub


def test_the_long_commands_draw_a_bar_on_a_terminal_and_nothing_into_a_pipe(hub_with_events, tmp_path):
    hub = hub_with_events
    sync = ["sync", "--once", "--config", str(hub.kiosk_config)]

    # kiosk sync --once: a backlog sent with a bar on a terminal, silently into a pipe.
    with EventLog(hub.kiosk_log) as log:
        fill_log(log, 120)
    code, out, err = run(sync, terminal=False)
    assert code == 0 and "0 pending" in out
    assert_no_bar(out, err)
    with EventLog(hub.kiosk_log) as log:
        fill_log(log, 120, seed=1)
    code, out, err = run(sync, terminal=True)
    assert code == 0 and "0 pending" in out
    assert_bar(err, "kiosk sync: sending")
    assert "120/120" in err  # the backlog as its total, all of it sent
    assert_no_bar(out)  # stdout, for scripts, stays plain

    data = ["--data", str(hub.data)]
    roster = tmp_path / "staff.csv"
    roster.write_text(
        "card,staff_no,name,title,photo\n0006102437,0371,王晓燕,综合受理,\n26DEFAE7,0372,李强,,\n"
    )
    commands = {
        "verify: event chains": ["hub", "verify", *data],
        "stats verify: replaying the record": ["hub", "stats", "--verify", *data],
        "report: writing html": [
            "hub",
            "report",
            "--period",
            "2026-11",
            "--format",
            "html",
            "--out",
            "r.html",
            *data,
        ],
        "roster import: reading": ["hub", "roster", "import", str(roster), *data],
    }
    for what, args in commands.items():
        code, out, err = run(args, terminal=True, cwd=tmp_path)
        assert code == 0, err[-2000:]
        assert_bar(err, what)
        assert_no_bar(out)
        code, out, err = run(args, terminal=False, cwd=tmp_path)
        assert code == 0, err[-2000:]
        assert_no_bar(out, err)
    code, _, err = run(commands["verify: event chains"], terminal=True)
    assert "verify: event chains: 100%" in err and "240/240" in err  # every event held, counted


def test_without_a_task_the_work_reports_to_nobody(capsys):
    advance(5)  # the hub serving, the agent's loop: no task open, nothing happens
    set_total(10)
    with task("nothing to see", total=3) as work:  # pytest's captured stderr is no terminal
        advance(2)
        set_total(4)
    assert work.done == 2 and work.bar is None and not shown()
    assert capsys.readouterr().err == ""
