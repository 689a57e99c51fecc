"""The hub's FastAPI application: the HTTP API for devices and operators and the phone rating page, over
one HubStore. This module only builds the app; the routes live in ``hub/routers/`` by audience, the
checks every route shares in ``hub/dependencies.py``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from .answer_signing import AnswerSigning
from .auth import DeviceAuthenticator
from .config import HubConfig
from .dependencies import BODY_READ_TIMEOUT_S, BodyReads
from .desk.alerts import Alerts
from .desk.settings import DeskSettings
from .desk.store import DeskStore, local_today
from .errors import install_error_handlers
from .figures import web as figures_web
from .routers import console, console_upstream, devices, fleet, manage, operators, phone, upstream
from .storage import HubStore

# Bodies read at once over all routes: enough for every kiosk of a hall at once, few enough that stalled
# uploads cannot hold the hub's memory (issue 10: 300 stalled uploads took it from 83 to 646 MB).
MAX_BODY_READS = 64


def create_app(
    store: HubStore,
    admin_token: str | None = None,
    *,
    config: HubConfig | None = None,
    max_in_flight: int = devices.MAX_INGESTS_IN_FLIGHT,
    max_body_reads: int = MAX_BODY_READS,
    body_read_timeout_s: float = BODY_READ_TIMEOUT_S,
    api_docs: bool = False,
    desk: DeskSettings | None = None,
    alert_interval_s: float = 30.0,
    alert_backoff_s: float = 10.0,
    fleet_sweep_s: float | None = None,
) -> FastAPI:
    """``api_docs``: serve /docs, /redoc and /openapi.json; off by default, as they map the whole API for
    anyone who can reach the hub (``kiosk hub --api-docs`` on a development network)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.alerts.start()  # only when [[alerts]] are configured
        try:
            yield
        finally:
            app.state.alerts.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="好差评 reference hub",
        version="1",
        description="Signed uploads of kiosk event logs, rosters, and the ratings export (docs/protocol.md).",
        docs_url="/docs" if api_docs else None,
        redoc_url="/redoc" if api_docs else None,
        openapi_url="/openapi.json" if api_docs else None,
    )
    app.state.store = store
    app.state.config = config or HubConfig()
    app.state.admin_token = admin_token
    app.state.device_authenticator = DeviceAuthenticator(store.device_secret, store.v1_allowed)
    app.state.ingest_slots = devices.IngestSlots(max_in_flight)
    app.state.body_reads = BodyReads(max_body_reads, body_read_timeout_s)
    desk = desk or DeskSettings.from_config(app.state.config)
    app.state.desk_settings = desk
    app.state.desk = DeskStore(store.engine, desk.calendar, desk.working_days, desk.today or local_today)
    app.state.alerts = Alerts(
        store.engine, app.state.desk, desk, interval_s=alert_interval_s, backoff_s=alert_backoff_s
    )
    install_error_handlers(app)
    app.add_middleware(AnswerSigning)

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(devices.router)
    app.include_router(phone.router)
    app.include_router(operators.router)
    app.include_router(manage.router)
    app.include_router(upstream.router)
    app.include_router(console_upstream.router)
    console.install(app)
    fleet.install(app, sweep_s=fleet_sweep_s)  # its device_offline alarms go to [[alerts]]
    figures_web.install(app)
    return app
