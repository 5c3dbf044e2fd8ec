// Proves the generated Kotlin bindings against the real library and a real server: two phones
// record, sync and co-edit one visit; errors arrive typed; a Rust panic is an exception; observers
// fire and stop. Run by bindings/tests/kotlin.rs; exits non-zero on the first failed check.
package outpost.test

import java.time.Duration
import java.time.Instant
import kotlin.system.exitProcess
import uniffi.outpost.ChangeOrigin
import uniffi.outpost.NewPerson
import uniffi.outpost.NewVisit
import uniffi.outpost.Outpost
import uniffi.outpost.RiskTier
import uniffi.outpost.Section
import uniffi.outpost.SectionText
import uniffi.outpost.Setting

val SYNC_DEADLINE: Duration = Duration.ofSeconds(30)
val WHAT_MATTERS = Section.WHAT_MATTERS

fun main() {
    try {
        BindingsTest(TestEnv.fromEnvironment()).run()
    } catch (e: Throwable) {
        println("\nFAILED: ${e::class.simpleName}: ${e.message}")
        e.printStackTrace(System.out)
        exitProcess(1)
    }
    println("\nall checks passed")
    exitProcess(0)
}

class BindingsTest(private val env: TestEnv) {
    private val phoneA: Outpost = env.openStore("phone-a")
    private val phoneB: Outpost = env.openStore("phone-b")
    private lateinit var visitId: String

    fun run() {
        recordOfflineOnPhoneA()
        syncPhoneA()
        receiveOnPhoneB()
        coEditTheSameSection()
        FailureChecks(env, phoneA, visitId).run()
        step("closing the stores")
        phoneA.close()
        phoneB.close()
        note("both Outpost objects closed")
    }

    private fun recordOfflineOnPhoneA() {
        step("phone A enrols, then records a visit with no network")
        val enrolment = phoneA.enrol(env.server, env.codeForW1, "Phone A")
        checkEquals("w1", enrolment.workerId, "phone A's worker")
        checkEquals("t1", enrolment.teamId, "phone A's team")
        phoneA.setNetworkAvailable(false)
        check(!phoneA.syncStatus().networkAvailable) { "phone A should report no network" }
        note("enrolled as ${enrolment.workerId} on ${enrolment.deviceId}; network now off")

        val personId = phoneA.createPerson(
            NewPerson(
                name = "Rosa Martín",
                preferredName = "Rosa",
                dateOfBirth = "1941-03-02",
                nhsNumber = null,
                address = "2 Mill Lane",
                allocatedWorkers = emptyList(),
                risk = RiskTier.MEDIUM,
            ),
        )
        visitId = phoneA.createVisit(NewVisit(personId, Instant.now(), Setting.HOME_VISIT))
        note("person $personId, visit $visitId")

        // The "text field": it shows text read at a version and hands back what the user typed.
        var field = phoneA.sectionText(visitId, WHAT_MATTERS)
        checkEquals("", field.text, "a new visit's what-matters section")
        for (typed in TYPED_ON_A) {
            field = phoneA.editSectionText(visitId, WHAT_MATTERS, field.version, field.text, typed)
            checkEquals(typed, field.text, "the field after typing")
        }
        checkEquals(TYPED_ON_A.last(), sectionOf(phoneA), "what phone A reads back")
        val pending = phoneA.pendingSync()
        check(visitId in pending) { "pendingSync() should list the visit, got $pending" }
        note("typed ${TYPED_ON_A.size} times; pending sync: ${pending.size} records")
    }

    private fun syncPhoneA() {
        step("phone A is back in signal and syncs")
        phoneA.setNetworkAvailable(true)
        val outcome = phoneA.syncNow(SYNC_DEADLINE)
        check(outcome.complete) { "the sync should complete: $outcome" }
        check(outcome.recordsSent > 0) { "the sync should send records: $outcome" }
        check(outcome.refused.isEmpty()) { "nothing should be refused: $outcome" }
        check(phoneA.pendingSync().isEmpty()) { "nothing should be pending: ${phoneA.pendingSync()}" }
        note("sent ${outcome.recordsSent} records; nothing pending")
    }

