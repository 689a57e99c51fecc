#!/bin/sh
# Run once by the kiosk's X session at login (installed as /opt/kiosk/bin/kiosk-x11-session,
# started by /etc/xdg/autostart/kiosk-x11-session.desktop): screen never blanks, screen and touch
# rotate together, and the kiosk service's user may draw on this display.
set -u
# shellcheck source=/dev/null
[ -r /etc/kiosk/display.env ] && . /etc/kiosk/display.env
rotate=${KIOSK_ROTATE:-normal}
touch_name=${KIOSK_TOUCH_NAME:-}

xset s off
xset s noblank
xset -dpms
xhost +SI:localuser:kiosk >/dev/null

case $rotate in
    normal) matrix="1 0 0 0 1 0 0 0 1" ;;
    left) matrix="0 -1 1 1 0 0 0 0 1" ;;
    right) matrix="0 1 0 -1 0 1 0 0 1" ;;
    inverted) matrix="-1 0 1 0 -1 1 0 0 1" ;;
    *) echo "kiosk-x11-session: KIOSK_ROTATE must be normal, left, right or inverted" >&2; exit 1 ;;
esac
xrandr -o "$rotate"
# Every touch device, or only the named one, gets the same rotation as the screen.
xinput list --name-only | while read -r name; do
    if [ -z "$touch_name" ] || [ "$name" = "$touch_name" ]; then
        # shellcheck disable=SC2086 # the matrix is nine separate numbers
        xinput set-prop "$name" "Coordinate Transformation Matrix" $matrix 2>/dev/null || true
    fi
done
