#!/bin/bash
# Install 好差评评价器 on a terminal (or, with --hub, the reference hub too) from this checkout.
#
#   sudo deploy/install.sh [--display x11|eglfs|linuxfb] [--hub]
#   deploy/install.sh --root DIR      # into a scratch root: files only, no system changes (CI)
#   deploy/install.sh --dry-run       # print what would be done, change nothing
#
# Idempotent: run it again to upgrade. It never overwrites what a technician edits (kiosk.toml,
# device.key, display.env, the udev rules, hub.env); the units and the software are replaced. See
# docs/deployment.md.
set -euo pipefail

usage() {
    sed -n '2,10s/^# \{0,1\}//p' "$0"
    cat <<'EOF'
Options:
  --root DIR       install below DIR instead of / (no systemctl start, udev reload or chown)
  --dry-run        print every step, change nothing
  --display KIND   x11 (default), eglfs or linuxfb: which /etc/kiosk/display.env to start from
  --hub            also install kiosk-hub.service, its user and /etc/kiosk-hub/hub.env
  --no-venv        skip building /opt/kiosk/venv (an image that ships it; the CI scratch-root test)
  --python PY      the Python (>= 3.11) that builds the venv (default: python3)
EOF
}

SOURCE=$(cd "$(dirname "$0")/.." && pwd)
ROOT=""
DRY_RUN=0
DISPLAY_KIND=x11
WITH_HUB=0
WITH_VENV=1
PYTHON=python3

while [ $# -gt 0 ]; do
    case $1 in
        --root) ROOT=$(realpath -m "${2:?--root needs a folder}"); shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --display) DISPLAY_KIND=${2:?--display needs x11, eglfs or linuxfb}; shift 2 ;;
        --hub) WITH_HUB=1; shift ;;
        --no-venv) WITH_VENV=0; shift ;;
        --python) PYTHON=${2:?--python needs an interpreter}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case $DISPLAY_KIND in
    x11|eglfs|linuxfb) ;;
    *) echo "install.sh: --display must be x11, eglfs or linuxfb, not $DISPLAY_KIND" >&2; exit 2 ;;
esac

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE/deploy/lib.sh"
require_root install.sh
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

PREFIX=/opt/kiosk
UNIT_DIR=/etc/systemd/system
UNITS=(kiosk.service kiosk-sync.service)

# install_file MODE SRC DST: replaced on every run (files this project owns).
install_file() { run install -D -m "$1" "$2" "$ROOT$3"; }

# install_once MODE SRC DST [GROUP]: only when absent, so a technician's edits survive upgrades.
install_once() {
    if [ -e "$ROOT$3" ]; then
        note "kept $3 (exists)"
        return
    fi
    run install -D -m "$1" "$2" "$ROOT$3"
    if [ -n "${4:-}" ]; then live chgrp "$4" "$3"; fi
}

create_users() {
    step "users"
    install_file 0644 "$SOURCE/deploy/kiosk.sysusers" /etc/sysusers.d/kiosk.conf
    if [ "$WITH_HUB" = 1 ]; then
        install_file 0644 "$SOURCE/deploy/kiosk-hub.sysusers" /etc/sysusers.d/kiosk-hub.conf
    fi
    if ! have systemd-sysusers; then
        note "skip: systemd-sysusers not found (install systemd)"
    elif [ -z "$ROOT" ]; then
        run systemd-sysusers
    elif grep -q '^kiosk:' "$ROOT/etc/passwd" 2>/dev/null; then
        # Unprivileged, systemd-sysusers cannot reopen the shadow files it made mode 0000.
        note "kept the users in $ROOT/etc/passwd"
    else
        run systemd-sysusers --root "$ROOT"
    fi
}

create_dirs() {
    step "directories"
    run install -d -m 0755 "$ROOT/etc/kiosk" "$ROOT$PREFIX/bin" "$ROOT$PREFIX/doc"
    run install -d -m 0750 "$ROOT/var/lib/kiosk"
    live chown kiosk:kiosk /var/lib/kiosk
}

build_venv() {
    step "software in $PREFIX/venv"
    install_file 0755 "$SOURCE/deploy/display/x11-session.sh" "$PREFIX/bin/kiosk-x11-session"
    install_file 0644 "$SOURCE/docs/deployment.md" "$PREFIX/doc/deployment.md"
    if [ "$WITH_VENV" = 0 ]; then
        note "skip (--no-venv): $PYTHON -m venv $PREFIX/venv && pip install $SOURCE"
        return
    fi
    if [ ! -x "$ROOT$PREFIX/venv/bin/python" ]; then
        run "$PYTHON" -m venv "$ROOT$PREFIX/venv"
    fi
    run "$ROOT$PREFIX/venv/bin/pip" install --quiet --upgrade "$SOURCE"
}

