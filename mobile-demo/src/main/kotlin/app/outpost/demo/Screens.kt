package app.outpost.demo

import app.outpost.demo.ui.AssessmentUiState
import app.outpost.demo.ui.CaseloadUiState
import app.outpost.demo.ui.SyncUiState
import app.outpost.demo.ui.VisitEditorUiState
import java.time.OffsetDateTime
import java.time.ZoneId
import java.time.format.DateTimeFormatter
import uniffi.outpost.Outcome
import uniffi.outpost.Section

/** Draws each screen's UI state as a boxed block of text: what an Activity or Compose screen would show. */
object Screens {
    private const val WIDTH = 84
    private val time = DateTimeFormatter.ofPattern("d MMM HH:mm").withZone(ZoneId.systemDefault())

    fun sync(state: SyncUiState, title: String = "Sync") = box(title) {
        row("Enrolled as", state.enrolledAs ?: "not enrolled")
        row("Network", if (state.online) "online" else "offline")
        row("Waiting to send", plural(state.pendingRecords, "record"))
        row("Syncing", if (state.syncing) "yes" else "no")
        row("Last sync", state.lastSync?.let { "sent ${it.sent}, received ${it.received}" + if (it.complete) "" else " (stopped at deadline)" } ?: "none yet")
        row("Last success", state.lastSuccess?.let(::shortTime) ?: "never")
        state.lastError?.let { row("Last error", it) }
        state.message?.let { line("! $it") }
    }

    fun caseload(state: CaseloadUiState) = box("Caseload") {
        if (state.people.isEmpty()) line("(nobody yet)")
        for (person in state.people) {
            line("${person.name}  ·  risk ${person.risk?.name?.lowercase() ?: "-"}  ·  ${plural(person.openActions, "open action")}")
            for (visit in person.visits) {
                val state = visit.reviewState?.name?.lowercase() ?: "-"
                line("    visit ${visit.at?.let(time::format) ?: "-"}  ${visit.setting?.label() ?: ""}  [$state]")
            }
        }
        state.message?.let { line("! $it") }
    }

    fun visit(state: VisitEditorUiState) = box("Visit · ${state.personName} · ${state.at?.let(time::format) ?: ""}") {
        row("Review", state.review.state?.name?.lowercase() ?: "-")
        state.notice?.let { line("▶ $it") }
        for (field in state.fields.filter { it.text.isNotEmpty() }) {
            line(field.section.label())
            line("    ${field.text}")
        }
        if (state.actions.isNotEmpty()) line("Actions agreed")
        for (action in state.actions) {
            val tick = if (action.done) "[x]" else "[ ]"
            line("    $tick ${action.what} (${action.who}${action.due?.let { ", by $it" } ?: ""})")
        }
        if (state.review.history.isNotEmpty()) line("Review history")
        for (step in state.review.history) {
            val comment = step.comment?.let { ": \"$it\"" } ?: ""
            line("    ${step.action.name.lowercase()} by ${step.by ?: "?"}, ${time.format(step.at)}$comment")
        }
        state.message?.let { line("! $it") }
    }

    fun assessment(state: AssessmentUiState) = box("Assessment · ${state.form?.template?.title ?: "choose a form"}") {
        for (section in state.form?.sections.orEmpty()) {
            line(section.title)
            for (question in section.questions) {
                row("    ${question.text}", question.outcome?.label() ?: "not answered yet", 48)
                question.note?.let { line("        \"$it\"") }
            }
        }
        state.message?.let { line("! $it") }
    }

    /** A plain message between screens: what the worker (or lead) does next. */
    fun narrate(text: String) = println("\n» $text")

    private class Box {
        val lines = mutableListOf<String>()
        fun line(text: String) = wrap(text, WIDTH - 4).forEach { lines += it }
        fun row(label: String, value: String, labelWidth: Int = 16) = line(label.padEnd(labelWidth) + value)
    }

    private fun box(title: String, content: Box.() -> Unit) {
        val body = Box().apply(content).lines
        println()
        println("┌─ $title " + "─".repeat((WIDTH - title.length - 5).coerceAtLeast(0)) + "┐")
        body.forEach { println("│ ${it.padEnd(WIDTH - 4)} │") }
        println("└" + "─".repeat(WIDTH - 2) + "┘")
    }

    /** Breaks [text] into lines of at most [width], keeping its indent (and indenting more after a break). */
    private fun wrap(text: String, width: Int): List<String> {
        val indent = text.takeWhile { it == ' ' }
        val lines = mutableListOf<String>()
        var current = indent
        for (word in text.trim().split(' ')) {
            if (current.isNotBlank() && current.length + 1 + word.length > width) {
                lines += current
                current = "$indent  "
            }
            current += if (current.isBlank()) word else " $word"
        }
        return lines + current
    }

    private fun plural(count: Long, noun: String) = "$count $noun" + if (count == 1L) "" else "s"

    /** An RFC 3339 time from the core, as a person reads it. */
    private fun shortTime(rfc3339: String) =
        runCatching { time.format(OffsetDateTime.parse(rfc3339)) }.getOrDefault(rfc3339)

    private fun Section.label() = name.lowercase().replace('_', ' ').replaceFirstChar { it.uppercase() }

    private fun uniffi.outpost.Setting.label() = name.lowercase().replace('_', ' ')

    private fun Outcome.label() = name.lowercase().replace('_', ' ')
}
