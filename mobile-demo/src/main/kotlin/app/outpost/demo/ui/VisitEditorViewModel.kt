package app.outpost.demo.ui

import app.outpost.demo.data.OutpostRepository
import app.outpost.demo.data.VisitDetails
import java.time.Instant
import uniffi.outpost.ChangeOrigin
import uniffi.outpost.NewAction
import uniffi.outpost.RecordChange
import uniffi.outpost.Review
import uniffi.outpost.ReviewAction
import uniffi.outpost.ReviewState
import uniffi.outpost.Section

/** The visit screen: the conversation's sections as text fields, agreed actions, the review. */
data class VisitEditorUiState(
    val visitId: String? = null,
    val personName: String = "",
    val at: Instant? = null,
    val fields: List<TextFieldState> = emptyList(),
    val actions: List<ActionRow> = emptyList(),
    val review: ReviewPanel = ReviewPanel(),
    /** An edit is being saved; the fields wait for it (see [VisitEditorViewModel.type]). */
    val saving: Boolean = false,
    /** Something that arrived by sync and the worker should see, such as a returned review. */
    val notice: String? = null,
    val message: String? = null,
) {
    fun field(section: Section): TextFieldState? = fields.firstOrNull { it.section == section }
}

/** A text field: the text it shows, the version that text was read at, and the caret. */
data class TextFieldState(val section: Section, val text: String, val version: String, val caret: Int)

data class ActionRow(val what: String, val who: String, val due: String?, val done: Boolean, val cancelled: Boolean)

data class ReviewPanel(val state: ReviewState? = null, val history: List<ReviewLine> = emptyList()) {
    /** The team lead's comment when the visit is returned. */
    val returnComment: ReviewLine?
        get() = history.lastOrNull { it.action == ReviewAction.RETURN }?.takeIf { state == ReviewState.RETURNED }
}

data class ReviewLine(val action: ReviewAction, val by: String?, val at: Instant, val comment: String?)

class VisitEditorViewModel(private val repository: OutpostRepository) : AutoCloseable {
    val state = LiveValue(VisitEditorUiState())
    private val changes = repository.observeRecords(::onRecordsChanged)

    fun open(visitId: String) = repository.visitDetails(visitId) { result ->
        result.onSuccess { details -> state.update { VisitEditorUiState().withDetails(details) } }
            .onFailure(::showError)
    }

    /**
     * The worker typed: [text] is what the field holds now, [caret] where the caret is. One edit
     * is saved at a time (the field is busy meanwhile); the reply is the text to show, which
     * includes anything a colleague's sync merged in.
     */
    fun type(section: Section, text: String, caret: Int = text.length) {
        val current = state.value
        val visitId = current.visitId ?: return
        val field = current.field(section) ?: return
        if (current.saving) return showError(IllegalStateException("still saving the last edit"))
        state.update { it.withField(field.copy(text = text, caret = caret)).copy(saving = true) }
        repository.editSectionText(visitId, section, field.version, field.text, text) { result ->
            result.onSuccess { saved ->
                state.update {
                    it.withField(TextFieldState(section, saved.text, saved.version, caret.coerceAtMost(saved.text.length)))
                        .copy(saving = false, message = null)
                }
            }.onFailure { error ->
                // Show the saved text again: nothing half-saved stays on screen.
                state.update { it.withField(field).copy(saving = false, message = userMessage(error)) }
            }
        }
    }

    fun agreeAction(what: String, who: String, due: String?) {
        val visitId = state.value.visitId ?: return
        repository.addAction(visitId, NewAction(what, who, due)) { result ->
            result.onSuccess { reload(visitId) }.onFailure(::showError)
        }
    }

    /** Sends the visit to the team lead (again, after it was returned). */
    fun submitForReview() {
        val visitId = state.value.visitId ?: return
        repository.reviewVisit(visitId, ReviewAction.SUBMIT, null) { result ->
            result.onSuccess {
                state.update { it.copy(notice = null) }
                reload(visitId)
            }.onFailure(::showError)
        }
    }

    override fun close() = changes.close()

    /** A sync brought changes to this visit or its review: show them, keeping each caret in place. */
    private fun onRecordsChanged(change: RecordChange) {
        val visitId = state.value.visitId ?: return
        if (change.origin != ChangeOrigin.SYNC) return
        val visitChanged = visitId in change.ids
        if (!visitChanged && "$visitId.review" !in change.ids) return
        if (visitChanged) mapFields(visitId)
        reload(visitId, fromSync = true)
    }

    /** Brings each field to the current text, its caret kept by the same characters. */
    private fun mapFields(visitId: String) {
        state.value.fields.forEach { field ->
            repository.mapCaret(visitId, field.section, field.version, field.caret) { result ->
                result.onSuccess { mapped ->
                    // Only if the field has not moved on (been typed in) since it was asked.
                    if (state.value.field(field.section)?.version == field.version) {
                        val moved = TextFieldState(field.section, mapped.text.text, mapped.text.version, mapped.start)
                        state.update { it.withField(moved) }
                    }
                }.onFailure(::showError)
            }
        }
    }

    /** Reloads actions and review; the fields keep what they show (they follow their own edits). */
    private fun reload(visitId: String, fromSync: Boolean = false) = repository.visitDetails(visitId) { result ->
        result.onSuccess { details ->
            val wasReturned = state.value.review.state == ReviewState.RETURNED
            state.update { current ->
                val review = panel(details.review)
                val returnedNow = fromSync && !wasReturned && review.state == ReviewState.RETURNED
                current.copy(
                    actions = actions(details),
                    review = review,
                    notice = if (returnedNow) review.returnNotice() else current.notice,
                )
            }
        }.onFailure(::showError)
    }

    private fun showError(error: Throwable) = state.update { it.copy(message = userMessage(error)) }
}

private fun VisitEditorUiState.withDetails(details: VisitDetails) = copy(
    visitId = details.visit.id,
    personName = details.personName,
    at = details.visit.at.value,
    fields = details.sections.map { (section, shown) -> TextFieldState(section, shown.text, shown.version, shown.text.length) },
    actions = actions(details),
    review = panel(details.review),
)

private fun VisitEditorUiState.withField(field: TextFieldState) =
    copy(fields = fields.map { if (it.section == field.section) field else it })

private fun actions(details: VisitDetails) = details.visit.actions.map {
    ActionRow(it.what?.value.orEmpty(), it.who?.value.orEmpty(), it.due?.value, it.done, it.cancelled)
}

private fun ReviewPanel.returnNotice(): String {
    val returned = returnComment
    return "Returned by ${returned?.by ?: "your team lead"}: ${returned?.comment ?: "(no comment)"}"
}

private fun panel(review: Review) = ReviewPanel(
    state = review.state.value,
    history = review.history.map { ReviewLine(it.action, it.byWorker, it.at, it.comment) },
)
