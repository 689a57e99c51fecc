"""The hub's error answers: every API error is a JSON object with ``error`` (and the 409s also carry
``expected_seq`` and ``acked_seq``); the phone page answers in HTML, errors included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .qrpage import METHOD_NOT_ALLOWED, NOT_FOUND, PAGE_HEADERS, SERVER_ERROR, PageError, message_page


def _phone_page(request: Request) -> bool:
    """A request under /q/: a citizen's phone, which gets a Chinese page rather than JSON."""
    path = request.url.path
    return path == "/q" or path.startswith("/q/")


def _page_answer(exc: PageError, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(
        message_page(exc.title, exc.text), status_code=exc.status, headers={**PAGE_HEADERS, **(headers or {})}
    )


class HubError(Exception):
    """An answer other than 200: status, JSON body and headers."""

    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None, **fields: Any):
        super().__init__(error)
        self.status, self.headers = status, headers
        self.body = {"error": error, **fields}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "malformed", "detail": "; ".join(problems[:5])}, status_code=400)

    @app.exception_handler(PageError)
    async def page_error(_request: Request, exc: PageError) -> HTMLResponse:
        return _page_answer(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse | HTMLResponse:
        if _phone_page(request):
            page = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED}.get(exc.status_code)
            title, text = (page.title, page.text) if page else ("无法处理此请求", NOT_FOUND.text)
            return _page_answer(PageError(exc.status_code, title, text), exc.headers)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> HTMLResponse | PlainTextResponse:
        # Starlette logs the exception and its traceback after this answer; nothing personal is in it.
        if _phone_page(request):
            return _page_answer(SERVER_ERROR)
        return PlainTextResponse("Internal Server Error", status_code=500)
