"""Routes of the fleet (docs/fleet.md): the devices' heartbeats and remote settings (signed device
requests), and for operators the device list, one device's recent heartbeats, and the settings of each
scope (every device, a section, one device).
"""

from __future__ import annotations

import json
import math
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from core.settings import SETTINGS, SettingError

from ..dependencies import Device, claimed_device, read_body, require_operator, verified_device
from ..errors import HubError
from ..fleet import Fleet, FleetMonitor

MAX_HEARTBEAT_BYTES = 64 * 1024

devices_router = APIRouter(tags=["devices"])
operators_router = APIRouter(tags=["fleet"], dependencies=[Depends(require_operator)])


def install(app: FastAPI, *, sweep_s: float | None = None) -> FleetMonitor:
    """The fleet's routes and its sweep (started and stopped with the app) on ``app``; the monitor is
    ``app.state.fleet_monitor``: alert channels connect to its ``channels``."""
    fleet = Fleet(app.state.store)
    monitor = FleetMonitor(fleet, sweep_s)
    app.state.fleet, app.state.fleet_monitor = fleet, monitor
    app.include_router(devices_router)
    app.include_router(operators_router)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI):
        monitor.start()
        try:
            async with outer(a) as state:
                yield state
        finally:
            monitor.stop()

    app.router.lifespan_context = lifespan
    return monitor


def _fleet(request: Request) -> Fleet:
    return request.app.state.fleet


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _own(device_id: str, caller: str, what: str) -> None:
    if caller != device_id:
        raise HubError(403, "forbidden", detail=f"a device may {what} only its own")


@devices_router.post("/api/v1/devices/{device_id}/heartbeat")
async def post_heartbeat(device_id: str, request: Request) -> dict[str, Any]:
    claim, secret = claimed_device(request)  # a stranger's body is never read
    body = await read_body(request, MAX_HEARTBEAT_BYTES)
    caller = verified_device(request, claim, secret, body)
    _own(device_id, caller, "report")
    try:
        report = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError, UnicodeError) as e:
        raise HubError(400, "malformed", detail=f"not a JSON document: {type(e).__name__}") from None
    if not isinstance(report, dict):
        raise HubError(400, "malformed", detail="expected a JSON object")
    fleet: Fleet = request.app.state.fleet
    monitor: FleetMonitor = request.app.state.fleet_monitor
    await run_in_threadpool(fleet.record_heartbeat, device_id, report)
    await run_in_threadpool(monitor.judge, device_id)
    version, _ = await run_in_threadpool(fleet.settings_for, device_id)
    return {"ok": True, "settings_version": version}


@devices_router.get("/api/v1/devices/{device_id}/settings")
def get_settings(
    device_id: str,
    caller: Device,
    fleet: Annotated[Fleet, Depends(_fleet)],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    _own(device_id, caller, "read settings")
    version, settings = fleet.settings_for(device_id)
    etag = f'"{version}"'
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse({"version": version, "settings": settings}, headers={"ETag": etag})


@operators_router.get("/api/v1/manage/devices")
def list_devices(fleet: Annotated[Fleet, Depends(_fleet)]) -> dict[str, Any]:
    listed = fleet.devices()
    return {"count": len(listed), "online": sum(d["online"] for d in listed), "devices": listed}


@operators_router.get("/api/v1/manage/devices/{device_id}")
def show_device(device_id: str, fleet: Annotated[Fleet, Depends(_fleet)]) -> dict[str, Any]:
    found = [d for d in fleet.devices() if d["id"] == device_id]
    if not found:
        raise HubError(404, "not_found", detail=f"no device {device_id}")
    return {
        **found[0],
        "history": fleet.history(device_id, limit=20),
        "alarmHistory": fleet.alarm_history(device_id),
    }


class SettingsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: str  # "*", "dept:CODE" or "device:ID"
    settings: dict[str, Any]


@operators_router.get("/api/v1/manage/settings")
def get_scope_settings(fleet: Annotated[Fleet, Depends(_fleet)], scope: str = "*") -> dict[str, Any]:
    versions = fleet.scope_settings(scope)
    return {
        "scope": scope,
        "current": versions[0] if versions else None,
        "versions": versions,
        "keys": {key: s.what for key, s in SETTINGS.items()},
    }


@operators_router.put("/api/v1/manage/settings")
def put_settings(change: SettingsChange, fleet: Annotated[Fleet, Depends(_fleet)]) -> dict[str, Any]:
    """The whole set of one scope, checked key by key before it is stored: a bad value is refused (422)
    with the reason and never reaches a device."""
    if any(isinstance(v, float) and not math.isfinite(v) for v in change.settings.values()):
        raise HubError(422, "invalid_setting", detail="values must be finite")
    try:
        number = fleet.set_settings(change.scope, change.settings, by="operator")
    except SettingError as e:
        raise HubError(422, "invalid_setting", detail=str(e)) from None
    except KeyError:
        raise HubError(404, "not_found", detail=f"no device {change.scope.partition(':')[2]}") from None
    return {"scope": change.scope, "number": number}
