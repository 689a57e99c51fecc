"""The supported layout, tested with a real nginx (Debian's nginx-light, installed by .ci/run): the shipped
site file deploy/nginx/kiosk-hub.conf in front of a hub, only its ports, upstream and certificate changed.

Issue 10 item 3: 1,100 half-sent requests made the bare hub's /healthz time out for 40 s ("Too many open
files"). Behind nginx they wait in nginx, and /healthz, devices and phones are still answered.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
from test_hub_support import ROOT, free_port, register, signed_headers, thread_hub, wait_until

from core.store import EventLog
from sync.client import HubClient, batch_body, encode_event

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed (.ci/run installs nginx-light)")
SITE = ROOT / "deploy" / "nginx" / "kiosk-hub.conf"
HALF_SENT = 1100  # what the hostile review opened


def site_for_test(hub_port: int, http_port: int, https_port: int, tls: Path) -> str:
    """The shipped site with this test's ports and certificate: every other line as shipped."""
    text = SITE.read_text(encoding="utf-8")
    replacements = {
        "server 127.0.0.1:8700;": f"server 127.0.0.1:{hub_port};",
        "    listen 80;": f"    listen 127.0.0.1:{http_port};",
        "    listen 443 ssl;": f"    listen 127.0.0.1:{https_port} ssl;",
        "/etc/kiosk-hub/tls/": f"{tls}/",
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return "\n".join(line for line in text.splitlines() if "listen [::]" not in line)


class Nginx:
    def __init__(self, folder: Path, hub_port: int):
        self.folder = folder
        tls = folder / "tls"
        tls.mkdir(parents=True)
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
            ]
            + ["-addext", "subjectAltName=IP:127.0.0.1"]
            + ["-keyout", str(tls / "privkey.pem"), "-out", str(tls / "fullchain.pem")],
            check=True,
            capture_output=True,
        )
        self.cert = tls / "fullchain.pem"
        self.http_port, self.https_port = free_port(), free_port()
        (folder / "site.conf").write_text(site_for_test(hub_port, self.http_port, self.https_port, tls))
        temp = "".join(
            f"{kind}_temp_path {folder}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # What install.sh sets in Debian's nginx.conf: connections enough to hold a flood of stalled ones.
        (folder / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"daemon off;\nworker_processes 1;\nworker_rlimit_nofile 16384;\npid {folder}/nginx.pid;\n"
            + f"error_log {folder}/error.log warn;\nevents {{ worker_connections 8192; }}\n"
            + f"http {{\naccess_log off;\n{temp}include {folder}/site.conf;\n}}\n"
        )
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.url = f"https://127.0.0.1:{self.https_port}"
        wait_until(self._up, what="nginx start")

    def _up(self) -> bool:
        assert self.proc.poll() is None, (
            self.proc.stderr.read().decode() if self.proc.stderr else "nginx exited"
        )
        try:
            return requests.get(f"{self.url}/healthz", verify=self.cert, timeout=2).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nginx")
    with thread_hub(folder / "hub") as hub:
        hub.secret = register(hub.store)
        nginx = Nginx(folder / "nginx", hub.port)
        try:
            yield hub, nginx
        finally:
            nginx.stop()


def test_the_site_file_passes_nginx_t(proxied):
    _hub, nginx = proxied
    out = subprocess.run(
        [NGINX, "-t", "-p", str(nginx.folder), "-c", str(nginx.folder / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_plain_http_is_sent_to_https(proxied):
    _hub, nginx = proxied
    r = requests.get(f"http://127.0.0.1:{nginx.http_port}/healthz", allow_redirects=False, timeout=5)
    assert r.status_code == 301 and r.headers["Location"].startswith("https://")


def test_a_v2_signed_upload_and_its_signed_answer_pass_through_unchanged(proxied, tmp_path):
    hub, nginx = proxied
    session = requests.Session()
    session.verify = str(nginx.cert)
    session.trust_env = False  # else $REQUESTS_CA_BUNDLE, if set, would win over session.verify
    client = HubClient(nginx.url, "XHA-W03", hub.secret, session=session)
    with EventLog(tmp_path / "kiosk.db") as log:
        log.append("staff_signin", {"staff_no": "0371", "staff_name": "王"})
        events = [encode_event(e) for e in log.events_after(0)]
        assert client.post_batch(batch_body("XHA-W03", log.log_id, events)) == 1


def test_half_sent_requests_no_longer_stop_healthz(proxied):
    """The attack of the hostile review, through nginx: 1,100 connections that never finish a request."""
    _hub, nginx = proxied
    stalled = []
    try:
        for _ in range(HALF_SENT):
            sock = socket.create_connection(("127.0.0.1", nginx.https_port), timeout=5)
            sock.sendall(b"\x16\x03\x01")  # the first bytes of a TLS handshake, then nothing
            stalled.append(sock)
        started = time.monotonic()
        r = requests.get(f"{nginx.url}/healthz", verify=nginx.cert, timeout=5)
        assert r.status_code == 200 and r.json() == {"ok": True}
        assert time.monotonic() - started < 5
    finally:
        for sock in stalled:
            sock.close()


def test_a_stalled_upload_is_held_by_nginx_not_the_hub(proxied):
    """A signed upload whose body never completes: nginx buffers it, the hub never starts reading it."""
    hub, nginx = proxied
    context = ssl.create_default_context(cafile=str(nginx.cert))
    raw = socket.create_connection(("127.0.0.1", nginx.https_port), timeout=5)
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
    try:
        headers = signed_headers(hub.secret, b"")
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(
            f"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n{head}\r\n".encode() + b"{"
        )
        time.sleep(0.3)  # the stall itself: give the request time to reach the hub, if it ever would
        app = hub.server.config.app
        while not hasattr(app, "state"):
            app = app.app
        assert app.state.body_reads.used == 0
    finally:
        sock.close()


def test_the_phone_page_is_limited_per_address(proxied):
    _hub, nginx = proxied
    statuses = [
        requests.get(f"{nginx.url}/q/not-a-token", verify=nginx.cert, timeout=5).status_code
        for _ in range(40)
    ]
    assert 429 in statuses and statuses[0] == 400  # the first ones reach the hub (a bad token), then limited


def test_an_oversized_body_is_refused_by_nginx(proxied):
    _hub, nginx = proxied
    r = requests.post(
        f"{nginx.url}/api/v1/events", data=b"x" * (3 * 1024 * 1024), verify=nginx.cert, timeout=10
    )
    assert r.status_code == 413
