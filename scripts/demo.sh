#!/usr/bin/env bash
# Quick-start demo: set up, start a receiver ("Demo room") and share this machine's screen to it for a few
# seconds, then print what the receiver got (its statistics and snapshot files).
#
# With no $DISPLAY it starts its own Xvfb (1280x720) showing a moving test picture, and runs the receiver
# headless; with a display, the room window opens full screen on it and the real screen is shared.
#
# Environment: DEMO_SECONDS (how long to share, default 10), DEMO_PORT (receiver port, default 8443),
# DEMO_READY_TIMEOUT (seconds to wait for each part to start, default 30).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DEMO_SECONDS="${DEMO_SECONDS:-10}"
DEMO_PORT="${DEMO_PORT:-8443}"
DEMO_READY_TIMEOUT="${DEMO_READY_TIMEOUT:-30}"
ROOM_NAME="Demo room"

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

[[ $DEMO_SECONDS =~ ^[0-9]+([.][0-9]+)?$ ]] || die "DEMO_SECONDS must be a number of seconds, not '$DEMO_SECONDS'"
[[ $DEMO_PORT =~ ^[0-9]+$ ]] || die "DEMO_PORT must be a port number, not '$DEMO_PORT'"
[[ $DEMO_READY_TIMEOUT =~ ^[0-9]+$ ]] || die "DEMO_READY_TIMEOUT must be whole seconds"

bash scripts/setup.sh
BIN="$ROOT/.venv/bin"

TMP="$(mktemp -d -t coalesce-demo.XXXXXX)"
PIN="$(printf '%04d' $(($(od -An -N2 -tu2 /dev/urandom) % 10000)))"

SENDER_PID="" RECEIVER_PID="" DRAIN_PID="" PATTERN_PID="" XVFB_PID=""

