#!/bin/bash
# Remove what deploy/install.sh installed. Keeps the configuration, the udev rules, the event log
# (/var/lib/kiosk: ratings not yet at the hub live there) and the users unless --purge is given.
#
#   sudo deploy/uninstall.sh [--purge]
#   deploy/uninstall.sh --root DIR | --dry-run
set -euo pipefail

ROOT=""
DRY_RUN=0
PURGE=0
while [ $# -gt 0 ]; do
    case $1 in
        --root) ROOT=$(realpath -m "${2:?--root needs a folder}"); shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) sed -n '2,7s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root uninstall.sh

UNITS=(kiosk.service kiosk-sync.service kiosk-hub.service)

remove() { run rm -rf "${@/#/$ROOT}"; }

step "services"
if ! have systemctl; then
    note "skip: systemctl not found"
elif [ -z "$ROOT" ]; then
    run systemctl disable --now "${UNITS[@]}" || true
else
    run systemctl --root="$ROOT" disable "${UNITS[@]}" || true
fi
remove /etc/systemd/system/kiosk.service /etc/systemd/system/kiosk-sync.service \
    /etc/systemd/system/kiosk-hub.service /etc/xdg/autostart/kiosk-x11-session.desktop
if have systemctl; then live systemctl daemon-reload; fi

step "software"
remove /opt/kiosk

if [ "$PURGE" = 0 ]; then
    step "kept"
    note "/etc/kiosk, /etc/kiosk-hub, /etc/udev/rules.d/99-kiosk-serial.rules, the users kiosk and"
    note "kiosk-hub, and the event logs in /var/lib/kiosk and /var/lib/kiosk-hub (--purge removes them)"
    exit 0
fi

step "purge: configuration, event logs, users"
remove /etc/kiosk /etc/kiosk-hub /etc/udev/rules.d/99-kiosk-serial.rules /var/lib/kiosk /var/lib/kiosk-hub \
    /etc/sysusers.d/kiosk.conf /etc/sysusers.d/kiosk-hub.conf
if have udevadm; then live udevadm control --reload; fi
for user in kiosk kiosk-hub; do
    if [ -n "$ROOT" ] || getent passwd "$user" >/dev/null; then live userdel "$user"; fi
done
