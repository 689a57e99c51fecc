# shellcheck shell=bash
# Shared by install.sh and uninstall.sh (sourced): how each step is printed and carried out.
# The caller sets ROOT ("" for the running system, else a scratch root) and DRY_RUN (0 or 1).

step() { echo "==> $*"; }
note() { echo "    $*"; }
have() { command -v "$1" >/dev/null 2>&1; }

# Every change goes through run: printed, and done unless this is a dry run.
run() {
    echo "    + $*"
    if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

# Commands that act on the running system (services, udev, ownership): never in a scratch root.
live() {
    if [ -z "$ROOT" ]; then run "$@"; else note "skip (scratch root): $*"; fi
}

# require_root SCRIPT: changing the running system needs root; a scratch root or a dry run does not.
require_root() {
    if [ -z "$ROOT" ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
        echo "$1: run as root (or use --root DIR / --dry-run)" >&2
        exit 2
    fi
}
