"""The 差评 台账 against a bare query of the same rows: list and detail latency with 100,000 items among
1,000,000 ratings on SQLite, measured in one run, warmed up and interleaved.

    python benchmarks/desk.py [--ratings 1000000] [--items 100000] [--n 200] [--smoke] [--dir PATH]

Rows are bulk-inserted straight into the tables (the same rows ingest would make: ratings, the items
they derive, a history of actions on a tenth of the items). Measured, each beside its physical baseline:
- list: a 台账 page (50 items, newest first, status derived from the action record, deadlines on the
  working-day calendar) for a supervisor, for a dept user (one of ten sections), and overdue only;
  baseline: one SELECT of the same 50 item rows joined to their ratings;
- detail: one item with its history (and the workflow state replayed); baseline: the item row joined to
  its rating plus its action rows;
- the same list and detail through the HTTP API (uvicorn on 127.0.0.1, a bearer token).
``--smoke`` takes seconds: 20,000 ratings, 2,000 items, 30 samples.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import requests
import uvicorn
from sqlalchemy import insert, text

from core.events import ZERO_HASH
from hub.app import create_app
from hub.desk.roles import DEPT, SUPERVISOR, Principal
from hub.desk.settings import DeskSettings
from hub.desk.store import DeskStore, ItemFilter, action_hash
from hub.desk.tables import actions, device_sections, items, sections
from hub.schema import devices, ratings
from hub.storage import HubStore

SECTIONS = 10
CHUNK = 20_000


def fill(store: HubStore, n_ratings: int, n_items: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    today = date.today()
    engine = store.engine
    with engine.begin() as conn:
        conn.execute(
            insert(sections),
            [{"code": f"D{s}", "name": f"科室{s}", "created_at": "x"} for s in range(SECTIONS)],
        )
        conn.execute(
            insert(devices),
            [
                {"id": f"W{s}", "secret": "00" * 32, "area_code": "", "dept_code": "", "created_at": "x"}
                for s in range(SECTIONS)
            ],
        )
        conn.execute(
            insert(device_sections),
            [{"device_id": f"W{s}", "dept": f"D{s}", "at": "x"} for s in range(SECTIONS)],
        )
    bad_every = n_ratings // n_items
    item_rows, rating_rows, n_item = [], [], 0
    for seq in range(1, n_ratings + 1):
        device = f"W{seq % SECTIONS}"
        bad = seq % bad_every == 0 and n_item < n_items
        received = today - timedelta(days=rng.randint(0, 60))
        stamp = f"{received.isoformat()} 10:{seq % 60:02d}:00"
        rating_rows.append(
            {
                "device_id": device,
                "log_id": "L",
                "seq": seq,
                "window": f"{seq % 30:02d}",
                "staff_no": "0371",
                "staff_name": "王晓燕",
                "ticket_no": "A001",
                "case_no": f"3702112026{seq:08d}",
                "item_code": "X",
                "item_name": "不动产登记",
                "satisfaction": rng.choice((1, 2)) if bad else rng.choice((3, 4, 5)),
                "input": "touch",
                "at": stamp,
                "assess_time": stamp,
                "reasons": "101,201" if bad else None,
                "contact_sealed": None,
            }
        )
        if bad:
            n_item += 1
            item_rows.append(
                {
                    "device_id": device,
                    "log_id": "L",
                    "seq": seq,
                    "nonce": None,
                    "dept": f"D{seq % SECTIONS}",
                    "satisfaction": rating_rows[-1]["satisfaction"],
                    "assess_time": stamp,
                    "received": received.isoformat(),
                    "received_at": received.isoformat() + "T02:00:00+00:00",
                }
            )
        if len(rating_rows) >= CHUNK:
            _flush(engine, rating_rows, item_rows)
    _flush(engine, rating_rows, item_rows)
    # A history on a tenth of the items: 回访 then 整改, chained.
    prev, seq, rows = ZERO_HASH, 0, []
    for item_id in range(1, n_items + 1, 10):
        for action, status, payload in (
            ("callback", "called", '{"note":"","reached":true}'),
            ("rectify", "rectified", '{"note":"培训"}'),
        ):
            seq += 1
            row = {
                "seq": seq,
                "item_id": item_id,
                "at": "2026-11-30T01:00:00+00:00",
                "by_user": "u",
                "role": DEPT,
                "action": action,
                "payload": payload,
                "status": status,
                "prev_hash": prev,
            }
            row["hash"] = prev = action_hash(row)
            rows.append(row)
    with engine.begin() as conn:
        if rows:
            conn.execute(insert(actions), rows)


def _flush(engine, rating_rows: list, item_rows: list) -> None:
    with engine.begin() as conn:
        if rating_rows:
            conn.execute(insert(ratings), rating_rows)
        if item_rows:
            conn.execute(insert(items), item_rows)
    rating_rows.clear()
    item_rows.clear()


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000 if len(samples) >= 2 else samples[0] * 1000


def measure(cases: dict, n: int) -> dict[str, list[float]]:
    """Each case n times, interleaved (one of each per round), after a warm-up round."""
    for fn in cases.values():
        fn()
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(n):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    if args.smoke:
        args.ratings, args.items, args.n = 20_000, 2_000, 30
    if args.dir:
        run(args, args.dir)
    else:
        with tempfile.TemporaryDirectory(prefix="desk-bench-") as scratch:
            run(args, Path(scratch))


def run(args: argparse.Namespace, folder: Path) -> None:
    store = HubStore(f"sqlite:///{folder / 'hub.db'}")
    started = time.perf_counter()
    fill(store, args.ratings, args.items)
    print(
        f"filled {args.ratings:,} ratings, {args.items:,} items in {time.perf_counter() - started:.1f} s ({folder})"
    )
    settings = DeskSettings()
    desk = DeskStore(store.engine, settings.calendar, settings.working_days)
    sup, dept = Principal("s", SUPERVISOR), Principal("d", DEPT, "D3")
    rng = random.Random(1)

    bare_list = text(
        "SELECT i.*, r.window, r.staff_no, r.staff_name, r.case_no, r.reasons FROM desk_items i "
        "JOIN ratings r ON r.device_id = i.device_id AND r.log_id = i.log_id AND r.seq = i.seq "
        "ORDER BY i.id DESC LIMIT 50"
    )
    bare_item = text(
        "SELECT i.*, r.window, r.staff_no, r.case_no, r.reasons FROM desk_items i JOIN ratings r "
        "ON r.device_id = i.device_id AND r.log_id = i.log_id AND r.seq = i.seq WHERE i.id = :id"
    )
    bare_history = text("SELECT * FROM desk_actions WHERE item_id = :id ORDER BY seq")

    def bare_list_query() -> None:
        with store.engine.connect() as conn:
            conn.execute(bare_list).all()

    def bare_detail() -> None:
        item_id = rng.randint(1, args.items)
        with store.engine.connect() as conn:
            conn.execute(bare_item, {"id": item_id}).all()
            conn.execute(bare_history, {"id": item_id}).all()

    cases = {
        "bare list (50 rows)": bare_list_query,
        "台账 list, supervisor": lambda: desk.list_items(sup, ItemFilter(), 50, 0),
        "台账 list, dept user": lambda: desk.list_items(dept, ItemFilter(), 50, 0),
        "台账 list, overdue only": lambda: desk.list_items(sup, ItemFilter(overdue=True), 50, 0),
        "bare detail": bare_detail,
        "台账 detail": lambda: desk.item(sup, rng.randint(1, args.items)),
    }
    results = measure(cases, args.n)

    app = create_app(store, desk=settings)
    token = app.state.desk.new_token(app.state.desk.add_user("bench", SUPERVISOR, None) and "bench")
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/api/v1/manage"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    http = measure(
        {
            "API list (50 items)": lambda: session.get(
                f"{url}/bad-ratings?limit=50", timeout=30
            ).raise_for_status(),
            "API detail": lambda: session.get(
                f"{url}/bad-ratings/{rng.randint(1, args.items)}", timeout=30
            ).raise_for_status(),
        },
        max(10, args.n // 4),
    )
    server.should_exit = True
    thread.join(10)
    store.close()

    base = {"list": p95(results["bare list (50 rows)"]), "detail": p95(results["bare detail"])}
    print(f"{'case':<28}{'p50 ms':>10}{'p95 ms':>10}{'× bare p95':>12}")
    for name, samples in {**results, **http}.items():
        kind = "detail" if "detail" in name else "list"
        ratio = p95(samples) / base[kind]
        print(f"{name:<28}{statistics.median(samples) * 1000:>10.2f}{p95(samples):>10.2f}{ratio:>12.1f}")


if __name__ == "__main__":
    main()
