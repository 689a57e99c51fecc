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
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from core.settings import SETTINGS, SettingError

from ..dependencies import (
    ApiUser,
    Device,
    PageUser,
    claimed_device_off_loop,
    read_body,
    verified_device,
)
from ..desk.roles import ADMIN, SUPERVISOR, Principal
from ..errors import HubError
from ..fleet import DeviceAlarm, Fleet, FleetMonitor

MAX_HEARTBEAT_BYTES = 64 * 1024

devices_router = APIRouter(tags=["devices"])
operators_router = APIRouter(prefix="/api/v1/manage", tags=["fleet"])
console_router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


def install(app: FastAPI, *, sweep_s: float | None = None) -> FleetMonitor:
    """The fleet's routes and its sweep (started and stopped with the app) on ``app``; the monitor is
    ``app.state.fleet_monitor``: alert channels connect to its ``channels``."""
    fleet = Fleet(app.state.store)
    monitor = FleetMonitor(fleet, sweep_s)
    app.state.fleet, app.state.fleet_monitor = fleet, monitor
    monitor.channels.append(lambda alarm: _desk_alert(app, alarm))
    app.include_router(devices_router)
    app.include_router(operators_router)
    app.include_router(console_router)
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


def _desk_alert(app: FastAPI, alarm: DeviceAlarm) -> None:
    """The desk's alert channels ([[alerts]]) take device_offline; the other device alarms are logged."""
    app.state.alerts.device_alarm(alarm)


async def _fleet(request: Request) -> Fleet:  # async: no worker thread to read app.state
    return request.app.state.fleet


FleetData = Annotated[Fleet, Depends(_fleet)]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _own(device_id: str, caller: str, what: str) -> None:
    if caller != device_id:
        raise HubError(403, "forbidden", detail=f"a device may {what} only its own")


@devices_router.post("/api/v1/devices/{device_id}/heartbeat")
async def post_heartbeat(device_id: str, request: Request) -> dict[str, Any]:
    claim, secret = await claimed_device_off_loop(request)  # a stranger's body is never read
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
    version = await run_in_threadpool(_heartbeat, fleet, monitor, device_id, report)
    return {"ok": True, "settings_version": version}


def _heartbeat(fleet: Fleet, monitor: FleetMonitor, device_id: str, report: dict[str, Any]) -> str:
    """Keep the report, judge the device's alarms, and say which settings it should have: one worker
    thread for the three."""
    received_at = fleet.record_heartbeat(device_id, report)
    monitor.judge(device_id, (received_at, report))
    return fleet.settings_for(device_id)[0]


@devices_router.get("/api/v1/devices/{device_id}/settings")
def get_settings(
    device_id: str,
    caller: Device,
    fleet: FleetData,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    _own(device_id, caller, "read settings")
    version, settings = fleet.settings_for(device_id)
    etag = f'"{version}"'
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse({"version": version, "settings": settings}, headers={"ETag": etag})


def device_reader(user: ApiUser) -> Principal:
    """Who may see devices: admin and supervisor all of them, a dept user its own section's; 403 else."""
    if user.role not in (ADMIN, SUPERVISOR) and user.item_scope() is None:
        raise HubError(403, "forbidden", detail=f"a {user.role} user sees no devices")
    return user


def settings_admin(user: ApiUser) -> Principal:
    if user.role not in (ADMIN, SUPERVISOR):
        raise HubError(403, "forbidden", detail=f"a {user.role} user may not change settings")
    return user


DeviceReader = Annotated[Principal, Depends(device_reader)]
SettingsAdmin = Annotated[Principal, Depends(settings_admin)]


@operators_router.get("/devices", responses={401: {}, 403: {}})
def list_devices(fleet: FleetData, user: DeviceReader) -> dict[str, Any]:
    listed = fleet.devices(dept=user.item_scope())
    return {"count": len(listed), "online": sum(d["online"] for d in listed), "devices": listed}


@operators_router.get("/devices/{device_id}", responses={401: {}, 403: {}, 404: {}})
def show_device(device_id: str, fleet: FleetData, user: DeviceReader) -> dict[str, Any]:
    found = [d for d in fleet.devices(dept=user.item_scope()) if d["id"] == device_id]
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


@operators_router.get("/settings", responses={401: {}, 403: {}})
def get_scope_settings(fleet: FleetData, _user: SettingsAdmin, scope: str = "*") -> dict[str, Any]:
    versions = fleet.scope_settings(scope)
    return {
        "scope": scope,
        "current": versions[0] if versions else None,
        "versions": versions,
        "keys": {key: s.what for key, s in SETTINGS.items()},
    }


@operators_router.put("/settings", responses={401: {}, 403: {}, 404: {}, 422: {}})
def put_settings(change: SettingsChange, fleet: FleetData, user: SettingsAdmin) -> dict[str, Any]:
    """The whole set of one scope, checked key by key before it is stored: a bad value is refused (422)
    with the reason and never reaches a device."""
    if any(isinstance(v, float) and not math.isfinite(v) for v in change.settings.values()):
        raise HubError(422, "invalid_setting", detail="values must be finite")
    try:
        number = fleet.set_settings(change.scope, change.settings, by=user.name)
    except SettingError as e:
        raise HubError(422, "invalid_setting", detail=str(e)) from None
    except KeyError:
        raise HubError(404, "not_found", detail=f"no device {change.scope.partition(':')[2]}") from None
    return {"scope": change.scope, "number": number}


@console_router.get("/devices", response_class=HTMLResponse)
def devices_page(request: Request, user: PageUser, fleet: FleetData) -> Response:
    """设备: every device the user may see, online or not, with its ports, backlog, alarms and settings."""
    from .console import PageRefused, render  # the console's router imports the desk; loaded with it

    principal = user.principal
    if principal.role not in (ADMIN, SUPERVISOR) and principal.item_scope() is None:
        raise PageRefused(403, "无权访问", "只有系统管理员、督查和业务科室可以查看设备。", user)
    listed = fleet.devices(dept=principal.item_scope())
    listed.sort(key=lambda d: (d["online"], -len(d["alarms"]), d["id"]))  # what needs a look first
    sections = request.app.state.desk.sections()
    return render(
        request,
        "devices.html",
        user,
        devices=listed,
        online=sum(d["online"] for d in listed),
        sections=sections,
        alarm_labels=ALARM_LABELS,
        port_labels={"card": "读卡器", "ticket": "叫号/扫码", "keypad": "评价键盘"},
        state_labels={"connected": "正常", "waiting": "未连接", "error": "故障"},
    )


ALARM_LABELS = {
    "device_offline": "离线",
    "device_backlog": "积压",
    "device_clock": "时钟偏差",
    "device_serial_error": "串口故障",
    "device_disk_full": "磁盘将满",
}
