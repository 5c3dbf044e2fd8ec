package outpost.test

import java.util.concurrent.CopyOnWriteArrayList
import uniffi.outpost.RecordChange
import uniffi.outpost.RecordObserver
import uniffi.outpost.SyncStatus
import uniffi.outpost.SyncStatusObserver

/** Collects record changes; Rust calls in on whichever thread made the change. */
class RecordChanges : RecordObserver {
    private val seen = CopyOnWriteArrayList<RecordChange>()

    override fun recordsChanged(change: RecordChange) {
        seen += change
    }

    fun snapshot(): List<RecordChange> = seen.toList()
}

/** Collects sync statuses, in the order they were reported. */
class SyncStatuses : SyncStatusObserver {
    private val seen = CopyOnWriteArrayList<SyncStatus>()

    override fun syncStatusChanged(status: SyncStatus) {
        seen += status
    }

    fun snapshot(): List<SyncStatus> = seen.toList()
}
