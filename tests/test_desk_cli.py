"""`kiosk hub user|dept|device … ` against a real SQLite hub folder."""

from __future__ import annotations

from commands.cli import main as kiosk


def test_users_sections_devices(tmp_path, capsys):
    data = ["--data", str(tmp_path)]
    assert kiosk(["hub", "dept", "add", "D1", "不动产登记科", *data]) == 0
    assert kiosk(["hub", "device", "add", "W1", "--dept", "D1", *data]) == 0
    assert kiosk(["hub", "device", "add", "W2", "--dept", "NOPE", *data]) == 2
    assert kiosk(["hub", "user", "add", "alice", "--role", "dept", "--dept", "D1", *data]) == 0
    assert kiosk(["hub", "user", "add", "bob", "--role", "dept", *data]) == 2
    assert kiosk(["hub", "user", "add", "carol", "--role", "supervisor", "--dept", "D1", *data]) == 2
    capsys.readouterr()
    assert kiosk(["hub", "user", "token", "alice", *data]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) >= 40
    assert kiosk(["hub", "device", "dept", "W1", "D9", *data]) == 2
    assert kiosk(["hub", "device", "dept", "W1", "D1", *data]) == 0
    assert kiosk(["hub", "user", "disable", "alice", *data]) == 0
    capsys.readouterr()
    assert kiosk(["hub", "user", "list", *data]) == 0
    listing = capsys.readouterr().out
    assert "alice\tdept\tD1\tdisabled" in listing and token not in listing
    assert kiosk(["hub", "user", "disable", "nobody", *data]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
