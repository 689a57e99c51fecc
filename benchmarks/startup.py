"""Kiosk start-up against a large log: with the checkpoint, without it, and a bare PySide6 start.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/startup.py [--events 1000000] [--runs 3] [--smoke]

The log holds ``--events`` events of full cycles (case_opened, rating, two ticket calls), written with
the real hash chain in one transaction. Two tables:

- in process: the raw sqlite3 read of every row (the physical limit of a full replay), the flow and
  this month's figures rebuilt from the whole log, and the same from the checkpoint (kiosk/checkpoint.py,
  chain-checked) plus the events after it;
- ``kiosk run`` process start to its first page on screen (READY=1 on a notify socket), with the
  checkpoint and with it removed (a full replay), next to the floor measured in the same run,
  interleaved: a bare Python process that imports PySide6 and paints one widget. Target: < 1.5 s with
  1,000,000 events.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from core.events import canonical_json, event_hash  # noqa: E402
from core.store import EventLog, now_iso  # noqa: E402
from kiosk import checkpoint  # noqa: E402
from kiosk.flow import HISTORY_TYPES, Flow  # noqa: E402
from kiosk.stats import WindowStats  # noqa: E402

RATING = {
    "staff_no": "0301",
    "staff_name": "王芳",
    "window": "03",
    "ticket_no": "A012",
    "item_code": "11370211MB0001234X",
    "item_name": "不动产登记",
    "satisfaction": 5,
    "input": "touch",
}
TARGET_S = 1.5
FLOOR_SCRIPT = """
import os, socket
from PySide6.QtWidgets import QApplication, QLabel
class Label(QLabel):
    def paintEvent(self, event):
        super().paintEvent(event)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
        app.quit()
