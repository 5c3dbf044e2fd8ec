package outpost.test

import java.time.Instant
import uniffi.outpost.InternalException
import uniffi.outpost.NewAction
import uniffi.outpost.NewVisit
import uniffi.outpost.Outpost
import uniffi.outpost.OutpostException
import uniffi.outpost.Setting
import uniffi.outpost.forcePanicForTest

/** Typed errors, a Rust panic, and the sync status observer, on an enrolled phone. */
class FailureChecks(private val env: TestEnv, private val phone: Outpost, private val visitId: String) {
    fun run() {
        typedErrors()
        panicIsAnException()
        syncStatusObserver()
    }

    private fun typedErrors() {
        step("bad input arrives as typed exceptions")
        val badPerson = expectThrows<OutpostException.InvalidInput>("createVisit with person id \"a/b\"") {
            phone.createVisit(NewVisit("a/b", Instant.now(), Setting.CLINIC))
        }
        checkEquals("person id", badPerson.field, "the field named")

        val blankAction = expectThrows<OutpostException.InvalidInput>("addAction with a blank what") {
            phone.addAction(visitId, NewAction(what = "   ", who = "Rosa", due = null))
        }
        checkEquals("action what", blankAction.field, "the field named")

        val missing = expectThrows<OutpostException.NotFound>("visit(\"no-such-id\")") { phone.visit("no-such-id") }
        check(missing.what.contains("no-such-id")) { "NotFound should name the id: ${missing.what}" }

        val field = phone.sectionText(visitId, WHAT_MATTERS)
        val pastEnd = field.text.length + 1
        val offset = expectThrows<OutpostException.InvalidInput>("mapSelection past the end") {
            phone.mapSelection(visitId, WHAT_MATTERS, field.version, pastEnd, pastEnd)
        }
        check(offset.field.startsWith("selection")) { "the field should be the selection: ${offset.field}" }

        val phoneC = env.openStore("phone-c")
        expectThrows<OutpostException.NotAuthorised>("enrol with a wrong code") {
            phoneC.enrol(env.server, "AAAA-BBBB-CCCC-DDDD", "Phone C")
        }
        check(phoneC.enrolment() == null) { "a refused enrolment must leave the store unenrolled" }
        expectThrows<OutpostException.NotAuthorised>("pendingSync on an unenrolled phone") {
            phoneC.pendingSync()
        }
        phoneC.close()
    }

    private fun panicIsAnException() {
        step("a Rust panic arrives as InternalException and the library stays usable")
        val panic = expectThrows<InternalException>("forcePanicForTest(\"boom\")") { forcePanicForTest("boom") }
        check(panic.message.orEmpty().contains("boom")) { "the panic message should say boom: ${panic.message}" }
        val visit = phone.visit(visitId)
        checkEquals(visitId, visit.id, "reading the visit after the panic")
        note("read visit ${visit.id} after the panic")
    }

    private fun syncStatusObserver() {
        step("the sync status observer sees a sync start and end, and nothing once closed")
        val statuses = SyncStatuses()
        val handle = phone.observeSyncStatus(statuses)
        check(phone.syncNow(SYNC_DEADLINE).complete) { "the sync should complete" }
        val seen = statuses.awaitSyncEnd()
        val started = seen.indexOfFirst { it.syncing }
        check(started >= 0) { "no status with syncing == true: $seen" }
        check(seen.drop(started + 1).any { !it.syncing }) { "no status with syncing == false after the start: $seen" }
        note("saw ${seen.map { if (it.syncing) "syncing" else "idle" }}")

        handle.close()
        val countWhenClosed = statuses.snapshot().size
        phone.setNetworkAvailable(false)
        phone.setNetworkAvailable(true)
        phone.addAction(visitId, NewAction(what = "Ring the garden club", who = "Rosa's son", due = "2030-01-31"))
        phone.syncNow(SYNC_DEADLINE)
        checkEquals(countWhenClosed, statuses.snapshot().size, "statuses seen after close()")
        note("no calls after close(): still $countWhenClosed statuses")
    }
}
