"""The hall's big screen: the page (/screen) and its live feed (/screen/events, server-sent events).
Authenticated by the screen key (``kiosk hub screen-key``), given once as ``?key=`` and then kept in an
HttpOnly cookie; figures only, nothing personal (docs/figures.md "The hall's big screen")."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse

from ..errors import HubError
from ..figures.reports import environment
from ..figures.screen import ScreenFeed, screen_key_ok, sse

router = APIRouter(prefix="/screen", tags=["screen"], include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "figures" / "static"
COOKIE = "kiosk_screen"
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'",
}
POLL_S = 0.1  # how often a stream looks for new figures (the feed computes at most every 0.25 s)
BEAT_S = 10.0  # a comment-free "beat" event this often, so the page knows the line is alive
STREAM_S = 600.0  # a stream ends after this; the page reconnects at once (a hub can always restart)


def _key(request: Request, key: str | None) -> str:
    given = key or request.cookies.get(COOKIE)
    if given is None or not screen_key_ok(request.app.state.store.engine, given):
        raise HubError(401, "unauthorized", detail="missing or wrong screen key (kiosk hub screen-key)")
    return given


@router.get("", response_class=HTMLResponse)
async def screen_page(request: Request, key: Annotated[str | None, Query(max_length=128)] = None) -> Response:
    given = _key(request, key)
    feed: ScreenFeed = request.app.state.screen_feed
    data = await feed.latest()
    html = environment().get_template("screen.html").render(d=data)
    response = HTMLResponse(html, headers=HEADERS)
    response.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/screen", max_age=400 * 86400)
    return response


@router.get("/events")
async def screen_events(
    request: Request, key: Annotated[str | None, Query(max_length=128)] = None
) -> Response:
    _key(request, key)
    feed: ScreenFeed = request.app.state.screen_feed

    async def stream():
        yield "retry: 2000\n\n"
        sent, beat, started = None, time.monotonic(), time.monotonic()
        while time.monotonic() - started < STREAM_S:
            if await request.is_disconnected():
                return
            data = await feed.latest()
            if data is not sent:
                yield sse("figures", data)
                sent, beat = data, time.monotonic()
            elif time.monotonic() - beat > BEAT_S:
                yield sse("beat", {"at": data["updated"]})
                beat = time.monotonic()
            await asyncio.sleep(POLL_S)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={**HEADERS, "X-Accel-Buffering": "no"}
    )


@router.get("/static/{name}")
def screen_static(name: str) -> Response:
    path = STATIC / name
    if "/" in name or not path.is_file():
        raise HubError(404, "not_found")
    return FileResponse(path, headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})
