package app.outpost.demo.ui

import app.outpost.demo.data.OutpostRepository
import uniffi.outpost.ServerConfig
import uniffi.outpost.SyncOutcome
import uniffi.outpost.SyncStatus

/** The sync screen: who this phone is, whether it has signal, and what is waiting to be sent. */
data class SyncUiState(
    val enrolledAs: String? = null,
    val online: Boolean = true,
    val syncing: Boolean = false,
    val pendingRecords: Long = 0,
    val lastSuccess: String? = null,
    val lastError: String? = null,
    /** The latest sync this screen started, and how many it has finished. */
    val lastSync: SyncSummary? = null,
    val syncsFinished: Int = 0,
    val message: String? = null,
)

data class SyncSummary(val sent: Long, val received: Long, val complete: Boolean, val refused: List<String>)

class SyncViewModel(private val repository: OutpostRepository) : AutoCloseable {
    val state = LiveValue(SyncUiState())
    private val statusSubscription = repository.observeSyncStatus(::show)

    fun enrol(server: ServerConfig, code: String, deviceLabel: String) =
        repository.enrol(server, code, deviceLabel) { result ->
            result.onSuccess { enrolment ->
                state.update { it.copy(enrolledAs = "${enrolment.workerId} (team ${enrolment.teamId})", message = null) }
            }.onFailure(::showError)
        }

    /** What the platform's connectivity callback reports. */
    fun setOnline(online: Boolean) =
        repository.setNetworkAvailable(online) { result -> result.onFailure(::showError) }

    fun syncNow() = repository.syncNow { result ->
        // The status is read after the sync, so the pending count shown is the one it left.
        repository.syncStatus { status ->
            status.onSuccess(::show)
            state.update { current ->
                current.copy(
                    lastSync = result.getOrNull()?.let(::summary),
                    syncsFinished = current.syncsFinished + 1,
                    message = result.exceptionOrNull()?.let(::userMessage),
                )
            }
        }
    }

    fun refresh() = repository.syncStatus { result -> result.onSuccess(::show).onFailure(::showError) }

    override fun close() = statusSubscription.close()

    private fun show(status: SyncStatus) = state.update {
        it.copy(
            online = status.networkAvailable,
            syncing = status.syncing,
            pendingRecords = status.pendingRecords,
            lastSuccess = status.lastSuccess,
            lastError = status.lastError,
        )
    }

    private fun showError(error: Throwable) = state.update { it.copy(message = userMessage(error)) }

    private fun summary(outcome: SyncOutcome) = SyncSummary(
        sent = outcome.recordsSent,
        received = outcome.recordsReceived,
        complete = outcome.complete,
        refused = outcome.refused.toList(),
    )
}
