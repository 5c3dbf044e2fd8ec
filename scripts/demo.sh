#!/usr/bin/env bash
# Plays a day on a phone: the Kotlin demo app in mobile-demo/ drives the generated bindings
# against the real server, started here on a free loopback port with a fresh data directory.
# Exits with the demo's status. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
# shellcheck source=scripts/lib/kotlin.sh
source scripts/lib/kotlin.sh

# The test suite passes what `cargo test` already built (OUTPOST_DEMO_LIBRARY and
# OUTPOST_DEMO_SERVER), so the demo adds no build of its own there.
library=${OUTPOST_DEMO_LIBRARY:-$target_dir/debug/liboutpost.so}
server=${OUTPOST_DEMO_SERVER:-$target_dir/debug/outpost-server}
if [[ -z ${OUTPOST_DEMO_LIBRARY:-} || -z ${OUTPOST_DEMO_SERVER:-} ]]; then
    echo "== building the server and the bindings library"
    started=$(seconds)
    cargo build -p outpost-server -p outpost-bindings --locked
    echo "   built in $(took "$started")"
fi

# shellcheck source=scripts/lib/server.sh
source scripts/lib/server.sh
work=$(mktemp -d)
# shellcheck disable=SC2317  # called by the EXIT trap
stop() {
    stop_server
    rm -rf "$work"
}
trap stop EXIT

echo "== generating the Kotlin bindings"
scripts/generate-bindings.sh "$library" "$work/bindings" >/dev/null


echo "== compiling"
bindings_jar=$(cached_jar outpost "$jna" "$work/bindings/kotlin/uniffi/outpost/outpost.kt")
mapfile -t demo_sources < <(find mobile-demo/src/main/kotlin -name '*.kt' | LC_ALL=C sort)
demo_jar=$(cached_jar mobile-demo "$bindings_jar" "${demo_sources[@]}")

echo "== starting the server"
start_server "$server" "$work/server" "$work/server.log"
port=$server_port
echo "   listening on 127.0.0.1:$port; development CA $OUTPOST_DATA_DIR/tls/ca.pem"

echo "== setting up a team, a worker, a lead and an enrolment code (admin CLI)"
"$server" create-team north --name "North locality" --scope team
"$server" add-worker ann --name "Ann Hale" --team north
"$server" add-worker lead1 --name "Lee Okafor" --team north --lead
code=$(enrol_code ann)

echo "== playing the day"
started=$(seconds)
status=0
OUTPOST_HOST=127.0.0.1 OUTPOST_PORT=$port OUTPOST_CA=$OUTPOST_DATA_DIR/tls/ca.pem OUTPOST_CODE=$code \
    OUTPOST_STORE=$work/phone.sqlite3 OUTPOST_LEAD_CLI=$server \
    java -cp "$bindings_jar:$demo_jar:$kotlin_home/lib/kotlin-stdlib.jar:$jna" \
    -Djna.library.path="$(dirname "$library")" app.outpost.demo.MainKt || status=$?
echo "== the demo ran in $(took "$started") and exited with $status"
if [[ $status -ne 0 ]]; then
    echo "--- server log" >&2
    cat "$work/server.log" >&2
fi
exit "$status"
