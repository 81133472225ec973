#!/usr/bin/env bash
# Installs Chromium from Debian's packages for the browser tests (tests/test_board_browser.py),
# which drive it with Playwright's Python package (its driver ships in the wheel; the tests never
# run `playwright install`, they launch /usr/bin/chromium). Idempotent: does nothing when it is
# installed. Needs root (or sudo) the first time.
#
# Environment: DUBAN_CHROMIUM  the browser the tests launch [/usr/bin/chromium]
set -euo pipefail

CHROMIUM=${DUBAN_CHROMIUM:-/usr/bin/chromium}
say() { printf 'chromium: %s\n' "$*"; }
die() { printf 'chromium: %s\n' "$*" >&2; exit 1; }

if [[ -x $CHROMIUM ]]; then
  say "$("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") present"
  exit 0
fi
[[ $CHROMIUM == /usr/bin/chromium ]] || die "$CHROMIUM (DUBAN_CHROMIUM) is not an executable"
command -v apt-get >/dev/null 2>&1 || die "no apt-get: install Chromium by hand, or set DUBAN_CHROMIUM"
sudo=()
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "installing Chromium needs root: run 'apt-get install chromium' as root"
  sudo=(sudo)
fi
say "installing chromium (Debian package)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
[[ -x $CHROMIUM ]] || die "apt-get installed chromium but $CHROMIUM is missing"
say "$("$CHROMIUM" --version 2>/dev/null) installed"
