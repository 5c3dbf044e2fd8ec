# Starts the real outpost-server for a script (scripts/demo.sh, scripts/bench-ffi.sh) and drives
# its admin CLI. Source it, call start_server, and call stop_server from an EXIT trap.
# shellcheck shell=bash

server_bin=
server_pid=
server_port=

# Starts BINARY's `serve` on a free loopback port with a fresh data directory DATA_DIR, logging
# to LOG, and waits until it listens. Sets server_bin, server_pid and server_port; exports
# OUTPOST_DATA_DIR (which the admin CLI reads too). The development CA is $DATA_DIR/tls/ca.pem.
# Not to be called in $(...): the server would belong to the subshell.
# Usage: start_server BINARY DATA_DIR LOG
start_server() {
    server_bin=$1
    local log=$3
    export OUTPOST_DATA_DIR=$2
    export RUST_LOG=${RUST_LOG:-warn}
    OUTPOST_ADDR=127.0.0.1:0 "$server_bin" serve >"$log" 2>&1 &
    server_pid=$!
    server_port=
    for _ in $(seq 1 300); do
        server_port=$(sed -n 's|^outpost-server listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$log")
        [[ -n $server_port ]] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "the server did not start:" >&2
    cat "$log" >&2
    return 1
}

# Stops the server start_server started, if it did; safe to call more than once.
stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}

# Prints a fresh enrolment code for WORKER (the indented line of `enrol-code`'s output).
# Usage: enrol_code WORKER
enrol_code() {
    local code
    code=$("$server_bin" enrol-code "$1" | sed -n 's/^    \([A-Z0-9-]*\)$/\1/p')
    [[ -n $code ]] || { echo "no enrolment code was printed for $1" >&2; return 1; }
    echo "$code"
}
