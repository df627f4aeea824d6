#!/bin/sh
# ApplicationStart: start this revision's service on the host's port, detached (its own session, no open
# outputs), and return once it listens (it writes its pid file then).
set -eu
. "$(dirname "$0")/common.sh"
"$REVISION_DIR/scripts/stop.sh"
failing=""
[ -f "$REVISION_DIR/failing" ] && failing="--failing"
setsid python3 "$REVISION_DIR/metered_service.py" --name "$NAME" --port "$PORT" $failing \
    --version "$(cat "$REVISION_DIR/version.txt")" --pid-file "$PID_FILE" \
    </dev/null >>"$SERVICE_DIR/service.log" 2>&1 &
tries=0
until [ -s "$PID_FILE" ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 500 ]; then
        echo "the service did not start; its log:" >&2
        tail -n 20 "$SERVICE_DIR/service.log" >&2
        exit 1
    fi
    sleep 0.02
done
echo "started $NAME $(cat "$REVISION_DIR/version.txt") on port $PORT (pid $(cat "$PID_FILE"))"
