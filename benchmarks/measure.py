"""What every benchmark shares: warm-up, interleaved rounds of product and baseline, percentiles, ratios.

Product and baseline are measured in the same run, on the same machine, alternately: after a warm-up
that is thrown away, each round takes one sample of each, the order reversed every other round, so a
machine that gets busier or quieter (2 cores shared with others) weighs on both alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def interleaved(
    contenders: dict[str, Callable[[], float]], rounds: int, warmup: int
) -> dict[str, list[float]]:
    """``rounds`` samples of each contender (a function measuring once, returning its figure), taken
    alternately after ``warmup`` unrecorded runs of each."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            samples[name].append(contenders[name]())
    return samples


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


def ratio(product: list[float], baseline: list[float]) -> str:
    """How many times the baseline the product takes, at the median and at p99."""
    p50 = percentile(product, 50) / percentile(baseline, 50)
    p99 = percentile(product, 99) / percentile(baseline, 99)
    return f"p50 {p50:.2f}x, p99 {p99:.2f}x"


def add_smoke_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, a few seconds: checks the benchmark runs (.ci/run); its figures mean nothing",
    )


def wait_serving(
    proc: subprocess.Popen, base: str, what: str = "the hub", timeout_s: float = 60, log: Path | None = None
) -> None:
    """Until ``base``/healthz answers 200. Otherwise the process is killed and the benchmark stops, saying
    why with the tail of ``log`` (its stderr) when there is one."""
    import requests  # only the benchmarks that start a server need it

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    tail = f": {log.read_text(errors='replace')[-2000:]}" if log is not None else ""
    raise SystemExit(f"{what} did not start{tail}")
