#!/usr/bin/env bash
# Installs the tools the test suite drives for real, when they are missing.
# Before installing, it prints one line per package saying which tests need
# it. Already-present tools are left alone; without root or apt-get it only
# reports what is missing and why, and the tests that need it skip (or fail
# when CI=true).
set -euo pipefail

# Each package, the commands that show it is there (Debian puts some in
# /usr/sbin, often not in a user's PATH), and which tests need it. A case
# rather than an associative array, so that macOS's bash 3 can report too.
packages=(redis-server nginx chromium nftables prometheus systemd curl)
commands() {
  case $1 in
    nginx) echo "nginx /usr/sbin/nginx" ;;
    nftables) echo "nft /usr/sbin/nft" ;;
    prometheus) echo "promtool" ;;
    systemd) echo "systemd-analyze" ;;
    *) echo "$1" ;;
  esac
}
why() {
  case $1 in
    redis-server) echo "Redis store, cluster and chaos soak tests" ;;
    nginx) echo "the compose and deploy/nginx proxy configs, checked with nginx -t and requests through them" ;;
    chromium) echo "dashboard tests in a real browser" ;;
    nftables) echo "dropping a client's packets on loopback, so that it vanishes without closing" ;;
    prometheus) echo "promtool, which checks deploy/prometheus/alerts.yml; its daemon is not started" ;;
    systemd) echo "systemd-analyze, which verifies deploy/systemd/factstream.service" ;;
    curl) echo "the README tutorial's commands, run as written" ;;
  esac
}

found() {
  local c
  for c in $1; do
    if [[ $c == /* ]]; then [ -x "$c" ] && return 0; else command -v "$c" >/dev/null 2>&1 && return 0; fi
  done
  return 1
}

need=()
for pkg in "${packages[@]}"; do
  found "$(commands "$pkg")" || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  for pkg in "${need[@]}"; do
    echo "test-deps: missing $pkg: $(why "$pkg")" >&2
  done
  echo "test-deps: not root or no apt-get, so nothing installed; install them to run every test" >&2
  exit 0
fi
for pkg in "${need[@]}"; do
  echo "test-deps: installing $pkg: $(why "$pkg")" >&2
done
export DEBIAN_FRONTEND=noninteractive
# Packages like nginx and prometheus start their daemon on install, which
# fails where no init system runs (and is not wanted: the tests start their
# own instances on free loopback ports). A policy-rc.d that says "no" keeps
# them stopped.
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