app = QApplication([])
label = Label("暂停服务")
label.resize(1280, 800)
label.show()
app.exec()
"""


def cycle(i: int) -> list[tuple[str, dict]]:
    case_no = f"3702112026{i:08d}"
    case = {
        "ticket_no": "A012",
        "case_no": case_no,
        "item_code": None,
        "item_name": "不动产登记",
        "source": "queue",
    }
    return [
        ("case_opened", case),
        ("rating", {**RATING, "case_no": case_no, "case_seq": None}),
        ("ticket_called", {"ticket_no": "A013"}),
        ("ticket_called", {"ticket_no": "A014"}),
    ]


def fill(path: Path, events: int) -> None:
    """``events`` events with the log's own hash chain, in one transaction (appending one by one with
    an fsync each would take an hour for a million)."""
    with EventLog(path) as log:
        log.append("staff_signin", {"staff_no": "0301", "staff_name": "王芳"})
        log_id = log.log_id
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    seq, prev_hash = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    at = now_iso()
    rows = []
    i = 0
    while seq < events:
        for type_, payload in cycle(i):
            seq += 1
            if type_ == "case_opened":
                case_seq = seq
            if type_ == "rating":
                payload["case_seq"] = case_seq
            payload_json = canonical_json(payload).decode("utf-8")
            event = {
                "log_id": log_id,
                "seq": seq,
                "id": str(uuid.uuid4()),
                "type": type_,
                "at": at,
                "payload": payload,
                "prev_hash": prev_hash,
            }
            prev_hash = event_hash(event)
            rows.append((seq, event["id"], type_, at, payload_json, event["prev_hash"], prev_hash))
        i += 1
    conn.executemany(
        "INSERT INTO events (seq, id, type, at, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
    )
    conn.commit()
    conn.close()


def rebuild(path: Path, saved: checkpoint.Checkpoint | None) -> Flow:
    with EventLog(path) as log:
        stats = WindowStats("03")
        if saved is not None:
            stats.restore(saved.stats, saved.seq)
        stats.update_from(log)
        return Flow(
            record=lambda t, p: {"seq": 0},
            find_staff=lambda card: None,
            window="03",
            rating_timeout_s=60,
            thanks_s=3,
            now=time.monotonic(),
            history=log.events_after(saved.seq if saved else 0, types=HISTORY_TYPES),
            checkpoint=saved.flow if saved else None,
        )


def in_process(path: Path) -> list[tuple[str, float]]:
    start = time.perf_counter()
    raw = sqlite3.connect(path)
    raw.execute("SELECT seq, id, type, at, payload, prev_hash, hash FROM events ORDER BY seq").fetchall()
    raw.close()
    raw_s = time.perf_counter() - start

    start = time.perf_counter()
    flow = rebuild(path, None)
    full_s = time.perf_counter() - start
    with EventLog(path) as log:
        checkpoint.save(log, log.head_seq(), flow.durable_state(), _stats(path))

    start = time.perf_counter()
    with EventLog(path) as log:
        saved = checkpoint.load(log)
    assert saved is not None
    rebuild(path, saved)
    cp_s = time.perf_counter() - start
    return [
        ("raw sqlite3 read of every row (limit of a replay)", raw_s),
        ("flow and figures from the whole log", full_s),
        ("flow and figures from the checkpoint (chain-checked)", cp_s),
    ]


def _stats(path: Path) -> dict:
    with EventLog(path) as log:
        stats = WindowStats("03")
        stats.update_from(log)
        return stats.snapshot()


def write_config(folder: Path) -> Path:
    path = folder / "kiosk.toml"
    path.write_text(
        '[device]\nid = "BENCH"\nwindow = "03"\n[ui]\nfullscreen = false\n[voice]\nmute = true\n',
        encoding="utf-8",
    )
    return path


def time_to_ready(argv: list[str], env: dict[str, str], folder: Path) -> float:
    sock_path = folder / f"notify-{time.monotonic_ns()}.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(600)
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env=env | {"NOTIFY_SOCKET": str(sock_path)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while sock.recv(256) != b"READY=1":
                pass
            return time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(timeout=120)
            sock_path.unlink()


def drop_checkpoint(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM state WHERE key = ?", [checkpoint.CHECKPOINT_KEY])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="20,000 events, one run: seconds in all")
    args = parser.parse_args()
    events, runs = (20_000, 1) if args.smoke else (args.events, args.runs)
    env = os.environ | {"QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    with tempfile.TemporaryDirectory(prefix="kiosk-startup-") as tmp:
        folder = Path(tmp)
        config = write_config(folder)
        store = folder / "kiosk.db"
        start = time.perf_counter()
        fill(store, events)
        fill_s = time.perf_counter() - start
        steps = in_process(store)
        kiosk = [sys.executable, "-m", "commands.cli", "run", "--windowed", "--config", str(config)]
        floor = [sys.executable, "-c", FLOOR_SCRIPT]
        time_to_ready(kiosk, env, folder)  # warm-up: the page cache, and a checkpoint saved at close
        times: dict[str, list[float]] = {"floor": [], "checkpoint": [], "replay": []}
        for _ in range(runs):
            times["floor"].append(time_to_ready(floor, env, folder))
            times["checkpoint"].append(time_to_ready(kiosk, env, folder))
            drop_checkpoint(store)
            times["replay"].append(time_to_ready(kiosk, env, folder))  # saves a checkpoint again at close
        with EventLog(store) as log:
            head = log.head_seq()
    print(f"{head:,} events (filled in {fill_s:.0f} s){' — smoke' if args.smoke else ''}\n")
    print(f"| {'in process':<54} | {'seconds':>8} | {'µs/event':>8} |")
    print(f"|{'-' * 56}|{'-' * 10}|{'-' * 10}|")
    for name, seconds in steps:
        print(f"| {name:<54} | {seconds:8.3f} | {seconds / head * 1e6:8.2f} |")
    print(f"\n| {'process start to first page (median of ' + str(runs) + ')':<54} | {'seconds':>8} |")
    print(f"|{'-' * 56}|{'-' * 10}|")
    for name, key in (
        ("bare PySide6: import, one widget painted (floor)", "floor"),
        ("kiosk run, from the checkpoint", "checkpoint"),
        ("kiosk run, checkpoint removed (full replay)", "replay"),
    ):
        print(f"| {name:<54} | {statistics.median(times[key]):8.3f} |")
    print(f"\ntarget: kiosk run from the checkpoint < {TARGET_S} s")


if __name__ == "__main__":
    main()
