package app.outpost.demo.ui

import app.outpost.demo.data.OutpostRepository
import app.outpost.demo.data.PersonWithVisits
import java.time.Instant
import uniffi.outpost.NewPerson
import uniffi.outpost.NewVisit
import uniffi.outpost.ReviewState
import uniffi.outpost.RiskTier
import uniffi.outpost.Setting

/** The caseload screen: the worker's people and each one's visits. */
data class CaseloadUiState(
    val people: List<PersonRow> = emptyList(),
    val loaded: Boolean = false,
    val message: String? = null,
)

data class PersonRow(
    val personId: String,
    val name: String,
    val risk: RiskTier?,
    val openActions: Long,
    val visits: List<VisitRow>,
)

data class VisitRow(val visitId: String, val at: Instant?, val setting: Setting?, val reviewState: ReviewState?)

class CaseloadViewModel(private val repository: OutpostRepository) : AutoCloseable {
    val state = LiveValue(CaseloadUiState())

    // Any change, typed here or received by a sync, may change a row.
    private val changes = repository.observeRecords { refresh() }

    fun refresh() = repository.caseload { result ->
        result.onSuccess { people -> state.update { it.copy(people = people.map(::row), loaded = true, message = null) } }
            .onFailure(::showError)
    }

    /** Adds a person allocated to this worker; [onAdded] gets their id (a UI navigates there). */
    fun addPerson(name: String, preferredName: String?, address: String?, risk: RiskTier, onAdded: (String) -> Unit) {
        val person = NewPerson(
            name = name,
            preferredName = preferredName,
            dateOfBirth = null,
            nhsNumber = null,
            address = address,
            allocatedWorkers = emptyList(),
            risk = risk,
        )
        repository.createPerson(person) { result -> result.onSuccess(onAdded).onFailure(::showError) }
    }

    /** Starts a visit now; [onStarted] gets its id, for the visit editor to open. */
    fun startVisit(personId: String, setting: Setting, onStarted: (String) -> Unit) =
        repository.createVisit(NewVisit(personId, Instant.now(), setting)) { result ->
            result.onSuccess(onStarted).onFailure(::showError)
        }

    override fun close() = changes.close()

    private fun showError(error: Throwable) = state.update { it.copy(message = userMessage(error)) }

    private fun row(entry: PersonWithVisits) = PersonRow(
        personId = entry.person.personId,
        name = entry.person.preferredName?.let { "${entry.person.name} ($it)" } ?: entry.person.name,
        risk = entry.person.risk,
        openActions = entry.person.openActions,
        visits = entry.visits.map { VisitRow(it.visitId, it.at, it.setting, it.reviewState) },
    )
}