install_config() {
    step "configuration in /etc/kiosk"
    # The example keeps the log next to the config; under systemd /etc is read-only, the state is not.
    sed 's|^path = "kiosk.db"|path = "/var/lib/kiosk/kiosk.db"|' "$SOURCE/config/kiosk.example.toml" \
        >"$WORK/kiosk.toml"
    if ! grep -q '^path = "/var/lib/kiosk/kiosk.db"' "$WORK/kiosk.toml"; then
        echo "install.sh: config/kiosk.example.toml has no [store] path = \"kiosk.db\" line to point at /var/lib/kiosk" >&2
        exit 1
    fi
    install_once 0640 "$WORK/kiosk.toml" /etc/kiosk/kiosk.toml kiosk
    # The hub secret: an empty placeholder that only root and the kiosk group can read, so that the
    # technician fills it in without having to get the mode right (kiosk doctor checks it).
    : >"$WORK/device.key"
    install_once 0640 "$WORK/device.key" /etc/kiosk/device.key kiosk
    install_once 0644 "$SOURCE/deploy/display/$DISPLAY_KIND.env" /etc/kiosk/display.env
    if [ "$DISPLAY_KIND" = x11 ]; then
        install_file 0644 "$SOURCE/deploy/display/kiosk-x11-session.desktop" \
            /etc/xdg/autostart/kiosk-x11-session.desktop
    fi
}

install_udev() {
    step "udev rules for stable serial names"
    install_once 0644 "$SOURCE/deploy/99-kiosk-serial.rules" /etc/udev/rules.d/99-kiosk-serial.rules
    if have udevadm; then
        live udevadm control --reload
        live udevadm trigger --subsystem-match=tty
    fi
}

install_hub() {
    step "hub"
    run install -d -m 0750 "$ROOT/etc/kiosk-hub"
    if [ -e "$ROOT/etc/kiosk-hub/hub.env" ]; then
        note "kept /etc/kiosk-hub/hub.env"
    else
        {
            echo "KIOSK_HUB_ADMIN_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
            echo "# PostgreSQL instead of /var/lib/kiosk-hub/hub.db (here, not on the command line: ps shows that):"
            echo "# KIOSK_HUB_DB=postgresql+psycopg://hub:PASSWORD@db.example/hub"
        } >"$WORK/hub.env"
        # Read by systemd itself (EnvironmentFile=), so root only.
        run install -m 0600 "$WORK/hub.env" "$ROOT/etc/kiosk-hub/hub.env"
    fi
    install_file 0644 "$SOURCE/deploy/kiosk-hub.service" "$UNIT_DIR/kiosk-hub.service"
    UNITS+=(kiosk-hub.service)
    install_nginx_site
}

# The supported layout: nginx in front (TLS, timeouts, per-address limits), the hub on 127.0.0.1 only.
install_nginx_site() {
    step "nginx site for the hub"
    run install -d -m 0755 "$ROOT/etc/nginx/sites-available" "$ROOT/etc/nginx/sites-enabled"
    install_once 0644 "$SOURCE/deploy/nginx/kiosk-hub.conf" /etc/nginx/sites-available/kiosk-hub
    run ln -sfn ../sites-available/kiosk-hub "$ROOT/etc/nginx/sites-enabled/kiosk-hub"
    # Debian's nginx.conf allows 768 connections a worker: stalled connections would use them up.
    local main="$ROOT/etc/nginx/nginx.conf"
    if [ -f "$main" ] && grep -Eq '^\s*worker_connections\s+[0-9]{1,3};' "$main"; then
        run sed -i -E 's/^(\s*)worker_connections\s+[0-9]+;/\1worker_connections 8192;/' "$main"
        note "nginx.conf: worker_connections 8192"
    fi
    if [ -f "$main" ] && ! grep -q '^worker_rlimit_nofile' "$main"; then
        run sed -i '1i worker_rlimit_nofile 16384;' "$main"
    fi
    note "put the TLS certificate in /etc/kiosk-hub/tls/, set server_name, then: nginx -t && systemctl reload nginx"
}

install_units() {
    step "systemd units"
    install_file 0644 "$SOURCE/kiosk.service" "$UNIT_DIR/kiosk.service"
    install_file 0644 "$SOURCE/deploy/kiosk-sync.service" "$UNIT_DIR/kiosk-sync.service"
    if [ "$WITH_HUB" = 1 ]; then install_hub; fi
    if ! have systemctl; then
        note "skip: systemctl not found; enable ${UNITS[*]} by hand"
    elif [ -z "$ROOT" ]; then
        run systemctl daemon-reload
        run systemctl enable "${UNITS[@]}"
    else
        run systemctl --root="$ROOT" enable "${UNITS[@]}"
    fi
}

create_users
create_dirs
build_venv
install_config
install_udev
install_units

step "done"
cat <<EOF
    Next: edit /etc/kiosk/kiosk.toml (device id, window, ports), put the hub's device secret in
    /etc/kiosk/device.key (printed by kiosk hub device add ID; the file is ready, root:kiosk 0640:
    write into it, keep its mode), check with
        sudo -u kiosk $PREFIX/venv/bin/kiosk doctor --config /etc/kiosk/kiosk.toml
    then: systemctl restart ${UNITS[*]}
EOF
