"""``kiosk hub`` as a child process on 127.0.0.1: the one launcher of the demo, the tests and the benchmarks.

It talks to the hub only over HTTP (``/healthz``), so it imports nothing of ``hub`` and works wherever
the ``kiosk`` command does. Stop (SIGTERM, as systemd would) or kill it, and start it again on the same
port with the same data.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.02


class HubProcessError(Exception):
    """The hub did not start; the message says why (and the end of its log when there is one)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def kiosk_command(*args: str) -> list[str]:
    """The command line of a ``kiosk`` subcommand run with this Python."""
    return [sys.executable, "-m", "commands.cli", *args]


class HubProcess:
    """``kiosk hub --data DATA`` on a free port (or ``port``); its output to ``log_path`` or nowhere."""

    def __init__(
        self,
        data: Path,
        *,
        port: int | None = None,
        admin_token: str | None = None,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        config: Path | None = None,
    ):
        self.data, self.port = Path(data), port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token, self.log_path, self.env = admin_token, log_path, env
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def args(self) -> list[str]:
        args = ["hub", "--data", str(self.data), "--port", str(self.port)]
        args += ["--config", str(self.config)] if self.config else []
        return args + (["--admin-token", self.admin_token] if self.admin_token else [])

    def start(self, timeout_s: float = STARTUP_TIMEOUT_S) -> HubProcess:
        """Start it and wait until it answers ``/healthz``; HubProcessError if it exits or stays silent."""
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, **(self.env or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        if self.log_path is not None:
            with self.log_path.open("ab") as out:
                self.proc = subprocess.Popen(
                    kiosk_command(*self.args()), stdout=out, stderr=subprocess.STDOUT, env=env
                )
        else:
            self.proc = subprocess.Popen(
                kiosk_command(*self.args()), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + timeout_s
        while not self.healthy():
            if self.proc.poll() is not None:
                raise HubProcessError(
                    f"kiosk hub exited with status {self.proc.returncode}{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise HubProcessError(f"kiosk hub did not answer on {self.url} within {timeout_s:.0f} s")
            time.sleep(POLL_S)
        return self

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).json().get("ok") is True
        except (requests.RequestException, ValueError):
            return False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it does not end in time."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the hub can tell."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
        return ": " + " | ".join(tail)
