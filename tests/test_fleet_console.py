"""The console's 设备 page in Debian's chromium: who sees which devices, an offline device and an alarm
first, axe-core clean; a screenshot (docs/screenshots/console-devices.png with
KIOSK_REFRESH_SCREENSHOTS=1)."""

from __future__ import annotations

import json

import requests
from desk_support import desk_hub
from test_desk_console import browser, check_axe, login, shot  # noqa: F401  (the browser fixture)
from test_hub_support import signed_headers


def beat(env, device: str, report: dict) -> None:
    target = f"/api/v1/devices/{device}/heartbeat"
    body = json.dumps(report, ensure_ascii=False).encode()
    r = requests.post(
        env.url + target,
        data=body,
        headers=signed_headers(env.secrets[device], body, device, target=target),
        timeout=5,
    )
    assert r.status_code == 200, r.text


def test_the_devices_page(browser, tmp_path):  # noqa: F811
    with desk_hub(tmp_path) as env:
        serial = [
            {
                "name": "card",
                "port": "/dev/ttyCard",
                "state": "error",
                "detail": "unplugged",
                "frames": 3,
                "bad_frames": 0,
                "reconnects": 1,
            },
            {
                "name": "keypad",
                "port": "/dev/ttyKeypad",
                "state": "connected",
                "detail": "",
                "frames": 40,
                "bad_frames": 1,
                "reconnects": 0,
            },
        ]
        beat(
            env, "W1", {"window": "01", "heartbeat_s": 60, "version": "0.2.0", "pending": 0, "serial": serial}
        )
        context = browser.new_context(
            bypass_csp=True, locale="zh-CN", viewport={"width": 1280, "height": 900}
        )
        page = login(context, env, "admin")
        page.goto(f"{env.url}/console/devices")
        rows = page.locator("tbody tr")
        assert rows.count() == 2
        first, second = rows.nth(0).inner_text(), rows.nth(1).inner_text()
        assert first.startswith("W2") and "离线" in first and "从未上报" in first  # never heard from: first
        assert "W1" in second and "在线" in second and "读卡器：故障" in second and "串口故障" in second
        check_axe(page, "devices")
        shot(page, "devices")
        page.close()

        page = login(context, env, "d2")  # a dept user: its own section's devices only
        page.goto(f"{env.url}/console/devices")
        assert page.locator("tbody tr").count() == 1 and "W2" in page.locator("tbody tr").inner_text()
        page.close()

        page = login(context, env, "view")
        page.goto(f"{env.url}/console/devices")
        assert "无权访问" in page.content()
        assert page.locator("nav a", has_text="设备").count() == 0
        context.close()
