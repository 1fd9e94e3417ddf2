#!/usr/bin/env bash
# make screenshot: runs the punchdrop tray in a real panel on a virtual X
# server and saves PNGs of it under build/screenshots:
#
#   tray-menu.png     the icon in the panel, its menu open on Peers > bob,
#                     and the notifications of a received file and a message
#   tray-busy.png     the icon while a large file arrives, with its tooltip
#   tray-busy-menu.png  the menu then, with the transfer's line
#   notification.png  the notifications alone, cropped
#
# Everything runs in a private session: Xvfb, a session bus of its own,
# lxqt-panel (its statusnotifier plugin hosts StatusNotifierItems), dunst,
# and two punchdrop nodes (alice runs the tray, bob an agent) with their
# own homes. STUN is a coturn on loopback when installed, else nothing:
# no public server is contacted. Needs: xvfb dbus lxqt-panel dunst xdotool
# imagemagick (apt-get install ...).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-bin/punchdrop}
OUT=${OUT:-build/screenshots}
WIDTH=1280 HEIGHT=720 PANEL=36

for tool in Xvfb dbus-daemon dbus-send lxqt-panel dunst xdotool import convert display; do
	command -v "$tool" >/dev/null || {
		echo "screenshot: $tool is missing (apt-get install xvfb dbus lxqt-panel dunst xdotool imagemagick)" >&2
		exit 1
	}
done
[ -x "$BIN" ] || { echo "screenshot: no $BIN (make build)" >&2; exit 1; }
BIN=$(realpath "$BIN")
mkdir -p "$OUT"

work=$(mktemp -d /tmp/punchdrop-screenshot.XXXXXX)
pids=()
cleanup() {
	# Stop in reverse order of start: the tray and agents first, so they
	# leave while their bus and display are still there.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		for _ in $(seq 30); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "${pids[i]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# until TIMEOUT_S COMMAND...: retries COMMAND every 0.1 s.
until_ok() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS > deadline)); then
			echo "screenshot: timed out waiting for: $*" >&2
			for f in "$work"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done
			exit 1
		fi
		sleep 0.1
	done
}

# X server on a free display.
Xvfb -displayfd 3 -screen 0 "${WIDTH}x${HEIGHT}x24" -nolisten tcp 3>"$work/display" 2>"$work/xvfb.log" &
pids+=($!)
until_ok 10 test -s "$work/display"
export DISPLAY=":$(head -1 "$work/display")"

# A session bus without service activation: only what we start answers.
cat >"$work/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$work/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file "$work/bus.conf" --nofork --print-address=1 >"$work/bus.addr" 2>"$work/dbus.log" &
pids+=($!)
until_ok 10 test -s "$work/bus.addr"
export DBUS_SESSION_BUS_ADDRESS=$(head -1 "$work/bus.addr")
export XDG_CONFIG_HOME="$work/config" XDG_CONFIG_DIRS="$work/config-dirs" XDG_CACHE_HOME="$work/cache"
export XDG_RUNTIME_DIR="$work/run" XDG_CURRENT_DESKTOP=LXQt
unset WAYLAND_DISPLAY
mkdir -p "$XDG_CONFIG_HOME/lxqt" "$XDG_CONFIG_DIRS" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

has_name() {
	dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner "string:$1" | grep -q 'boolean true'
}

# A desktop background, then the panel: the tray icon area, a clock.
convert -size "${WIDTH}x${HEIGHT}" gradient:'#6d9ad6'-'#1f2f4d' "$work/bg.png"
display -window root "$work/bg.png" || true
printf '[General]\ntheme=light\n' >"$XDG_CONFIG_HOME/lxqt/lxqt.conf"
cat >"$XDG_CONFIG_HOME/lxqt/panel.conf" <<EOF
[General]
__userfile__=true
panels=panel1

[panel1]
alignment=-1
animation-duration=0
desktop=0
hidable=false
iconSize=24
lineCount=1
lockPanel=true
panelSize=$PANEL
plugins=statusnotifier, worldclock
position=Bottom
width=100
width-percent=true

[statusnotifier]
type=statusnotifier

[worldclock]
type=worldclock
EOF
lxqt-panel >"$work/panel.log" 2>&1 &
pids+=($!)
until_ok 15 has_name org.kde.StatusNotifierWatcher

# Notifications, top right.
cat >"$work/dunstrc" <<'EOF'
[global]
    font = DejaVu Sans 10
    width = 380
    origin = top-right
    offset = 12x12
    frame_width = 1
    frame_color = "#3b6fb6"
    separator_height = 1
    separator_color = frame
    padding = 10
    horizontal_padding = 12
    markup = full
    format = "<b>%s</b>\n%b"
    show_indicators = yes
