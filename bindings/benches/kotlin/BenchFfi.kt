// What a call across the FFI costs from Kotlin on the JVM, in microseconds per call (median of
// repeats): the same three calls as bindings/tests/python/bench_ffi.py, printed as one JSON line
// with the same keys. It needs a server only to enrol, and reads the same environment:
// OUTPOST_HOST, OUTPOST_PORT, OUTPOST_CA, OUTPOST_CODE_1 and OUTPOST_WORK. OUTPOST_BENCH_QUICK=1
// makes a smoke run. scripts/bench-ffi.sh compiles and runs it against the release library.
package outpost.bench

import java.io.File
import java.util.UUID
import kotlin.system.exitProcess
import uniffi.outpost.NewPerson
import uniffi.outpost.Outpost
import uniffi.outpost.RiskTier
import uniffi.outpost.ServerConfig
import uniffi.outpost.schemaVersion

const val PEOPLE = 300

/** Takes each result so the JIT cannot treat a call's lifting as dead code. */
@Volatile var sink = 0L

fun env(name: String): String = System.getenv(name)?.takeIf { it.isNotEmpty() }
    ?: fail("$name is not set")

fun fail(message: String): Nothing {
    System.err.println(message)
    exitProcess(1)
}

fun enrolledStore(): Outpost {
    val path = File(env("OUTPOST_WORK"), "bench-kotlin-${UUID.randomUUID().toString().take(8)}.sqlite3")
    val phone = Outpost.open(path.path, null)
    val server = ServerConfig(
        host = env("OUTPOST_HOST"),
        port = env("OUTPOST_PORT").toInt(),
        caPem = File(env("OUTPOST_CA")).readText(),
        pins = emptyList(),
    )
    phone.enrol(server, env("OUTPOST_CODE_1"), "ffi bench (kotlin)")
    return phone
}

fun addPeople(phone: Outpost, count: Int) {
    for (i in 0 until count) {
        phone.createPerson(
            NewPerson(
                name = "Person %04d".format(i),
                preferredName = null,
                dateOfBirth = "1950-01-01",
                nhsNumber = null,
                address = null,
                allocatedWorkers = emptyList(),
                risk = RiskTier.LOW,
            ),
        )
    }
}

/** Nanoseconds to make [number] calls. */
inline fun timeBatch(number: Long, call: () -> Long): Long {
    var taken = 0L
    val started = System.nanoTime()
    for (i in 0 until number) taken += call()
    val elapsed = System.nanoTime() - started
    sink += taken
    return elapsed
}

/**
 * Median over [repeats] of the time per call in microseconds. The call runs for [warmUpS] first
 * so the JIT has compiled its path (JNA's marshalling included) before anything is timed; then
 * the batch size is doubled until a batch lasts [minTimeS], as bench_ffi.py does with timeit.
 */
fun perCallUs(repeats: Int, minTimeS: Double, warmUpS: Double, call: () -> Long): Double {
    val warmUpUntil = System.nanoTime() + (warmUpS * 1e9).toLong()
    while (System.nanoTime() < warmUpUntil) timeBatch(64, call)
    var number = 1L
    while (timeBatch(number, call) < minTimeS * 1e9) number *= 2
    val times = (1..repeats).map { timeBatch(number, call) }.sorted()
    val median = if (repeats % 2 == 1) {
        times[repeats / 2].toDouble()
    } else {
        (times[repeats / 2 - 1] + times[repeats / 2]) / 2.0
    }
    return median / number / 1e3
}

fun main() {
    val quick = System.getenv("OUTPOST_BENCH_QUICK") == "1"
    val (repeats, minTimeS, warmUpS) = if (quick) Triple(3, 0.005, 0.05) else Triple(9, 0.2, 2.0)

    val phone = enrolledStore()
    addPeople(phone, PEOPLE)
    val people = phone.caseload().size
    if (people != PEOPLE) fail("the caseload holds $people people, not $PEOPLE")
    if (phone.enrolment() == null) fail("the store is not enrolled")

    val started = System.nanoTime()
    val report = linkedMapOf<String, Any>(
        "schema_version_us" to perCallUs(repeats, minTimeS, warmUpS) { schemaVersion() },
        "enrolment_us" to perCallUs(repeats, minTimeS, warmUpS) {
            if (phone.enrolment() == null) 0L else 1L
        },
        "caseload_300_us" to perCallUs(repeats, minTimeS, warmUpS) { phone.caseload().size.toLong() },
        "people" to PEOPLE,
        "repeats" to repeats,
    )
    phone.close()
    System.err.println("measured in %.1f s".format((System.nanoTime() - started) / 1e9))
    // Only numbers, so no JSON library is needed; %.3f matches bench_ffi.py's rounding.
    println(
        report.entries.joinToString(", ", "{", "}") { (key, value) ->
            val number = if (value is Double) String.format(java.util.Locale.ROOT, "%.3f", value) else "$value"
            "\"$key\": $number"
        },
    )
}
