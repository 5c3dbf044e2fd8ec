#!/usr/bin/env bash
# Plays a day on a phone: the Kotlin demo app in mobile-demo/ drives the generated bindings
# against the real server, started here on a free loopback port with a fresh data directory.
# Exits with the demo's status. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
kotlin_home=scripts/tools/node_modules/kotlin-compiler
jna=/usr/share/java/jna.jar
seconds() { date +%s.%N; }
took() { awk -v from="$1" -v to="$(seconds)" 'BEGIN { printf "%.1f s", to - from }'; }

echo "== building the server and the bindings library"
started=$(seconds)
cargo build -p outpost-server -p outpost-bindings --locked
echo "   built in $(took "$started")"

work=$(mktemp -d)
server_pid=
stop() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop EXIT

echo "== generating the Kotlin bindings"
scripts/generate-bindings.sh "$target_dir/debug/liboutpost.so" "$work/bindings" >/dev/null

if [[ ! -x $kotlin_home/bin/kotlinc ]]; then
    echo "== installing the Kotlin compiler (npm install --prefix scripts/tools)"
    npm install --prefix scripts/tools
fi
[[ -f $jna ]] || { echo "JNA is missing at $jna: install Debian's libjna-java" >&2; exit 1; }
kotlin_version=$(cat "$kotlin_home/build.txt")

# Compiles sources into a jar under $target_dir/kotlin, named by a hash of the sources and the
# classpath's file names, unless that jar exists. bindings/tests/support/kotlin.rs computes the
# same key, so the demo and the Kotlin test share the bindings jar.
# Usage: cached_jar NAME CLASSPATH SOURCE...   (prints the jar's path)
cached_jar() {
    local name=$1 classpath=$2
    shift 2
    local key jar entry
    key=$({
        cat "$@"
        IFS=: read -ra entries <<<"$classpath"
        for entry in "${entries[@]}"; do printf '%s\n' "$(basename "$entry")"; done
    } | sha256sum | cut -c1-16)
    jar=$target_dir/kotlin/$name-$kotlin_version-$key.jar
    if [[ -f $jar ]]; then
        echo "   reusing $jar" >&2
    else
        mkdir -p "$target_dir/kotlin"
        local begun partial=$target_dir/kotlin/$name.$$.partial.jar
        begun=$(seconds)
        "$kotlin_home/bin/kotlinc" -nowarn -d "$partial" -cp "$classpath" "$@" >&2
        mv "$partial" "$jar"
        echo "   compiled $jar in $(took "$begun")" >&2
    fi
    echo "$jar"
}

echo "== compiling"
bindings_jar=$(cached_jar outpost "$jna" "$work/bindings/kotlin/uniffi/outpost/outpost.kt")
mapfile -t demo_sources < <(find mobile-demo/src/main/kotlin -name '*.kt' | LC_ALL=C sort)
demo_jar=$(cached_jar mobile-demo "$bindings_jar" "${demo_sources[@]}")

echo "== starting the server"
server=$target_dir/debug/outpost-server
export OUTPOST_DATA_DIR=$work/server
export RUST_LOG=${RUST_LOG:-warn}
OUTPOST_ADDR=127.0.0.1:0 "$server" serve >"$work/server.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 1 300); do
    port=$(sed -n 's|^outpost-server listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$work/server.log")
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z $port ]]; then
    echo "the server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
echo "   listening on 127.0.0.1:$port; development CA $OUTPOST_DATA_DIR/tls/ca.pem"

echo "== setting up a team, a worker, a lead and an enrolment code (admin CLI)"
"$server" create-team north --name "North locality" --scope team
"$server" add-worker ann --name "Ann Hale" --team north
"$server" add-worker lead1 --name "Lee Okafor" --team north --lead
# The code is the indented line of enrol-code's output.
code=$("$server" enrol-code ann | sed -n 's/^    \([A-Z0-9-]*\)$/\1/p')
[[ -n $code ]] || { echo "no enrolment code was printed" >&2; exit 1; }

echo "== playing the day"
started=$(seconds)
status=0
OUTPOST_HOST=127.0.0.1 OUTPOST_PORT=$port OUTPOST_CA=$OUTPOST_DATA_DIR/tls/ca.pem OUTPOST_CODE=$code \
    OUTPOST_STORE=$work/phone.sqlite3 OUTPOST_LEAD_CLI=$server \
    java -cp "$bindings_jar:$demo_jar:$kotlin_home/lib/kotlin-stdlib.jar:$jna" \
    -Djna.library.path="$target_dir/debug" app.outpost.demo.MainKt || status=$?
echo "== the demo ran in $(took "$started") and exited with $status"
if [[ $status -ne 0 ]]; then
    echo "--- server log" >&2
    cat "$work/server.log" >&2
fi
exit "$status"
