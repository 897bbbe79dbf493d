#!/usr/bin/env bash
# Install everything fleetlink needs on a fresh clone; safe to run again (it skips what is there).
#   system: Mosquitto (+ clients, kcat), Java 17+, Maven, Chromium (browser tests)
#           -- through apt when missing
#   python: .venv with the exact versions of constraints.txt
#   kafka:  the broker jars, resolved once by Maven into ~/.cache/fleetlink
#   web:    the dashboard, built by npm from web/package-lock.json when its sources change
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# --- system packages -----------------------------------------------------------------------------
packages=()
have mosquitto || [ -x /usr/sbin/mosquitto ] || packages+=(mosquitto)
have mosquitto_pub || packages+=(mosquitto-clients)
have kcat || packages+=(kcat)
have java || [ -n "${JAVA_HOME:-}" ] || packages+=(openjdk-17-jre-headless)
have mvn || packages+=(maven)
have chromium || packages+=(chromium)  # Playwright drives it: no browser download
have npm || packages+=(nodejs npm)  # builds the dashboard; not needed at run time
if [ ${#packages[@]} -gt 0 ]; then
  say "Installing with apt: ${packages[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    apt_get=(apt-get)
  elif have sudo && sudo -n true 2>/dev/null; then
    apt_get=(sudo apt-get)
  else
    die "please install these Debian packages first: sudo apt-get install ${packages[*]}"
  fi
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
fi

# --- python --------------------------------------------------------------------------------------
python=${PYTHON:-python3}
have "$python" || die "Python 3.11+ is needed: install python3 (Debian: apt-get install python3 python3-venv)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11+ is needed; $python is $("$python" -V 2>&1). Set PYTHON=/path/to/python3.11"

stamp=.venv/.fleetlink-installed
if [ ! -x .venv/bin/python ]; then
  say "Creating .venv"
  "$python" -m venv .venv || die "could not create a virtualenv (Debian: apt-get install python3-venv)"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  say "Installing Python packages (pinned by constraints.txt)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
  touch "$stamp"
fi

# --- kafka jars ----------------------------------------------------------------------------------
.venv/bin/fleetlink stack fetch

# --- dashboard -----------------------------------------------------------------------------------
dashboard=src/fleetlink/api/static/dashboard
sources=$(cat web/package-lock.json web/build.mjs web/tsconfig.json web/src/* | sha256sum | cut -c1-16)
if [ ! -f "$dashboard/index.html" ] || [ "$(cat "$dashboard/.sources" 2>/dev/null)" != "$sources" ]; then
  say "Building the dashboard (npm ci from the lock file, tsc, esbuild)"
  (cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error && npm run --silent build)
  echo "$sources" > "$dashboard/.sources"
fi
