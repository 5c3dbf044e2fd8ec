#!/usr/bin/env bash
# What a call across the FFI costs from Rust, Kotlin (JVM + JNA) and Python (ctypes): the same
# three calls (schema_version, enrolment, a caseload of 300 people) measured directly by
# criterion (bindings/benches/calls.rs) and through the generated bindings against the release
# library (bindings/benches/kotlin/BenchFfi.kt, bindings/tests/python/bench_ffi.py), the last two
# enrolled against the real release server started here. Prints a markdown table of medians,
# also written to target/bench-data/ffi-report.md. Usage: scripts/bench-ffi.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
# shellcheck source=scripts/lib/kotlin.sh
source scripts/lib/kotlin.sh
script_started=$(seconds)
load_before=$(uptime)

echo "== building the release server and library" >&2
cargo build --release -p outpost-bindings -p outpost-server --locked

# shellcheck source=scripts/lib/server.sh
source scripts/lib/server.sh
work=$(mktemp -d)
stop() {
    stop_server
    rm -rf "$work"
}
trap stop EXIT

# A copy, so the library measured is the one the bindings were generated from even when
# `cargo bench` below rebuilds target/release with the dev-dependencies' features.
mkdir -p "$work/lib"
cp "$target_dir/release/liboutpost.so" "$work/lib/"
echo "== generating the bindings from the release library" >&2
scripts/generate-bindings.sh "$work/lib/liboutpost.so" "$work/bindings" >/dev/null
cp "$work/lib/liboutpost.so" "$work/bindings/python/"


echo "== compiling the Kotlin bench" >&2
bindings_jar=$(cached_jar outpost "$jna" "$work/bindings/kotlin/uniffi/outpost/outpost.kt")
bench_jar=$(cached_jar bench-ffi "$bindings_jar" bindings/benches/kotlin/BenchFfi.kt)

echo "== Rust: cargo bench -p outpost-bindings --bench calls" >&2
cargo bench -p outpost-bindings --bench calls --locked >&2

echo "== starting the release server" >&2
server=$target_dir/release/outpost-server
start_server "$server" "$work/server" "$work/server.log"
"$server" create-team north --name "North locality" --scope team >/dev/null
"$server" add-worker ann --name "Ann Hale" --team north >/dev/null
"$server" add-worker bea --name "Bea Ito" --team north >/dev/null
mkdir -p "$work/python" "$work/kotlin"
# One code per bench: each enrols a store of its own.
python_code=$(enrol_code ann)
kotlin_code=$(enrol_code bea)
server_env=(OUTPOST_HOST=127.0.0.1 "OUTPOST_PORT=$server_port" "OUTPOST_CA=$OUTPOST_DATA_DIR/tls/ca.pem")

echo "== Python: bench_ffi.py" >&2
python_json=$(env "${server_env[@]}" OUTPOST_CODE_1="$python_code" OUTPOST_WORK="$work/python" \
    PYTHONPATH="$work/bindings/python" PYTHONDONTWRITEBYTECODE=1 \
    python3 bindings/tests/python/bench_ffi.py | tail -n 1)
echo "   $python_json" >&2

echo "== Kotlin: BenchFfi.kt" >&2
kotlin_json=$(env "${server_env[@]}" OUTPOST_CODE_1="$kotlin_code" OUTPOST_WORK="$work/kotlin" \
    java -Djna.library.path="$work/lib" \
    -cp "$bindings_jar:$bench_jar:$kotlin_home/lib/kotlin-stdlib.jar:$jna" outpost.bench.BenchFfiKt |
    tail -n 1)
echo "   $kotlin_json" >&2
stop_server

mkdir -p "$target_dir/bench-data"
report=$target_dir/bench-data/ffi-report.md
# The Rust medians are criterion's, in nanoseconds, from its estimates.
PYTHON_JSON=$python_json KOTLIN_JSON=$kotlin_json CRITERION=$target_dir/criterion \
    LOAD_BEFORE=$load_before LOAD_AFTER=$(uptime) CPUS=$(nproc) python3 - <<'EOF' | tee "$report"
import json, os

python = json.loads(os.environ["PYTHON_JSON"])
kotlin = json.loads(os.environ["KOTLIN_JSON"])
calls = [("schema_version", "schema_version()"), ("enrolment", "Outpost.enrolment()"),
         ("caseload_300", "Outpost.caseload(), 300 people")]


def rust_ns(call):
    path = os.path.join(os.environ["CRITERION"], f"ffi_rust_{call}", "new", "estimates.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)["median"]["point_estimate"]


def duration(ns):
    for unit, scale in (("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


print("| call | Rust | Kotlin (JVM, JNA) | Python (ctypes) |")
print("|---|---:|---:|---:|")
for call, label in calls:
    rust = rust_ns(call)
    cells = [duration(rust)]
    for measured in (kotlin, python):
        ns = measured[f"{call}_us"] * 1e3
        cells.append(f"{duration(ns)} (×{ns / rust:,.0f})" if ns / rust >= 10 else f"{duration(ns)} (×{ns / rust:.1f})")
    print(f"| `{label}` | " + " | ".join(cells) + " |")
print()
print(f"Medians per call; (×N) is the ratio to Rust. Kotlin and Python: {kotlin['repeats']} and "
      f"{python['repeats']} timed batches against the release library; Rust: criterion.")
print(f"{os.environ['CPUS']} CPUs. Load before: `{os.environ['LOAD_BEFORE'].strip()}`; "
      f"after: `{os.environ['LOAD_AFTER'].strip()}`.")
EOF
echo "report written to $report; the whole run took $(took "$script_started")" >&2
