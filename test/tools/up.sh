#!/usr/bin/env bash
# Install the programs Ferry's tests use besides the brokers, from Debian's
# packages, when they are missing:
#
#   chromium   /usr/bin/chromium   the dashboard's browser test (headless)
#   promtool   /usr/bin/promtool   checks and unit-tests docs/alerts.yaml
#              (Debian's prometheus package)
#
# usage: test/tools/up.sh [chromium|promtool ...]   (default: both)
# Idempotent; `make test` runs it. The apt log is in $FERRY_BROKERS_CACHE/apt.log.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../brokers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../brokers/lib.sh"

case ${1:-} in
-h | --help)
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit 0
  ;;
esac

tools=("$@")
((${#tools[@]})) || tools=(chromium promtool)
mkdir -p "$CACHE"
lock

pkgs=()
for t in "${tools[@]}"; do
  case $t in
  chromium) command -v chromium >/dev/null || pkgs+=(chromium) ;;
  promtool) command -v promtool >/dev/null || pkgs+=(prometheus) ;;
  *) die "unknown tool $t (chromium, promtool)" ;;
  esac
done
if ((${#pkgs[@]})); then
  t0=$SECONDS
  apt_install "${pkgs[@]}"
  note "installed ${pkgs[*]} in $((SECONDS - t0))s"
fi
for t in "${tools[@]}"; do
  case $t in
  chromium) say "chromium  $(chromium --version 2>/dev/null | head -1)" ;;
  promtool) say "promtool  $(promtool --version 2>&1 | head -1)" ;;
  esac
done
