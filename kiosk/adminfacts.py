"""What the admin panel lists about this kiosk: device, version, window, serial devices, sync, network, QR."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core import __version__

from .netinfo import ip_addresses

if TYPE_CHECKING:
    from .controller import Kiosk

DEVICE_STATES = {"connected": "已连接", "waiting": "未连接（重试中）", "error": "故障"}
SYNC_STATES = {"ok": "正常", "offline": "离线", "error": "出错", "alarm": "告警"}


def admin_facts(kiosk: Kiosk) -> list[tuple[str, str]]:
    cfg = kiosk.config
    rows = [
        ("设备编号", cfg.device.id),
        ("软件版本", __version__),
        ("窗口", f"{cfg.device.window}号窗口 {cfg.device.hall}".strip()),
    ]
    for status in kiosk.devices.status():
        state = DEVICE_STATES.get(status.state, status.state)
        text = f"{state} · {status.port} · 帧 {status.frames} · 错误帧 {status.bad_frames} · 重连 {status.reconnects}"
        rows.append((f"串口 {status.name}", text + (f" · {status.detail}" if status.detail else "")))
    if not cfg.serial:
        rows.append(("串口", "未配置串口设备"))
    sync = kiosk.log.get_state("sync") or {}
    head = kiosk.log.head_seq()
    rows.append(("待同步事件", f"{max(0, head - int(sync.get('acked_seq') or 0))}（日志共 {head} 条）"))
    if sync:
        result = SYNC_STATES.get(str(sync.get("state")), str(sync.get("state")))
        last = sync.get("last_success_at") or "从未成功"
        # An old error beside 正常 would read as a current fault: problems only when not ok.
        problem = None if sync.get("state") == "ok" else sync.get("alarm") or sync.get("last_error")
        rows.append(("最近同步", f"{result} · 上次成功 {last}" + (f" · {problem}" if problem else "")))
    else:
        rows.append(("最近同步", "同步程序尚未运行"))
    remote = kiosk.remote
    if remote.error:
        rows.append(("远程设置", remote.error))
    else:
        kept = f" · 本机配置优先：{'，'.join(remote.local)}" if remote.local else ""
        rows.append(("远程设置", (f"版本 {remote.version}" if remote.version else "未收到") + kept))
    rows.append(("IP 地址", "，".join(ip_addresses()) or "无网络"))
    rows.append(("二维码", "已启用" if kiosk.secret else "未启用（无设备密钥或 [qr] 配置）"))
    return rows
