"""The hub's error answers: every API error is a JSON object with ``error`` (and the 409s also carry
``expected_seq`` and ``acked_seq``); the phone page answers in HTML, errors included."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .qrpage import PAGE_HEADERS, PageError, message_page


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
        return HTMLResponse(message_page(exc.title, exc.text), status_code=exc.status, headers=PAGE_HEADERS)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)
