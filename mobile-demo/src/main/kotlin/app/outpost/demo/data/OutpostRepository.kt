package app.outpost.demo.data

import java.time.Duration
import java.util.concurrent.Executor
import uniffi.outpost.Assessment
import uniffi.outpost.Enrolment
import uniffi.outpost.MappedSelection
import uniffi.outpost.NewAction
import uniffi.outpost.NewAssessment
import uniffi.outpost.NewPerson
import uniffi.outpost.NewVisit
import uniffi.outpost.ObserverHandle
import uniffi.outpost.Outcome
import uniffi.outpost.Outpost
import uniffi.outpost.RecordChange
import uniffi.outpost.RecordObserver
import uniffi.outpost.Review
import uniffi.outpost.ReviewAction
import uniffi.outpost.ReviewState
import uniffi.outpost.Section
import uniffi.outpost.SectionText
import uniffi.outpost.ServerConfig
import uniffi.outpost.SyncOutcome
import uniffi.outpost.SyncStatus
import uniffi.outpost.SyncStatusObserver
import uniffi.outpost.Template
import uniffi.outpost.assessmentTemplates as knownTemplates

/**
 * The one owner of the app's [Outpost]. Every Outpost call blocks (on disk, some on the
 * network), so each runs on [io], one at a time, and its result is posted to [main] (on Android,
 * the main thread's executor). In an Android app this is a singleton made with the Application.
 */
class OutpostRepository(
    private val storePath: String,
    private val io: Executor,
    private val main: Executor,
) : AutoCloseable {
    // Opened on first use, on the io thread, since opening reads the disk. No key: on a phone it
    // comes from the platform keystore.
    private val outpost: Outpost by lazy { Outpost.open(storePath, null) }

    fun enrol(server: ServerConfig, code: String, deviceLabel: String, onResult: (Result<Enrolment>) -> Unit) =
        call(onResult) { enrol(server, code, deviceLabel) }

    /** Connectivity as the platform reports it (Android's NetworkCallback). */
    fun setNetworkAvailable(available: Boolean, onResult: (Result<Unit>) -> Unit) =
        call(onResult) { setNetworkAvailable(available) }

    fun syncNow(onResult: (Result<SyncOutcome>) -> Unit) = call(onResult) { syncNow(SYNC_DEADLINE) }

    fun syncStatus(onResult: (Result<SyncStatus>) -> Unit) = call(onResult) { syncStatus() }

    /** The enrolled worker's caseload, each person with their visits. */
    fun caseload(onResult: (Result<List<PersonWithVisits>>) -> Unit) =
        call(onResult) { caseload().map { PersonWithVisits(it, visitsForPerson(it.personId)) } }

    fun createPerson(new: NewPerson, onResult: (Result<String>) -> Unit) = call(onResult) { createPerson(new) }

    fun createVisit(new: NewVisit, onResult: (Result<String>) -> Unit) = call(onResult) { createVisit(new) }

    fun visitDetails(visitId: String, onResult: (Result<VisitDetails>) -> Unit) =
        call(onResult) {
            val visit = visit(visitId)
            VisitDetails(
                visit = visit,
                personName = person(visit.personId).name.value,
                review = review(visitId),
                sections = Section.entries.associateWith { sectionText(visitId, it) },
            )
        }

    fun review(visitId: String, onResult: (Result<Review>) -> Unit) = call(onResult) { review(visitId) }

    /**
     * Saves what was typed into a field that showed [shownText], read at [version]; returns the
     * text (merged with anything that arrived meanwhile) and version the field should show now.
     */
    fun editSectionText(
        visitId: String,
        section: Section,
        version: String,
        shownText: String,
        typed: String,
        onResult: (Result<SectionText>) -> Unit,
    ) = call(onResult) { editSectionText(visitId, section, version, shownText, typed) }

    /** Where a caret in the text shown at [version] (a UTF-16 offset, as Kotlin counts) is now. */
    fun mapCaret(visitId: String, section: Section, version: String, caret: Int, onResult: (Result<MappedSelection>) -> Unit) =
        call(onResult) { mapSelection(visitId, section, version, caret, caret) }

    fun addAction(visitId: String, action: NewAction, onResult: (Result<String>) -> Unit) =
        call(onResult) { addAction(visitId, action) }

    fun reviewVisit(visitId: String, action: ReviewAction, comment: String?, onResult: (Result<ReviewState>) -> Unit) =
        call(onResult) { reviewVisit(visitId, action, comment) }

    fun assessmentTemplates(onResult: (Result<List<Template>>) -> Unit) = call(onResult) { knownTemplates() }

    fun createAssessment(new: NewAssessment, onResult: (Result<Assessment>) -> Unit) =
        call(onResult) { assessment(createAssessment(new)) }

    fun answer(assessmentId: String, question: String, outcome: Outcome, note: String?, onResult: (Result<Assessment>) -> Unit) =
        call(onResult) {
            answer(assessmentId, question, outcome, note)
            assessment(assessmentId)
        }

    /** Tells [listener], on the main thread, which records changed (by this phone or a sync). */
    fun observeRecords(listener: (RecordChange) -> Unit): AutoCloseable =
        Registration { onRecordsChanged { change -> main.execute { listener(change) } } }

    /** Tells [listener], on the main thread, each change of sync status. */
    fun observeSyncStatus(listener: (SyncStatus) -> Unit): AutoCloseable =
        Registration { onSyncStatusChanged { status -> main.execute { listener(status) } } }

    /** Closes the store once the calls already queued have run. */
    override fun close() = io.execute { outpost.close() }

    private fun <T> call(onResult: (Result<T>) -> Unit, work: Outpost.() -> T) =
        io.execute {
            val result = runCatching { outpost.work() }
            main.execute { onResult(result) }
        }

    /** An observer registered on the io thread; closing it unregisters it there. */
    private inner class Registration(subscribe: Outpost.() -> ObserverHandle) : AutoCloseable {
        private var handle: ObserverHandle? = null // touched only on the io thread

        init {
            io.execute { handle = outpost.subscribe() }
        }

        override fun close() = io.execute {
            handle?.close()
            handle = null
        }
    }

    private companion object {
        /** A sync stops cleanly at this deadline; the next one resumes. */
        val SYNC_DEADLINE: Duration = Duration.ofSeconds(30)
    }
}

/** The callback interfaces as Kotlin lambdas. */
private fun Outpost.onRecordsChanged(listener: (RecordChange) -> Unit): ObserverHandle =
    observeRecords(object : RecordObserver {
        override fun recordsChanged(change: RecordChange) = listener(change)
    })

private fun Outpost.onSyncStatusChanged(listener: (SyncStatus) -> Unit): ObserverHandle =
    observeSyncStatus(object : SyncStatusObserver {
        override fun syncStatusChanged(status: SyncStatus) = listener(status)
    })
