"""Roles and what each may see (contracts: admin, supervisor, dept, viewer). No I/O here.

- admin: users, sections, devices, settings, the audit log; no 差评 items and no phone numbers.
- supervisor (局机关大督查): every item, every action including the 复核 decision, phone numbers.
- dept (业务科室): only the items of its own section, everywhere; their phone numbers for 回访.
- viewer: figures only, no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN, SUPERVISOR, DEPT, VIEWER = "admin", "supervisor", "dept", "viewer"
ROLES = (ADMIN, SUPERVISOR, DEPT, VIEWER)
ROLE_LABELS = {ADMIN: "系统管理员", SUPERVISOR: "督查", DEPT: "业务科室", VIEWER: "只读（统计）"}


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user name, a role and, for ``dept``, the section code."""

    name: str
    role: str
    dept: str | None = None

    def sees_items(self) -> bool:
        return self.role in (SUPERVISOR, DEPT)

    def item_scope(self) -> str | None:
        """The one section whose items this user sees, or None for all (supervisor)."""
        return self.dept if self.role == DEPT else None

    def may_see_item(self, item_dept: str | None) -> bool:
        if self.role == SUPERVISOR:
            return True
        return self.role == DEPT and self.dept is not None and item_dept == self.dept

    def may_reveal_contact(self, item_dept: str | None) -> bool:
        return self.may_see_item(item_dept)  # the owning section, or a supervisor

    def sees_figures(self) -> bool:
        return self.role in ROLES

    def may_administer(self) -> bool:
        return self.role == ADMIN

    def sees_audit(self) -> bool:
        return self.role in (ADMIN, SUPERVISOR)


def check_user_fields(role: str, dept: str | None) -> str | None:
    """Why a user of ``role`` with ``dept`` cannot exist, or None."""
    if role not in ROLES:
        return f"role must be one of {', '.join(ROLES)}"
    if role == DEPT and not dept:
        return "a dept user needs --dept CODE"
    if role != DEPT and dept:
        return "only a dept user belongs to a section"
    return None
