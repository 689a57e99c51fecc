"""Spoken prompt start latency after a page change; prints a markdown table.

- cue: what the GUI thread spends on ``Voice.cue`` (it only queues: the page change is never delayed);
- start: ``cue`` to the prompt's first samples arriving at the ALSA device (the real path: a worker
  thread kills the prompt playing, ``aplay`` starts, opens the device, writes), p50/p95;
- floor, measured in the same run and interleaved with ``start``: ``aplay`` of the same file started
  directly (process start and device open, nothing of the kiosk's).

The device is an ALSA ``file`` device feeding tests/audio_pacer.py, which takes samples at the real-time
rate as a sound card would (the first bytes are what is timed). Needs aplay (alsa-utils).

    .venv/bin/python benchmarks/voice.py [--runs 40] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from core.config import VoiceConfig  # noqa: E402
from kiosk.voice import SHIPPED_DIR, Voice  # noqa: E402

DEVICE = "kiosktest"
PACER = Path(__file__).resolve().parent.parent / "tests" / "audio_pacer.py"


def first_bytes(sink: Path, before: set[Path], timeout: float = 10) -> float:
    """The moment a new recording in ``sink`` has its first samples."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in set(sink.glob("*.raw")) - before:
            if path.stat().st_size > 0:
                return time.monotonic()
        time.sleep(0.0005)
    raise TimeoutError("no sound arrived")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--smoke", action="store_true", help="a few runs, seconds in all")
    args = parser.parse_args()
    runs = 3 if args.smoke else args.runs
    with tempfile.TemporaryDirectory(prefix="kiosk-voice-bench-") as tmp:
        home, sink = Path(tmp) / "home", Path(tmp) / "sink"
        home.mkdir()
        sink.mkdir()
        (home / ".asoundrc").write_text(
            f'pcm.{DEVICE} {{\n  type file\n  slave.pcm "null"\n'
            f'  file "|{sys.executable} {PACER} {sink} 32000"\n  format "raw"\n}}\n'
        )
        os.environ["HOME"] = str(home)
        voice = Voice(VoiceConfig(device=DEVICE), minute_of_day=lambda: 720)
        wav = SHIPPED_DIR / "thanks.wav"
        cue_s, start_s, floor_s = [], [], []
        try:
            voice.cue("rate")  # warm-up: the cache is prepared, a first player has run
            first_bytes(sink, set())
            for _ in range(runs):
                # The kiosk: a page change while a prompt plays.
                before = set(sink.glob("*.raw"))
                t0 = time.monotonic()
                voice.cue("thanks")
                cue_s.append(time.monotonic() - t0)
                start_s.append(first_bytes(sink, before) - t0)
                voice.stop().result()
                # The floor: aplay itself, started directly.
                before = set(sink.glob("*.raw"))
                t0 = time.monotonic()
                player = subprocess.Popen(["aplay", "-q", "-D", DEVICE, str(wav)])
                floor_s.append(first_bytes(sink, before) - t0)
                player.kill()
                player.wait()
                voice.cue("rate")  # a prompt playing again for the next page change to cut
                first_bytes(sink, set(sink.glob("*.raw")) - set())
        finally:
            voice.close()

    def row(name: str, values: list[float]) -> str:
        ms = sorted(v * 1000 for v in values)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        return f"| {name:<52} | {statistics.median(ms):8.2f} | {p95:8.2f} |"

    print(f"{runs} page changes{' (smoke)' if args.smoke else ''}\n")
    print(f"| {'step':<52} | {'p50 ms':>8} | {'p95 ms':>8} |")
    print(f"|{'-' * 54}|{'-' * 10}|{'-' * 10}|")
    print(row("GUI thread: Voice.cue (queue only)", cue_s))
    print(row("page change to the prompt's first samples (kiosk)", start_s))
    print(row("aplay started directly to first samples (floor)", floor_s))


if __name__ == "__main__":
    main()
