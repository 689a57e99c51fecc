"""``kiosk demo --offscreen`` end to end, as a fresh clone runs it: a real hub, sync agent, pseudo-terminals
and the Qt window offscreen. The hub must hold every rating of the tour exactly once; Ctrl-C must leave
no process behind."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from commands.demo import TOUR_CASES

DEADLINE_S = 100


def start_demo(out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "demo", "--offscreen", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # the process ended while we looked
        if any(text.encode() in a for a in args):
            found.append(b" ".join(args).decode(errors="replace"))
    return found


def test_offscreen_tour_delivers_every_rating_exactly_once(tmp_path):
    out = tmp_path / "demo-out"
    demo = start_demo(out)
    stdout, stderr = demo.communicate(timeout=DEADLINE_S)
    assert demo.returncode == 0, stdout + stderr
    ratings = json.loads((out / "ratings.json").read_text(encoding="utf-8"))
    assert Counter(r["projectNo"] for r in ratings) == Counter(case.case_no for case in TOUR_CASES)
    by_case = {r["projectNo"]: r for r in ratings}
    good, bad, after_replug, during_outage = TOUR_CASES
    assert by_case[good.case_no]["satisfaction"] == 5
    assert (
        by_case[bad.case_no]["satisfaction"] == 2 and len(by_case[bad.case_no]["evalDetail"].split(",")) == 2
    )
    assert by_case[after_replug.case_no]["satisfaction"] == 4
    assert by_case[during_outage.case_no]["satisfaction"] == 5
    assert all(r["pf"] == 4 and r["staffNo"] == "0301" for r in ratings)
    shots = {re.sub(r"^\d+-", "", p.stem) for p in out.glob("*.png")}
    assert {"paused", "ready", "rate", "reasons", "thanks"} <= shots
    assert "exactly once" in stdout
    desk_line = next(line for line in stdout.splitlines() if bad.case_no in line and "deadline" in line)
    assert re.search(r"deadline \d{4}-\d{2}-\d{2} status open", desk_line)
    assert re.search(
        r"console: http://127\.0\.0\.1:\d+/console/ \(user demo-supervisor, one-time password \S+", stdout
    )
    folder = re.search(r"working in (\S+)", stdout).group(1)
    assert not Path(folder).exists(), "a successful demo cleans up after itself"


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path):
    demo = start_demo(tmp_path / "demo-out")
    folder = re.search(r"working in (\S+)", demo.stdout.readline()).group(1)
    for line in demo.stdout:
        if line.startswith("[2]"):  # the hub, the agent and the kiosk are all up
            break
    assert processes_mentioning(folder), "the hub and the agent run with the demo folder in their arguments"
    demo.send_signal(signal.SIGINT)
    demo.communicate(timeout=30)
    assert demo.returncode != 0
    deadline = time.monotonic() + 10
    while processes_mentioning(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_mentioning(folder) == []
