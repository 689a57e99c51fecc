"""``kiosk hub stats|report|posters``: the figures on the command line, the 通报 and the window posters.

``stats --verify`` is the guarantee of docs/figures.md: it recomputes the cells from the raw record and
compares them with what the hub serves; exit 1 and one line per difference when they disagree.
"""

from __future__ import annotations

import json
import sys
from datetime import date

from core.progress import task

from ..cli import EXIT_FAILURE, EXIT_OK, UsageError, _hub_config, _open_store, _run
from . import model as m
from .service import figure_store
from .views import stats_json


def period_bounds(args) -> tuple[str | None, str | None]:
    period, first, last = (
        getattr(args, "period", None),
        getattr(args, "first", None),
        getattr(args, "last", None),
    )
    try:
        if period:
            if first or last:
                raise UsageError("--period or --from/--to, not both")
            return m.period_range(period)
        for value in (first, last):
            if value is not None:
                date.fromisoformat(value)
                if len(value) != 10:
                    raise ValueError(value)
    except (ValueError, IndexError):
        raise UsageError(
            f"--period {period!r}: expected 2026-11, 2026Q4 or 2026-11-28; --from/--to yyyy-MM-dd"
        ) from None
    return first, last


@_run
def stats(args) -> int:
    """`kiosk hub stats`: the figures of a period as a table (or JSON); --verify checks them."""
    first, last = period_bounds(args)
    config = _hub_config(args)
    figures = figure_store(_open_store(args, config), config)
    if args.verify:
        from .sampling import check_samples

        with task("stats: folding new events", unit="events"):  # bars on a terminal only
            figures.refresh()
        with task("stats verify: replaying the record", unit="events"):
            problems = figures.verify(first, last)
        sample_problems, notes = check_samples(figures)
        head = figures.current_head()
        if args.json:  # for a monitoring script: the same verdict and lines, and the same exit code
            verdict = {
                "ok": not (problems or sample_problems),
                "first": first,
                "last": last,
                "head": head.digest,
                "differences": problems,
                "sampleDifferences": sample_problems,
                "notes": notes,
            }
            json.dump(verdict, sys.stdout, ensure_ascii=False, indent=1)
            print()
            return EXIT_OK if verdict["ok"] else EXIT_FAILURE
        for line in notes:
            print(f"note: {line}")
        for line in sample_problems:
            print(f"DIFFERENCE {line}")
        span = f"{first or 'the beginning'} to {last or 'now'}"
        if problems or sample_problems:
            for line in problems:
                print(f"DIFFERENCE {line}")
            print(f"stats verify: {len(problems)} cells differ from the record ({span}; head {head.digest})")
            return EXIT_FAILURE
        print(f"stats verify: the served cells agree with the record ({span}; head {head.digest})")
        return EXIT_OK
    body = stats_json(figures.snapshot(first, last, keep=_keep(args.by)), args.by, first, last, m.Filters())
    if args.json:
        json.dump(body, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return EXIT_OK
    print(
        f"{'key':<14} {'label':<16} {'services':>8} {'rated':>6} {'good':>6} {'bad':>5} {'不属实':>5} {'满意率':>7} {'参评率':>7}"
    )
    for row in [*body["rows"], body["total"]]:
        print(
            f"{(row['key'] if row['key'] is not None else ''):<14} {row['label'][:16]:<16} {row['services']:>8} "
            f"{row['rated']:>6} {row['good']:>6} {row['bad']:>5} {row['not_adopted']:>5} "
            f"{_pct(row['satisfactionRate']):>7} {_pct(row['participationRate']):>7}"
        )
    print(f"record head {body['record']['head']}")
    return EXIT_OK


def _keep(by: str) -> tuple[str, ...]:
    return {"staff": ("staff_no",), "item": ("item_code",), "day": ("day",), "month": ("month",)}.get(by, ())


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@_run
def report(args) -> int:
    """`kiosk hub report`: one 通报 as HTML, PDF or XLSX."""
    from .reports import build_report, render

    first, last = period_bounds(args)
    if "-" in args.period and len(args.period) == 10:
        raise UsageError("--period: a 通报 covers a month (2026-11) or a quarter (2026Q4)")
    config = _hub_config(args)
    store = _open_store(args, config)
    figures = figure_store(store, config)
    with task("report: folding new events", unit="events"):  # bars on a terminal only
        figures.refresh()
    data = build_report(figures, config.figures, args.period, dept=args.dept, public=args.public)
    with task(f"report: writing {args.format}", total=1, unit="files") as writing:  # a PDF takes seconds
        body = render(data, args.format)
        writing.advance(1)
    with open(args.out, "wb") as out:
        out.write(body)
    print(f"wrote {args.out}")
    return EXIT_OK


@_run
def posters(args) -> int:
    """`kiosk hub posters`: an A4 page per window with its number, section and QR code."""
    from .posters import poster_pdf, windows_for_posters

    config = _hub_config(args)
    url = args.url or config.figures.poster_url
    if not url:
        raise UsageError("--url or [figures] poster_url: where the posters' QR code leads")
    figures = figure_store(_open_store(args, config), config)
    windows = windows_for_posters(figures)
    with open(args.out, "wb") as out:
        out.write(poster_pdf(windows, url, config.figures.hall_name))
    print(f"wrote {args.out}: {len(windows)} windows")
    return EXIT_OK


@_run
def screen_key(args) -> int:
    """`kiosk hub screen-key`: print a new key for the big screen; only its hash is kept."""
    from .screen import new_screen_key

    key = new_screen_key(_open_store(args).engine)
    print(key)
    print(
        "open /screen?key=<this key> on the hall's screen; the earlier key no longer works", file=sys.stderr
    )
    return EXIT_OK
