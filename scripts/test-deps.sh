#!/usr/bin/env bash
# Installs what the test suite drives for real: redis-server (Redis store and
# scale-out tests), nginx (the proxy config of the compose setup) and
# Chromium (dashboard tests). Already-present tools are left alone; without
# root or apt-get it only reports what is missing, and the tests that need
# it skip (or fail when CI=true).
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: missing ${need[*]}; install them to run every test" >&2
  exit 0
fi
echo "test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The distribution's packages start daemons on their standard ports; the tests
# start their own instances on free loopback ports, so stop those.
if [[ " ${need[*]} " == *" nginx "* ]]; then
  (command -v service >/dev/null && service nginx stop) >/dev/null 2>&1 || true
fi
