#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx in *_test.go) for a bounded time.
# A crasher is written by go test under the package's testdata/fuzz folder:
# commit it, so that plain `go test` replays it forever after.
set -euo pipefail
fuzztime="${1:-30s}"
status=0
while IFS=: read -r file line; do
	pkg="./$(dirname "$file")"
	name="$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")"
	echo "fuzz $pkg $name ($fuzztime)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" || status=1
done < <(git ls-files '*_test.go' | xargs grep -H '^func Fuzz' || true)
exit $status
