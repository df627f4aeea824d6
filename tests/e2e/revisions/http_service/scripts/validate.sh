#!/bin/sh
# ValidateService: GET /health until it answers 200 (a few tries); fails on purpose on the hosts named
# in the bundle's fail-validate-on.
set -eu
. "$(dirname "$0")/common.sh"
record
if [ -f "$REVISION_DIR/fail-validate-on" ] && grep -qx "$NAME" "$REVISION_DIR/fail-validate-on"; then
    echo "ValidateService fails on $NAME: it is named in fail-validate-on" >&2
    exit 1
fi
python3 - "$PORT" <<'PY'
import sys
import time
import urllib.request

url = f"http://127.0.0.1:{sys.argv[1]}/health"
last: object = None
for attempt in range(50):
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                print(f"{url} answered 200")
                sys.exit(0)
            last = answer.status
    except OSError as error:
        last = error
    time.sleep(0.1)
sys.exit(f"{url} never answered 200: {last}")
PY