[urgency_normal]
    background = "#fdfdfd"
    foreground = "#202020"
    timeout = 0
EOF
dunst -config "$work/dunstrc" >"$work/dunst.log" 2>&1 &
pids+=($!)
until_ok 10 has_name org.freedesktop.Notifications

# STUN on loopback when coturn is installed, so the status line has an
# address; otherwise a port where nothing listens.
stun=127.0.0.1:9
if command -v turnserver >/dev/null; then
	turnserver -n --listening-ip=127.0.0.1 --listening-port=34781 --stun-only --no-auth --no-cli \
		--no-tls --no-dtls --log-file=stdout --simple-log >"$work/stun.log" 2>&1 &
	pids+=($!)
	stun=127.0.0.1:34781
fi

# bob: a plain agent. alice: `punchdrop` with no command, the tray app,
# which runs her agent itself.
for node in alice bob; do
	mkdir -p "$work/$node"
	printf 'name = "%s"\nstun_servers = ["%s"]\ndht = false\nlan_discovery = false\n' "$node" "$stun" >"$work/$node/config.toml"
done
"$BIN" agent --home "$work/bob" >"$work/bob.log" 2>&1 &
pids+=($!)
"$BIN" --home "$work/alice" >"$work/alice.log" 2>&1 &
pids+=($!)
until_ok 20 "$BIN" --home "$work/bob" id
until_ok 20 "$BIN" --home "$work/alice" id
registered() {
	dbus-send --session --print-reply --dest=org.kde.StatusNotifierWatcher /StatusNotifierWatcher \
		org.freedesktop.DBus.Properties.Get string:org.kde.StatusNotifierWatcher string:RegisteredStatusNotifierItems |
		grep -q StatusNotifierItem
}
until_ok 15 registered
sleep 3 # NAT discovery fills in the status line; the tray re-reads it

# Make them peers and send alice a file and a message.
"$BIN" --home "$work/alice" connect "$("$BIN" --home "$work/bob" id 2>/dev/null | head -1)" >/dev/null
"$BIN" --home "$work/bob" connect "$("$BIN" --home "$work/alice" id 2>/dev/null | head -1)" >/dev/null
until_ok 30 sh -c "'$BIN' --home '$work/alice' peers --json | grep -q '\"state\": \"connected\"'"
mkdir -p "$work/files"
head -c 3500000 /dev/urandom >"$work/files/holiday-photos.zip"
"$BIN" --home "$work/bob" send alice "$work/files/holiday-photos.zip" >/dev/null
until_ok 30 test -f "$work/alice/Downloads/holiday-photos.zip"
"$BIN" --home "$work/bob" msg alice "The photos from Lisbon are on their way!" >/dev/null
sleep 2

# The icon is the first thing in the panel, at its left end.
icon_x=22 icon_y=$((HEIGHT - PANEL / 2))
xdotool mousemove "$icon_x" "$icon_y" click 3
sleep 1
# Down to Peers (the status lines cannot be selected), into it, into bob.
xdotool key Down Down Down Right
sleep 0.5
xdotool key Right
sleep 1
import -window root "$OUT/tray-menu.png"
xdotool key Escape Escape Escape
sleep 0.3
convert "$OUT/tray-menu.png" -crop 420x150+$((WIDTH - 420))+0 +repage "$OUT/notification.png"

# A large file arriving: the icon turns green, and the tooltip says so.
dunstctl close-all 2>/dev/null || true
truncate -s 6G "$work/files/disk-image.iso"
"$BIN" --home "$work/bob" send alice "$work/files/disk-image.iso" >/dev/null
until_ok 30 sh -c "'$BIN' --home '$work/alice' status | grep -q receiving"
xdotool mousemove $((WIDTH / 2)) $((HEIGHT / 2))
sleep 2 # the tray turns the icon green within a render
xdotool mousemove "$icon_x" "$icon_y"
sleep 0.3
xdotool mousemove_relative 1 1 # a move inside the icon starts the tooltip timer
sleep 3
xdotool mousemove_relative -- -1 -1
import -window root "$OUT/tray-busy.png"
xdotool mousemove $((WIDTH / 2)) $((HEIGHT / 2))
sleep 0.5
xdotool mousemove "$icon_x" "$icon_y" click 3
sleep 1
import -window root "$OUT/tray-busy-menu.png"
xdotool key Escape

echo "screenshots in $OUT:"
ls -1 "$OUT"
