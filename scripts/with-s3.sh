#!/usr/bin/env bash
# Runs a command with a real S3 server (versitygw) on a free loopback port,
# exported to tests as MBACKUP_TEST_S3_*; stops the server afterwards. Like
# S3 services (and unlike versitygw by default) it keeps connections alive.
set -euo pipefail
bin="$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")"
[ -x "$bin" ] || { echo "versitygw not installed: run make tools" >&2; exit 2; }
dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export MBACKUP_TEST_S3_ENDPOINT="127.0.0.1:$port"
export MBACKUP_TEST_S3_ACCESS_KEY="mbackuptest"
export MBACKUP_TEST_S3_SECRET_KEY="mbackuptest-$(date +%s)"
ROOT_ACCESS_KEY="$MBACKUP_TEST_S3_ACCESS_KEY" ROOT_SECRET_KEY="$MBACKUP_TEST_S3_SECRET_KEY" \
	"$bin" --port "$MBACKUP_TEST_S3_ENDPOINT" --keep-alive --quiet posix "$dir" >"$dir.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir" "$dir.log"' EXIT
for _ in $(seq 100); do
	curl -s -o /dev/null "http://$MBACKUP_TEST_S3_ENDPOINT/" && break
	sleep 0.1
done
"$@"
