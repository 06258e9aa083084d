#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx in *_test.go) for a bounded time.
# A crasher is written by go test under the package's testdata/fuzz folder:
# commit it, so that plain `go test` replays it forever after.
#
# Go 1.26's fuzz coordinator sometimes fails a run with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is busy, without
# any failing input (golang/go#75804, fixed in Go 1.27). Such a run is
# reported and ignored; a run that wrote a crasher always fails.
set -euo pipefail
fuzztime="${1:-30s}"
status=0
count() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
while IFS=: read -r file line; do
	pkg="./$(dirname "$file")"
	name="$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")"
	corpus="$pkg/testdata/fuzz/$name"
	before="$(count "$corpus")"
	echo "fuzz $pkg $name ($fuzztime)"
	out="$(mktemp)"
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >"$out" 2>&1; then
		tail -n 2 "$out"
	elif [ "$(count "$corpus")" = "$before" ] && grep -q '^    context deadline exceeded$' "$out" &&
		! grep -q -e 'Failing input written' -e '^panic' "$out"; then
		tail -n 4 "$out"
		echo "fuzz $pkg $name: ignored the fuzz coordinator's deadline race (golang/go#75804): no failing input"
	else
		cat "$out"
		status=1
	fi
	rm -f "$out"
done < <(git ls-files '*_test.go' | xargs grep -H '^func Fuzz' || true)
exit $status
