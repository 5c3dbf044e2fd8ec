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

    /** Waits (statuses arrive on a thread of their own) until a sync was seen to start and end. */
    fun awaitSyncEnd(timeoutMs: Long = 10_000): List<SyncStatus> {
        val until = System.currentTimeMillis() + timeoutMs
        while (true) {
            val seen = snapshot()
            val started = seen.indexOfFirst { it.syncing }
            if ((started >= 0 && seen.drop(started + 1).any { !it.syncing }) || System.currentTimeMillis() > until) {
                return seen
            }
            Thread.sleep(20)
        }
    }
}
