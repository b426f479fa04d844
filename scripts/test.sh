#!/usr/bin/env bash
# Runs the whole test suite, race detector on. It first installs the tools
# the tests drive (redis-server, nginx, chromium) when they are missing and
# it can; tests whose tool is still missing skip with a message, or fail
# when CI=true. go vet and staticcheck must be clean before any test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
go vet ./...

# staticcheck 2025.1.1 (module version v0.6.1), installed once per version
# into the user's cache.
staticcheck_version=v0.6.1
staticcheck_dir="${XDG_CACHE_HOME:-$HOME/.cache}/factstream/tools/staticcheck-$staticcheck_version"
if [[ ! -x "$staticcheck_dir/staticcheck" ]]; then
	echo "test.sh: installing staticcheck $staticcheck_version into $staticcheck_dir" >&2
	GOBIN="$staticcheck_dir" go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
"$staticcheck_dir/staticcheck" ./...

go test -race -count=1 -timeout 15m ./... "$@"
