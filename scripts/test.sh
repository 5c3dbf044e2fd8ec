#!/usr/bin/env bash
# Runs every test Outpost has, exactly as CI does. Installs what the tests need first.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== tools the tests use"
# The Kotlin compiler (npm's kotlin-compiler) and JNA (Debian's libjna-java) run the generated
# Kotlin bindings and the demo; Python 3 runs the generated Python. The browser tests drive
# Debian's Chromium with npm's playwright-core and check pages with axe-core; Debian's
# python3-aiosmtpd is the SMTP server mail is sent to in tests.
npm ci --prefix scripts/tools --no-audit --no-fund --loglevel=error
installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }
missing=()
[[ -f /usr/share/java/jna.jar ]] || missing+=(libjna-java)
for package in chromium python3-aiosmtpd; do
    installed "$package" || missing+=("$package")
done
if (( ${#missing[@]} > 0 )); then
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "== PostgreSQL"
# The storage suite runs on PostgreSQL as well as SQLite, and the scale-out tests run several
# server processes over it: a real server at OUTPOST_TEST_POSTGRES (default 127.0.0.1:5432, user
# postgres, database test). Started here if installed but stopped; the tests fail, never skip,
# without it.
pg=(-h 127.0.0.1 -p 5432 -U postgres)
if ! pg_isready -q "${pg[@]}" 2>/dev/null; then
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo service postgresql start >/dev/null 2>&1 || true
    for _ in $(seq 30); do pg_isready -q "${pg[@]}" 2>/dev/null && break; sleep 1; done
fi
if [[ -z "${OUTPOST_TEST_POSTGRES:-}" ]]; then
    pg_isready -q "${pg[@]}" || { echo "PostgreSQL is not running on 127.0.0.1:5432 and could not be started" >&2; exit 1; }
    [[ $(psql "${pg[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'") == 1 ]] ||
        createdb "${pg[@]}" test
fi

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

# One build of every target in the test profile (panic = unwind), shared by unit tests,
# integration tests, and the benches' smoke runs (criterion runs each bench once under `cargo test`).
echo "== tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets --locked 2>&1 | tee "$log"

# The Android link flags (16 KB pages), checked on a host relink of the bindings crate only.
echo "== page alignment"
scripts/check-page-alignment.sh

# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
