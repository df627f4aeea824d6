#!/bin/sh
# ValidateService: GET /health must answer 200. With hold-validate in the revision, then say so
# ($SERVICE_DIR/validating-<deployment id>) and wait until the file it names exists: the test holds the
# deployment here while it watches what the new version does.
set -eu
. "$(dirname "$0")/common.sh"
python3 - "$PORT" <<'PY'
import sys
import time
import urllib.request

url = f"http://127.0.0.1:{sys.argv[1]}/health"
last: object = None
for attempt in range(100):
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                sys.exit(0)
            last = answer.status
    except OSError as error:
        last = error
    time.sleep(0.05)
sys.exit(f"{url} never answered 200: {last}")
PY
if [ -f "$REVISION_DIR/hold-validate" ]; then
    release=$(cat "$REVISION_DIR/hold-validate")
    touch "$SERVICE_DIR/validating-$DEPLOYMENT_ID"
    while [ ! -e "$release" ]; do sleep 0.05; done
    echo "released by $release"
fi
