"""Upward throughput against the physical limit: the sender draining a backlog of the outbox to a
stand-in province, beside raw POSTs of the same kind of bodies to the same stand-in in the same run.

    python benchmarks/upstream.py [--records 100000] [--profile json-v1] [--db URL] [--smoke]

1. A hub database (SQLite in a temporary folder, or ``--db``) holding ``--records`` ratings, each with
   its pending outbox record (filled in one transaction: the fill is not measured).
2. The stand-in province in its own process (``python -m hub.upstream.standin``), no faults.
3. Raw: request bodies mapped and signed in advance (distinct keys, same sizes), POSTed in a loop over
   one kept-alive connection: the stand-in's and HTTP's limit.
4. Sender: ``Sender.send_once`` rounds as the hub runs them (lease with a commit, read and map, sign,
   POST, record outcomes with a commit). Raw and sender alternate in slices after a warm-up, so both
   see the same machine state. The whole backlog is drained; its time is reported.
Target: sender >= 50 % of raw.
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from hub.schema import devices, ratings  # noqa: E402
from hub.storage import HubStore  # noqa: E402
from hub.upstream import outbox  # noqa: E402
from hub.upstream.profiles import PROFILES, WINDOW, UpstreamRating  # noqa: E402
from hub.upstream.sender import Sender, Target  # noqa: E402
from hub.upstream.signing import HmacSha256  # noqa: E402

KEY = bytes(range(32))
APP = "BENCH-APP"
DEVICE = "BENCH-W01"
FILL_CHUNK = 5000


def fill(store: HubStore, count: int) -> None:
    now = datetime.now().astimezone()
    with store.engine.begin() as conn:
        conn.execute(
            insert(devices).values(
                id=DEVICE,
                secret="00" * 32,
                area_code="370211",
                dept_code="11370211MB0000001X",
                created_at="x",
            )
        )
        for first in range(0, count, FILL_CHUNK):
            rows, records = [], []
            for i in range(first, min(count, first + FILL_CHUNK)):
                satisfaction = 1 + i % 5
                rows.append(
                    {
                        "device_id": DEVICE,
                        "log_id": "bench-log",
                        "seq": i + 1,
                        "window": "03",
                        "staff_no": "0371",
                        "staff_name": "王晓燕",
                        "ticket_no": f"A{i % 1000:03d}",
                        "case_no": f"3702112026{i:08d}",
                        "item_code": "11370211MB0000001X4000100001",
                        "item_name": "不动产登记（二手房转移登记）",
                        "satisfaction": satisfaction,
                        "input": "touch",
                        "at": now.isoformat(),
                        "assess_time": now.strftime("%Y-%m-%d %H:%M:%S"),
                        "reasons": "201,301" if satisfaction <= 2 else None,
                        "contact_sealed": None,
                    }
                )
                records.append(
                    {
                        "channel": WINDOW,
                        "device_id": DEVICE,
                        "log_id": "bench-log",
                        "seq": i + 1,
                        "project_no": f"3702112026{i:08d}",
                        "assess_number": 1,
                        "assess_day": now.strftime("%Y-%m-%d"),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": 0.0,
                        "created_at": now.isoformat(),
                    }
                )
            conn.execute(insert(ratings), rows)
            conn.execute(insert(outbox.outbox), records)


def raw_bodies(profile_name: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Bodies the sender would send (same fields, same batch size), distinct keys, signed now."""
    profile, signer = PROFILES[profile_name], HmacSha256(KEY)
    now = datetime.now().astimezone()
    mapped = [
        profile.map(
            UpstreamRating(
                f"RAW-3702112026{i:08d}",
                1,
                "11370211MB0000001X4000100001",
                "不动产登记（二手房转移登记）",
                WINDOW,
                1 + i % 5,
                ("201", "301") if i % 5 < 2 else None,
                now.strftime("%Y-%m-%d %H:%M:%S"),
                "370211",
                "11370211MB0000001X",
                "王晓燕",
            )
        )
        for i in range(count)
    ]
    out = []
    for first in range(0, count, profile.max_batch):
        request = profile.request(mapped[first : first + profile.max_batch], APP, signer, now)
        out.append((request.body, request.headers))
    return out


class RawClient:
    def __init__(self, url: str):
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.path = parts.path

    def post(self, body: bytes, headers: dict[str, str]) -> None:
        self.conn.request("POST", self.path, body=body, headers=headers)
        response = self.conn.getresponse()
        response.read()
        assert response.status == 200, response.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--profile", default="json-v1", choices=sorted(PROFILES))
    parser.add_argument("--db", help="a database URL instead of SQLite in a temporary folder")
    parser.add_argument("--slices", type=int, default=10, help="raw and sender alternate this many times")
    parser.add_argument("--smoke", action="store_true", help="2,000 records: seconds, not minutes")
    args = parser.parse_args()
    count = 2_000 if args.smoke else args.records
    profile = PROFILES[args.profile]
    with tempfile.TemporaryDirectory(prefix="bench-upstream-") as folder:
        store = HubStore(args.db or f"sqlite:///{Path(folder) / 'hub.db'}")
        started = time.perf_counter()
        fill(store, count)
        print(
            f"filled {count} ratings and outbox records in {time.perf_counter() - started:.1f} s", flush=True
        )
        province = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub.upstream.standin",
                "--profile",
                args.profile,
                "--key-hex",
                KEY.hex(),
                "--app",
                APP,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = province.stdout.readline().strip()
            bodies = raw_bodies(args.profile, count)
            raw, sender = (
                RawClient(url),
                Sender(store.engine, Target(profile, url, APP, HmacSha256(KEY), 30.0)),
            )
            warm = max(1, len(bodies) // 50)
            for body, headers in bodies[:warm]:  # warm-up: connections, caches, the stand-in's threads
                raw.post(body, headers)
            for _ in range(warm):
                sender.send_once()
            raw_s = sender_s = 0.0
            raw_done, sender_done = warm, 0
            per_slice = max(1, (len(bodies) - warm) // args.slices + 1)
            drain_started = time.perf_counter()
            while raw_done < len(bodies) or sender_done is not None:
                t = time.perf_counter()
                for body, headers in bodies[raw_done : raw_done + per_slice]:
                    raw.post(body, headers)
                raw_done = min(len(bodies), raw_done + per_slice)
                raw_s += time.perf_counter() - t
                if sender_done is None:
                    continue
                t = time.perf_counter()
                for _ in range(per_slice):
                    if sender.send_once().claimed == 0:
                        sender_done = None
                        break
                sender_s += time.perf_counter() - t
            drain_s = time.perf_counter() - drain_started
            sender.stop()
            with store.engine.connect() as conn:
                counts = outbox.counts(conn)
        finally:
            province.terminate()
            summary = province.communicate(timeout=30)[0].strip().splitlines()[-1]
        store.close()
    raw_rate = (len(bodies) - warm) * profile.max_batch / raw_s
    sent = counts["sent"]
    sender_rate = sent / sender_s if sender_s else 0.0
    print(f"profile {args.profile}, {count} records, batches of {profile.max_batch}")
    print(f"raw POSTs of the same bodies: {raw_rate:,.0f} records/s")
    print(f"sender:                       {sender_rate:,.0f} records/s ({sender_rate / raw_rate:.0%} of raw)")
    print(
        f"backlog of {count} drained, interleaved with the raw slices, in {drain_s:.1f} s "
        f"(sender's own share {sender_s:.1f} s); outbox: sent {sent} of {count}"
    )
    print(f"stand-in: {summary}")
    assert sent == count, counts


if __name__ == "__main__":
    main()
