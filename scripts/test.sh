#!/usr/bin/env bash
# Runs the whole test suite, race detector on. It first installs the tools
# the tests drive (redis-server, nginx, chromium) when they are missing and
# it can; tests whose tool is still missing skip with a message, or fail
# when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
go vet ./...
go test -race -count=1 -timeout 15m ./... "$@"