# Waits up to $2 seconds for process $1 to exit; fails if it is still running.
await_exit() {
    local pid="$1" tick
    for ((tick = 0; tick < $2 * 10; tick++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$pid" 2>/dev/null
}

# TERM, then KILL if it has not exited within $2 seconds (default 5).
stop_pid() {
    local pid="$1" patience="${2:-5}"
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        await_exit "$pid" "$patience" || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$SENDER_PID"
    stop_pid "$RECEIVER_PID" 10
    stop_pid "$DRAIN_PID"
    stop_pid "$PATTERN_PID"
    stop_pid "$XVFB_PID"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Reads lines from fd $1, appending them to file $2, until one starts with $3. Fails on EOF or after $4 seconds.
MATCHED_LINE=""
wait_for_line() {
    local fd="$1" log="$2" want="$3" deadline=$((SECONDS + $4)) line
    while ((SECONDS < deadline)); do
        IFS= read -r -t "$((deadline - SECONDS))" -u "$fd" line || return 1
        printf '%s\n' "$line" >>"$log"
        if [[ $line == "$want"* ]]; then
            MATCHED_LINE="$line"
            return 0
        fi
    done
    return 1
}

show_log() {
    printf -- '--- %s (last lines) ---\n' "$1" >&2
    tail -n 30 "$1" >&2 || true
}

start_xvfb() {
    local fifo="$TMP/xvfb.displayfd" number=""
    mkfifo "$fifo"
    # -displayfd: Xvfb picks a free display and writes its number to fd 3 once it accepts clients.
    Xvfb -displayfd 3 -screen 0 1280x720x24 -nolisten tcp -noreset 3>"$fifo" >"$TMP/xvfb.log" 2>&1 </dev/null &
    XVFB_PID=$!
    if ! read -r -t "$DEMO_READY_TIMEOUT" number <"$fifo" || [[ ! $number =~ ^[0-9]+$ ]]; then
        show_log "$TMP/xvfb.log"
        die "Xvfb did not start"
    fi
    export DISPLAY=":$number"
    say "no display found: started Xvfb on $DISPLAY (1280x720)"
    xsetroot -solid '#1b2a3a' >/dev/null 2>&1 || true
}

start_pattern() {
    local fifo="$TMP/pattern.out" fd
    mkfifo "$fifo"
    QT_QPA_PLATFORM=xcb PYTHONPATH="$ROOT" "$BIN/python" scripts/demo_pattern.py "Shared to \"$ROOM_NAME\" over WebRTC" \
        >"$fifo" 2>"$TMP/pattern.log" </dev/null &
    PATTERN_PID=$!
    exec {fd}<"$fifo"
    if ! wait_for_line "$fd" "$TMP/pattern.stdout.log" "ready" "$DEMO_READY_TIMEOUT"; then
        exec {fd}<&-
        show_log "$TMP/pattern.log"
        die "the test picture window did not start"
    fi
    exec {fd}<&-
    say "showing a moving test picture on $DISPLAY"
}

start_receiver() {
    local fifo="$TMP/receiver.out" fd
    local -a args=(--name "$ROOM_NAME" --pin "$PIN" --port "$DEMO_PORT"
        --stats-file "$TMP/stats.json" --snapshot-dir "$TMP/snapshots" --data-dir "$TMP/receiver-data")
    if [[ $HEADLESS -eq 1 ]]; then
        args+=(--headless)
    fi
    mkfifo "$fifo"
    "$BIN/coalesce-receiver" "${args[@]}" >"$fifo" 2>&1 </dev/null &
    RECEIVER_PID=$!
    exec {fd}<"$fifo"
    if ! wait_for_line "$fd" "$TMP/receiver.log" "listening on " "$DEMO_READY_TIMEOUT"; then
        exec {fd}<&-
        show_log "$TMP/receiver.log"
        die "the receiver did not start listening within ${DEMO_READY_TIMEOUT}s (port $DEMO_PORT in use? try DEMO_PORT=...)"
    fi
    # Keep reading its output into the log, so it never blocks on a full pipe; ends when the receiver exits.
    cat <&"$fd" >>"$TMP/receiver.log" &
    DRAIN_PID=$!
    exec {fd}<&-
    RECEIVER_PORT="${MATCHED_LINE##*:}"
    say "receiver \"$ROOM_NAME\" is ${MATCHED_LINE} (PIN $PIN)"
}

HEADLESS=0
if [[ -z ${DISPLAY:-} ]]; then
    HEADLESS=1
    start_xvfb
    start_pattern
else
    say "using your display $DISPLAY: the room window opens full screen and this screen is shared"
fi

start_receiver

say "sharing screen 1 to 127.0.0.1:$RECEIVER_PORT for ${DEMO_SECONDS}s"
sender_rc=0
"$BIN/coalesce" share --to "127.0.0.1:$RECEIVER_PORT" --pin "$PIN" --duration "$DEMO_SECONDS" \
    --name "Demo sender" </dev/null &
SENDER_PID=$!
# The stats file lists live shares only (rewritten every second), so keep the last copy taken while ours ran.
while kill -0 "$SENDER_PID" 2>/dev/null; do
    if grep -qs '"frames"' "$TMP/stats.json"; then
        cp "$TMP/stats.json" "$TMP/stats-while-sharing.json"
    fi
    sleep 0.5
done
wait "$SENDER_PID" || sender_rc=$?
SENDER_PID=""

# Stop the receiver first so its statistics and snapshots are final.
stop_pid "$RECEIVER_PID" 10
RECEIVER_PID=""
await_exit "$DRAIN_PID" 2 || true # it ends at the receiver's last line
stop_pid "$DRAIN_PID"
DRAIN_PID=""

echo
say "what the receiver got:"
got_stats=0
if [[ -s $TMP/stats-while-sharing.json ]]; then
    got_stats=1
    echo "statistics (last taken while sharing, from --stats-file $TMP/stats.json):"
    "$BIN/python" -m json.tool "$TMP/stats-while-sharing.json" || cat "$TMP/stats-while-sharing.json"
elif [[ -s $TMP/stats.json ]]; then
    echo "statistics (no share was ever live in them):"
    "$BIN/python" -m json.tool "$TMP/stats.json" || cat "$TMP/stats.json"
else
    echo "  (no statistics file was written: $TMP/stats.json)"
fi
echo
say "snapshots:"
snapshot_count=0
while IFS= read -r snapshot; do
    printf '  %s\n' "$snapshot"
    snapshot_count=$((snapshot_count + 1))
done < <(find "$TMP/snapshots" -type f 2>/dev/null | sort)
[[ $snapshot_count -gt 0 ]] || echo "  (none)"
echo
say "receiver log: $TMP/receiver.log; everything is kept in $TMP"

if [[ $sender_rc -ne 0 ]]; then
    show_log "$TMP/receiver.log"
    die "the sender exited with status $sender_rc"
fi
[[ $got_stats -eq 1 ]] || die "the receiver's statistics never showed the share"
say "done: shared for ${DEMO_SECONDS}s to \"$ROOM_NAME\""
