"""The ALSA sink of tests/test_voice.py: what aplay plays arrives on stdin (through the ALSA ``file``
plugin's pipe) and is written to ``DIR/<monotonic ns>.raw`` at the real-time rate, as a sound card would
take it, so killing the player cuts the recording. Usage: audio_pacer.py DIR BYTES_PER_SECOND."""

import contextlib
import fcntl
import os
import sys
import time

F_SETPIPE_SZ = 1031

out_dir, rate = sys.argv[1], int(sys.argv[2])
with contextlib.suppress(OSError):
    fcntl.fcntl(0, F_SETPIPE_SZ, 4096)  # a small pipe: little sound buffered when the player is killed
path = os.path.join(out_dir, f"{time.monotonic_ns()}.raw")
start = time.monotonic()
got = 0
with open(path, "wb") as f:
    while True:
        delay = start + got / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        chunk = os.read(0, 1024)
        if not chunk:
            break
        f.write(chunk)
        f.flush()
        got += len(chunk)
