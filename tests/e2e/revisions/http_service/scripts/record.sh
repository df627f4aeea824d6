#!/bin/sh
# BeforeBlockTraffic, AfterBlockTraffic, BeforeAllowTraffic, AfterAllowTraffic: note that the event ran.
set -eu
. "$(dirname "$0")/common.sh"
record
