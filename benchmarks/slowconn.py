"""The slow-connection attack of issue 10, against the bare hub and against the supported layout (nginx in
front), in the same run on the same hub process.

    python benchmarks/slowconn.py [--connections 1100] [--probes 5] [--smoke]

1. ``kiosk hub`` with a soft open-files limit of 1024 (systemd's default without LimitNOFILE, what the
   hostile review attacked); nginx (tests/test_nginx.py's runner: the shipped site file) in front of it.
2. Baseline: /healthz latency, direct and through nginx (warmed up, interleaved).
3. Attack: ``--connections`` connections that send the start of a request and then nothing; /healthz is
   probed while they are held (each probe gives up after 5 s), first on the bare hub, then through nginx.
"""

from __future__ import annotations

import argparse
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_nginx import NGINX, Nginx  # noqa: E402

from benchmarks.measure import wait_serving  # noqa: E402
from commands.hubprocess import free_port  # noqa: E402

PROBE_TIMEOUT_S = 5.0


def start_hub(data: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()

    def soft_limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    proc = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "hub", "--data", str(data), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=soft_limit,
    )
    wait_serving(proc, f"http://127.0.0.1:{port}", timeout_s=30)
    return proc, port


def probe(url: str, verify) -> float:
    """Seconds until /healthz answers 200; PROBE_TIMEOUT_S (or more) when it does not."""
    started = time.monotonic()
    try:
        ok = requests.get(f"{url}/healthz", timeout=PROBE_TIMEOUT_S, verify=verify).status_code == 200
    except requests.RequestException:
        ok = False
    elapsed = time.monotonic() - started
    return elapsed if ok else max(elapsed, PROBE_TIMEOUT_S)


def half_sent(port: int, count: int, first_bytes: bytes) -> list[socket.socket]:
    held = []
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            sock.sendall(first_bytes)
            held.append(sock)
        except OSError:
            break  # the server stopped accepting: the attack is complete
    return held


def under_attack(
    url: str, port: int, verify, connections: int, probes: int, first: bytes
) -> tuple[int, list[float]]:
    held = half_sent(port, connections, first)
    try:
        return len(held), [probe(url, verify) for _ in range(probes)]
    finally:
        for sock in held:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--probes", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one probe each, for CI")
    args = parser.parse_args()
    if NGINX is None:
        raise SystemExit("nginx is not installed (apt-get install nginx-light)")
    probes = 1 if args.smoke else args.probes
    with tempfile.TemporaryDirectory() as tmp:
        hub, port = start_hub(Path(tmp) / "hub")
        nginx = Nginx(Path(tmp) / "nginx", port)
        direct = f"http://127.0.0.1:{port}"
        try:
            for _ in range(20):  # warm up both paths
                probe(direct, True), probe(nginx.url, nginx.cert)
            base_direct, base_proxy = [], []
            for _ in range(max(5, probes * 4)):  # interleaved
                base_direct.append(probe(direct, True))
                base_proxy.append(probe(nginx.url, nginx.cert))
            request_start = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            held_d, attacked_direct = under_attack(
                direct, port, True, args.connections, probes, request_start
            )
            tls_start = b"\x16\x03\x01"
            held_p, attacked_proxy = under_attack(
                nginx.url, nginx.https_port, nginx.cert, args.connections, probes, tls_start
            )
        finally:
            nginx.stop()
            hub.kill()
            hub.wait(10)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:8.1f} ms"

    print(f"{'/healthz, no attack, bare hub':<52} {ms(base_direct)}")
    print(f"{'/healthz, no attack, through nginx (TLS)':<52} {ms(base_proxy)}")
    print(
        f"{f'/healthz, {held_d} half-sent requests held, bare hub':<52} {ms(attacked_direct)}  (5000 ms = no answer)"
    )
    print(f"{f'/healthz, {held_p} half-sent requests held, nginx':<52} {ms(attacked_proxy)}")


if __name__ == "__main__":
    main()