    private fun receiveOnPhoneB() {
        step("phone B enrols as w2, syncs and receives the visit")
        checkEquals("w2", phoneB.enrol(env.server, env.codeForW2, "Phone B").workerId, "phone B's worker")
        val outcome = phoneB.syncNow(SYNC_DEADLINE)
        check(outcome.complete && outcome.recordsReceived > 0) { "phone B should receive records: $outcome" }
        checkEquals(TYPED_ON_A.last(), sectionOf(phoneB), "what phone B reads")
        note("received ${outcome.recordsReceived} records; the section reads \"${sectionOf(phoneB)}\"")
    }

    private fun coEditTheSameSection() {
        step("both phones edit the section; A's caret and A's stale field survive B's edit")
        val changes = RecordChanges()
        val handle = phoneA.observeRecords(changes)

        // Phone A's field, with the caret just after "garden".
        val held: SectionText = phoneA.sectionText(visitId, WHAT_MATTERS)
        val caret = held.text.indexOf("garden") + "garden".length
        note("A holds \"${held.text}\" with the caret at $caret")

        // Phone B types before A's caret, then at the end, as two edits.
        var fieldB = phoneB.sectionText(visitId, WHAT_MATTERS)
        val beforeCaret = fieldB.text.replace("her garden", "her ${B_INSERTS_BEFORE}garden")
        fieldB = phoneB.editSectionText(visitId, WHAT_MATTERS, fieldB.version, fieldB.text, beforeCaret)
        fieldB = phoneB.editSectionText(visitId, WHAT_MATTERS, fieldB.version, fieldB.text, fieldB.text + B_APPENDS)
        check(phoneB.syncNow(SYNC_DEADLINE).complete) { "phone B's sync should complete" }
        note("B now reads \"${fieldB.text}\" and has synced")

        check(phoneA.syncNow(SYNC_DEADLINE).complete) { "phone A's sync should complete" }
        val received = changes.snapshot().filter { it.origin == ChangeOrigin.SYNC }
        check(received.any { visitId in it.ids }) { "A's observer should see the visit arrive by sync: $received" }
        note("A's observer saw: $received")

        val mapped = phoneA.mapSelection(visitId, WHAT_MATTERS, held.version, caret, caret)
        checkEquals(fieldB.text, mapped.text.text, "A's text after the sync")
        // String.length counts UTF-16 units, as the bindings' offsets do: 🥕 counts two.
        checkEquals(caret + B_INSERTS_BEFORE.length, mapped.start, "A's caret after B's insertion")
        checkEquals(mapped.start, mapped.end, "a caret stays a caret")
        check(mapped.text.text.substring(0, mapped.start).endsWith("garden")) {
            "the caret should still follow \"garden\": \"${mapped.text.text}\" at ${mapped.start}"
        }
        note("caret $caret -> ${mapped.start} (B inserted ${B_INSERTS_BEFORE.length} UTF-16 units before it)")

        // A's field never refreshed: A types into the text it held, at the version it held.
        val typedOnStale = held.text.substring(0, caret) + A_TYPES_STALE + held.text.substring(caret)
        val merged = phoneA.editSectionText(visitId, WHAT_MATTERS, held.version, held.text, typedOnStale)
        checkEquals(MERGED, merged.text, "the concurrent edits merged")
        check(phoneA.syncNow(SYNC_DEADLINE).complete) { "phone A's sync should complete" }
        check(phoneB.syncNow(SYNC_DEADLINE).complete) { "phone B's sync should complete" }
        checkEquals(MERGED, sectionOf(phoneB), "phone B after syncing the merge")
        note("both phones read \"$MERGED\"")
        handle.close()
    }

    private fun sectionOf(phone: Outpost): String =
        phone.visit(visitId).sections.first { it.section == WHAT_MATTERS }.text

    private companion object {
        val TYPED_ON_A = listOf(
            "Rosa",
            "Rosa wants to keep",
            "Rosa wants to keep her garden",
            "Rosa wants to keep her garden and café mornings",
        )
        const val B_INSERTS_BEFORE = "vegetable 🥕 "
        const val B_APPENDS = "; her son Tomás visits on Sundays"
        const val A_TYPES_STALE = " and herbs"
        const val MERGED =
            "Rosa wants to keep her vegetable 🥕 garden and herbs and café mornings; her son Tomás visits on Sundays"
    }
}
