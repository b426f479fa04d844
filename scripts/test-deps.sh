#!/usr/bin/env bash
# Installs what the test suite drives for real: redis-server (Redis store and
# scale-out tests), nginx (the proxy config of the compose setup), Chromium
# (dashboard tests) and nftables (dropping a client's packets on loopback, so
# that it vanishes without closing). Already-present tools are left alone; without
# root or apt-get it only reports what is missing, and the tests that need
# it skip (or fail when CI=true).
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: missing ${need[*]}; install them to run every test" >&2
  exit 0
fi
echo "test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages like nginx start their daemon on install, which fails where no
# init system runs (and is not wanted: the tests start their own instances
# on free loopback ports). A policy-rc.d that says "no" keeps them stopped.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=true
fi
cleanup() { if $own_policy; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -qq -o DPkg::Lock::Timeout=300 >/dev/null
for pkg in "${need[@]}"; do
  # One package at a time, with one retry, so a flaky postinst of one does
  # not take the others down.
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "$pkg" >/dev/null ||
    { dpkg --configure -a >/dev/null 2>&1 || true; apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "$pkg" >/dev/null; }
done
