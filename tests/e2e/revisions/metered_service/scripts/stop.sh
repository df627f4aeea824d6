#!/bin/sh
# ApplicationStop (and start.sh first): stop the running service, if any, and wait until it has exited.
set -eu
. "$(dirname "$0")/common.sh"
[ -s "$PID_FILE" ] || exit 0
pid=$(cat "$PID_FILE")
running() {  # the process exists and is not a zombie
    state=$(sed -n 's/^[0-9]* (.*) \(.\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}
if kill -TERM "$pid" 2>/dev/null; then
    while running "$pid"; do sleep 0.02; done
    echo "stopped the service (pid $pid)"
fi
rm -f "$PID_FILE"
