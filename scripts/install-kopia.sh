#!/usr/bin/env bash
# Installs kopia (for the side-by-side benchmark only) into GOPATH/bin from
# the Go module proxy. kopia has no Debian package, and `go install
# github.com/kopia/kopia@VERSION` fails where the proxy refuses to list the
# module's versions (it looks them up for deprecation notices), so the
# exact version is built inside a throwaway module instead.
set -euo pipefail
version="${KOPIA_VERSION:-v0.21.1}"
out="$(go env GOPATH)/bin/kopia"
if [ -x "$out" ] && "$out" --version 2>/dev/null | grep -q "^$version "; then
	exit 0
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cd "$dir"
go mod init kopia-build >/dev/null 2>&1
go get "github.com/kopia/kopia@$version"
go build -trimpath -o "$out" github.com/kopia/kopia
"$out" --version
