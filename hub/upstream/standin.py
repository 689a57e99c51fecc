"""A stand-in for the province's 好差评 system, written from the published field lists (docs/upstream.md),
for the tests, ``kiosk demo`` and ``benchmarks/upstream.py``: a real HTTP server on 127.0.0.1.

It checks every field and code of each record per profile (its own lists, not the sender's tables, so a
wrong table fails), verifies the signature, and holds records once per (projectNo, assessNumber): a
record it already holds is answered ok again (a re-delivery), the same key with other content is a
conflict. It injects faults on demand (500, 429 with Retry-After, a timeout, an answer lost after
storing, a broken answer after storing) and refuses records of item codes it does not know (a business
refusal, per record or for the whole batch as the profile answers). It counts everything, so a test
can say: every rating held exactly once, nothing missing, nothing sent twice at the same time.

It lives in the product, not in tests/, because ``kiosk demo`` starts one to show the upward report.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .signing import HMAC_SHA256, HmacSha256, sm2_public_key, sm2_verify

FAULT_KINDS = ("500", "429", "timeout", "lost", "broken")
TIMESTAMP_SKEW_S = 300

_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_AREA = re.compile(r"\d{6,9}")
_AREA_SD = re.compile(r"\d{6,12}")
_DEPT = re.compile(r"[0-9A-Z]{18}")
_CODES = re.compile(r"[A-Za-z0-9_]{1,16}(,[A-Za-z0-9_]{1,16})*")


def _text(required: bool, limit: int):
    def check(v: Any) -> str | None:
        if v is None:
            return "missing" if required else None
        if not isinstance(v, str) or (required and not v.strip()):
            return "not text"
        return "too long" if len(v) > limit else None

    return check


def _int_in(values, required: bool = True):
    def check(v: Any) -> str | None:
        if v is None:
            return "missing" if required else None
        return None if type(v) is int and v in values else f"not one of {min(values)}-{max(values)}"

    return check


def _match(regex: re.Pattern, required: bool):
    def check(v: Any) -> str | None:
        if v is None:
            return "missing" if required else None
        return None if isinstance(v, str) and regex.fullmatch(v) else "malformed"

    return check


def _time(v: Any) -> str | None:
    if not isinstance(v, str) or not _TIME.fullmatch(v):
        return "not yyyy-MM-dd HH:mm:ss"
    try:
        datetime.strptime(v, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return "not a date"
    return None


# The published field lists, as the province would check them. pf: 1 PC, 2 移动, 3 二维码, 4 政务大厅平板电脑,
# 5 其他终端/自助终端, 6, 7 by province; satisfaction 1 非常不满意 … 5 非常满意 for all three targets.
_ZHEJIANG_STYLE = {
    "projectNo": _text(True, 50),
    "taskCode": _text(True, 64),
    "taskName": _text(True, 200),
    "pf": _int_in(range(1, 8)),
    "satisfaction": _int_in(range(1, 6)),
    "evalDetail": _match(_CODES, False),
    "assessTime": _time,
    "areaCode": _match(_AREA, True),
    "deptCode": _match(_DEPT, True),
    "proManager": _text(False, 50),
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "json-v1": {
        **_ZHEJIANG_STYLE,
        "assessNumber": _int_in(range(1, 100)),
        "taskName": _text(False, 200),
        "deptCode": _match(_DEPT, False),
    },
    "zhejiang-offlinereport": {**_ZHEJIANG_STYLE, "assessNumber": _int_in((1, 2))},
    "shandong": {
        **{k: v for k, v in _ZHEJIANG_STYLE.items() if k != "proManager"},
        "serviceNumber": _int_in((1, 2)),
        "areaCode": _match(_AREA_SD, True),
    },
}
KEY_FIELDS = {
    "json-v1": "assessNumber",
    "zhejiang-offlinereport": "assessNumber",
    "shandong": "serviceNumber",
}


class _Refusal(Exception):
    """A business refusal of the whole request (bad signature, malformed envelope)."""


class StandinProvince:
    """``with StandinProvince("json-v1", key=KEY) as province: … province.url …``"""

    def __init__(
        self,
        profile: str = "json-v1",
        *,
        key: bytes,
        app: str = "APPMARK",
        signature: str = HMAC_SHA256,
        fault_rate: float = 0.0,
        faults: tuple[str, ...] = FAULT_KINDS,
        seed: int = 0,
        reject_task_codes: tuple[str, ...] = (),
        timeout_s: float = 3.0,
        hold_s: float = 0.0,
        retry_after: str = "1",
    ):
        if profile not in SCHEMAS:
            raise ValueError(f"no stand-in for profile {profile!r}")
        self.profile, self.app, self.signature = profile, app, signature
        self._hmac = HmacSha256(key) if signature == HMAC_SHA256 else None
        self._sm2_public = None if self._hmac else sm2_public_key(key)
        self.fault_rate, self.faults = fault_rate, faults
        self.reject_task_codes = set(reject_task_codes)
        self.timeout_s, self.hold_s, self.retry_after = timeout_s, hold_s, retry_after
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.held: dict[tuple[Any, Any], dict[str, Any]] = {}
        self.counts: Counter[str] = Counter()
        self._in_flight: Counter[tuple[Any, Any]] = Counter()
        self._connections: set = set()  # open client connections, closed by stop() like a real outage
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/report"

    def start(self) -> StandinProvince:
        handler = type("Handler", (_Handler,), {"province": self})
        server = _QuietServer(("127.0.0.1", self.port), handler)
        server.daemon_threads = True
        self._server, self.port = server, server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="standin-province", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> StandinProvince:
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Nothing listens on the port while inside: connections are refused."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"held": len(self.held), **dict(self.counts)}

    # --- checks -------------------------------------------------------------------------------------

    def check_signature(self, headers, body: bytes, envelope: dict[str, Any] | None) -> None:
        if self.profile == "shandong":
            assert envelope is not None
            inner = envelope["txnBodyCom"]
            if inner.get("appMark") != self.app:
                raise _Refusal("appMark unknown")
            params = json.dumps(inner["params"], ensure_ascii=False, separators=(",", ":")).encode()
            message, signature = str(inner["time"]).encode() + self.app.encode() + params, inner.get("sign")
        else:
            if headers.get("X-Upstream-App") != self.app:
                raise _Refusal("X-Upstream-App unknown")
            stamp = headers.get("X-Upstream-Timestamp", "")
            if not stamp.isdigit() or abs(int(stamp) - time.time()) > TIMESTAMP_SKEW_S:
                raise _Refusal("X-Upstream-Timestamp missing or stale")
            message, signature = stamp.encode() + b"\n" + body, headers.get("X-Upstream-Signature")
        if not isinstance(signature, str) or not (
            self._hmac.verify(message, signature)
            if self._hmac
            else sm2_verify(self._sm2_public or "", message, signature)
        ):
            raise _Refusal("signature does not verify")

    def check_record(self, record: Any) -> str | None:
        """Why the record is refused, or None."""
        schema = SCHEMAS[self.profile]
        if not isinstance(record, dict):
            return "a record is not an object"
        unknown = sorted(set(record) - set(schema) - {KEY_FIELDS[self.profile]})
        if unknown:
            return f"unknown fields {unknown}"
        for name, check in schema.items():
            problem = check(record.get(name))
            if problem:
                return f"{name}: {problem}"
        if record["taskCode"] in self.reject_task_codes:
            return f"事项编码 {record['taskCode']} 不在事项目录中"
        return None

    def records_of(self, body: bytes) -> tuple[list[Any], dict[str, Any] | None]:
        envelope = json.loads(body.decode("utf-8"))
        if self.profile == "json-v1":
            records = envelope["records"]
            if not isinstance(records, list) or not 1 <= len(records) <= 100:
                raise _Refusal("records: 1-100 expected")
            return records, None
        if self.profile == "zhejiang-offlinereport":
            return [envelope], None
        if set(envelope) != {"txnBodyCom", "txnCommCom"} or envelope["txnCommCom"] != {}:
            raise _Refusal("envelope: txnBodyCom and txnCommCom expected")
        inner = envelope["txnBodyCom"]
        if set(inner) != {"sign", "params", "time", "appMark"} or not re.fullmatch(
            r"\d{14}", str(inner["time"])
        ):
            raise _Refusal("txnBodyCom: sign, params, time (yyyyMMddHHmmss), appMark expected")
        records = inner["params"]["evaluate"]
        if not isinstance(records, list) or not records:
            raise _Refusal("params.evaluate: a list expected")
        return records, envelope

    # --- one request --------------------------------------------------------------------------------

    def fault(self) -> str | None:
        with self._lock:
            if self.fault_rate and self._random.random() < self.fault_rate:
                kind = self._random.choice(self.faults)
                self.counts[f"fault_{kind}"] += 1
                return kind
        return None

    def store(self, records: list[dict[str, Any]]) -> list[str | None]:
        """Hold each valid record once; the refusal message of each (None: held)."""
        number = KEY_FIELDS[self.profile]
        keys = [(r.get("projectNo"), r.get(number)) for r in records]
        with self._lock:
            self.counts["requests"] += 1
            self.counts["deliveries"] += len(records)
            for key in keys:
                if self._in_flight[key]:
                    self.counts["concurrent"] += 1
                self._in_flight[key] += 1
        try:
            if self.hold_s:
                time.sleep(self.hold_s)
            problems = [self.check_record(r) for r in records]
            batch_refused = self.profile == "shandong" and any(problems)
            results: list[str | None] = []
            with self._lock:
                for key, record, problem in zip(keys, records, problems, strict=True):
                    if problem or batch_refused:
                        self.counts["refused"] += 1
                        results.append(problem or "同批次中有被拒绝的评价")
                        continue
                    held = self.held.get(key)
                    if held is None:
                        self.held[key] = record
                        results.append(None)
                    elif held == record:
                        self.counts["redeliveries"] += 1
                        results.append(None)
                    else:
                        self.counts["conflicts"] += 1
                        results.append("该办件的本次评价已存在且内容不同")
            return results
        finally:
            with self._lock:
                for key in keys:
                    self._in_flight[key] -= 1

    def answer(self, records: list[Any], problems: list[str | None]) -> tuple[int, dict[str, str], bytes]:
        if self.profile == "json-v1":
            results = [
                {
                    "projectNo": r.get("projectNo"),
                    "assessNumber": r.get("assessNumber"),
                    "status": "rejected" if p else "ok",
                    "message": p or "",
                }
                for r, p in zip(records, problems, strict=True)
            ]
            return 200, {}, _json({"results": results})
        if self.profile == "zhejiang-offlinereport":
            (problem,) = problems
            return 200, {}, _json({"code": 400 if problem else 200, "msg": problem or "成功"})
        problem = next((p for p in problems if p), None)
        if problem:
            return 200, {"C-Response-Desc": "success"}, _json({"success": "false", "msg": problem})
        return 200, {"C-Response-Desc": "success"}, _json({"success": "true"})

    def refusal(self, why: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.counts["refused_requests"] += 1
        if self.profile == "json-v1":
            return 401, {}, _json({"error": why})
        if self.profile == "zhejiang-offlinereport":
            return 200, {}, _json({"code": 401, "msg": why})
        return 200, {"C-Response-Desc": "fail"}, _json({"success": "false", "msg": why})


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (the sender's timeout): nothing to report


class _Handler(BaseHTTPRequestHandler):
    province: StandinProvince
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.province._lock:
            self.province._connections.add(self.connection)

    def finish(self) -> None:
        with self.province._lock:
            self.province._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, *_args: Any) -> None:  # quiet: the counts say what happened
        pass

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        province = self.province
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        fault = province.fault()
        if fault == "500":
            return self._send(500, {}, b'{"error":"internal"}')
        if fault == "429":
            return self._send(429, {"Retry-After": province.retry_after}, b'{"error":"busy"}')
        try:
            records, envelope = province.records_of(body)
            province.check_signature(self.headers, body, envelope)
        except _Refusal as e:
            return self._send(*province.refusal(str(e)))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return self._send(400, {}, b'{"error":"malformed"}')
        problems = province.store([r if isinstance(r, dict) else {} for r in records])
        if fault == "timeout":
            time.sleep(province.timeout_s)  # stored, but the answer comes after the sender gave up
        if fault == "lost":  # stored, then the connection drops without an answer
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if fault == "broken":
            return self._send(200, {}, b'{"results": [{"projectNo"')
        self._send(*province.answer(records, problems))
        return None


def main(argv: list[str] | None = None) -> int:
    """``python -m hub.upstream.standin --profile P --key-hex HEX [--port N]``: serve until stopped;
    prints the URL on the first line and the counts on exit (for benchmarks and a technician's dry run)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="a stand-in provincial 好差评 server")
    parser.add_argument("--profile", default="json-v1", choices=sorted(SCHEMAS))
    parser.add_argument("--key-hex", required=True)
    parser.add_argument("--app", default="APPMARK")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    province = StandinProvince(
        args.profile, key=bytes.fromhex(args.key_hex), app=args.app, fault_rate=args.fault_rate
    )
    province.port = args.port
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with province:
        print(province.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    print(json.dumps(province.summary()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
