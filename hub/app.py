"""The hub's FastAPI application: the HTTP API for devices and operators and the phone rating page, over
one HubStore. This module only builds the app; the routes live in ``hub/routers/`` by audience, the
checks every route shares in ``hub/dependencies.py``.
"""

from __future__ import annotations

from fastapi import FastAPI

from .auth import DeviceAuthenticator
from .config import HubConfig
from .errors import install_error_handlers
from .routers import devices, operators, phone, upstream
from .storage import HubStore


def create_app(
    store: HubStore,
    admin_token: str | None = None,
    *,
    config: HubConfig | None = None,
    max_in_flight: int = devices.MAX_INGESTS_IN_FLIGHT,
) -> FastAPI:
    app = FastAPI(
        title="好差评 reference hub",
        version="1",
        description="Signed uploads of kiosk event logs, rosters, and the ratings export (docs/protocol.md).",
    )
    app.state.store = store
    app.state.config = config or HubConfig()
    app.state.admin_token = admin_token
    app.state.device_authenticator = DeviceAuthenticator(store.device_secret)
    app.state.ingest_slots = devices.IngestSlots(max_in_flight)
    install_error_handlers(app)

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(devices.router)
    app.include_router(phone.router)
    app.include_router(operators.router)
    app.include_router(upstream.router)
    return app
