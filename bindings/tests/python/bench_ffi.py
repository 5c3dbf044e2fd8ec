"""What a call across the FFI costs from Python, in microseconds per call (median of repeats).

Measures a trivial getter with no arguments (`schema_version()`), a method returning a record
(`Outpost.enrolment()`) and a caseload query returning 300 people (`Outpost.caseload()`), and
prints one JSON line. It needs a server only to enrol; the same environment variables as the
tests are read: OUTPOST_HOST, OUTPOST_PORT, OUTPOST_CA, OUTPOST_CODE_1 and OUTPOST_WORK.
OUTPOST_BENCH_QUICK=1 makes a smoke run with few repeats (as `cargo test --test python` does).

Numbers mean something only against a release library: generate the bindings from
`target/release/liboutpost.so` (scripts/generate-bindings.sh target/release/liboutpost.so) and
put that directory on PYTHONPATH.
"""

import datetime
import json
import os
import statistics
import sys
import timeit
import uuid

import outpost

PEOPLE = 300


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set")
    return value


def enrolled_store():
    path = os.path.join(env("OUTPOST_WORK"), f"bench-{uuid.uuid4().hex[:8]}.sqlite3")
    phone = outpost.Outpost.open(path, None)
    with open(env("OUTPOST_CA"), encoding="ascii") as f:
        server = outpost.ServerConfig(host=env("OUTPOST_HOST"), port=int(env("OUTPOST_PORT")), ca_pem=f.read(), pins=[])
    phone.enrol(server, env("OUTPOST_CODE_1"), "ffi bench")
    return phone


def add_people(phone, count):
    for i in range(count):
        phone.create_person(
            outpost.NewPerson(
                name=f"Person {i:04}",
                preferred_name=None,
                date_of_birth="1950-01-01",
                nhs_number=None,
                address=None,
                allocated_workers=[],
                risk=outpost.RiskTier.LOW,
            )
        )


def per_call_us(call, repeats, min_time_s):
    """Median over `repeats` of the time per call, each repeat looping `call` for at least
    `min_time_s` (the loop count is found once, as `timeit` does with autorange)."""
    timer = timeit.Timer(call)
    number = 1
    while timer.timeit(number) < min_time_s:
        number *= 2
    times = timer.repeat(repeat=repeats, number=number)
    return statistics.median(times) / number * 1e6


def main():
    quick = os.environ.get("OUTPOST_BENCH_QUICK") == "1"
    repeats, min_time_s = (3, 0.005) if quick else (9, 0.2)

    phone = enrolled_store()
    add_people(phone, PEOPLE)
    caseload = phone.caseload()
    if len(caseload) != PEOPLE:
        sys.exit(f"the caseload holds {len(caseload)} people, not {PEOPLE}")

    started = datetime.datetime.now()
    report = {
        "schema_version_us": per_call_us(outpost.schema_version, repeats, min_time_s),
        "enrolment_us": per_call_us(phone.enrolment, repeats, min_time_s),
        "caseload_300_us": per_call_us(phone.caseload, repeats, min_time_s),
        "people": PEOPLE,
        "repeats": repeats,
    }
    elapsed = (datetime.datetime.now() - started).total_seconds()
    print(f"measured in {elapsed:.1f} s", file=sys.stderr)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in report.items()}))


if __name__ == "__main__":
    main()
