# Sourced by the hook scripts: where this host keeps its service (a host-private tmpfs), and its
# configuration (NAME=<host name>, PORT=<port>) written there by the test.
SERVICE_DIR=/tmp/opendeploy-metered-service
PID_FILE="$SERVICE_DIR/service.pid"
REVISION_DIR=$(cd "$(dirname "$0")/.." && pwd)
. "$SERVICE_DIR/service.conf"
