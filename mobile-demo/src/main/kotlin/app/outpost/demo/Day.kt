package app.outpost.demo

import app.outpost.demo.sim.LeadDesk
import app.outpost.demo.ui.AssessmentViewModel
import app.outpost.demo.ui.CaseloadUiState
import app.outpost.demo.ui.CaseloadViewModel
import app.outpost.demo.ui.SyncUiState
import app.outpost.demo.ui.SyncViewModel
import app.outpost.demo.ui.VisitEditorViewModel
import java.time.LocalDate
import java.util.concurrent.Executor
import uniffi.outpost.Outcome
import uniffi.outpost.ReviewState
import uniffi.outpost.RiskTier
import uniffi.outpost.Section
import uniffi.outpost.Setting

/** The screens' view models, as an Activity would hold them. */
data class ViewModels(
    val sync: SyncViewModel,
    val caseload: CaseloadViewModel,
    val visit: VisitEditorViewModel,
    val assessment: AssessmentViewModel,
)

/**
 * A social worker's day on the phone, played as taps on the screens: each action runs on the UI
 * thread ([ui]), then the day waits for the screen to show its result and draws the screen.
 */
class Day(
    private val config: DemoConfig,
    private val screens: ViewModels,
    private val ui: Executor,
    private val leadDesk: LeadDesk,
) {
    private val sync = screens.sync
    private val caseload = screens.caseload
    private val visit = screens.visit

    fun play() {
        Screens.narrate("Morning: Ann enrols her new phone with the code from her team's administrator.")
        tap { sync.enrol(config.server, config.enrolmentCode, "Ann's phone") }
        sync.state.await("enrolment", { it.message }) { it.enrolledAs != null }
        Screens.sync(sync.state.value, "Enrolled")

        Screens.narrate("She drives out to the villages. No signal.")
        tap { sync.setOnline(false) }
        Screens.sync(sync.state.await("going offline") { !it.online }, "Sync · offline")

        val rosa = addPerson("Rosa Martín", "Rosa", "2 Mill Lane, Upper Dean", RiskTier.MEDIUM)
        val rosaVisit = recordRosasVisit(rosa)
        assessRosa(rosa)
        val geoff = addPerson("Geoff Adeyemi", null, "Orchard Cottage, Long Dean", RiskTier.HIGH)
        val geoffVisit = recordGeoffsVisit(geoff)
        tap { caseload.refresh() }
        caseload.state.await("the caseload", { it.message }) { screen -> screen.people.size == 2 }
        Screens.caseload(caseload.state.value)

        Screens.narrate("Back in signal, the phone syncs.")
        tap { sync.setOnline(true) }
        Screens.sync(sync.state.await("coming online") { it.online }, "Sync · before")
        syncAndShow("Sync · after")

        Screens.narrate("Ann submits both visits for review.")
        submit(geoffVisit)
        submit(rosaVisit)
        syncAndShow("Sync · visits submitted")

        Screens.narrate("At the office, her team lead returns Rosa's visit with a comment.")
        println("  lead's desk: " + leadDesk.returnVisit(rosaVisit, LEAD_COMMENT))

        Screens.narrate("Ann's phone syncs; the visit she has open comes back returned.")
        syncAndShow("Sync · lead's decision received")
        val returned = visit.state.await("the returned review", { it.message }) {
            it.review.state == ReviewState.RETURNED && it.notice != null
        }
        expect(returned.review.returnComment?.comment == LEAD_COMMENT) { "the lead's comment is not shown: $returned" }
        Screens.visit(returned)
        tap { caseload.refresh() }
        Screens.caseload(caseload.state.await("the caseload to show the return") { screen -> screen.hasReview(rosaVisit, ReviewState.RETURNED) })

        Screens.narrate("Ann adds what the lead asked for and resubmits.")
        typeInto(Section.RISKS_AND_CONCERNS, "Rosa finds the stairs hard at night;", RESUBMITTED_RISKS)
        submit(rosaVisit)
        Screens.visit(visit.state.value)
        val end = syncAndShow("Sync · end of the day")
        expect(end.pendingRecords == 0L) { "records still wait to be sent: $end" }
    }

    private fun addPerson(name: String, preferred: String?, address: String, risk: RiskTier): String {
        Screens.narrate("Ann adds $name to her caseload.")
        return caseload.state.awaitCallback("adding $name", { it.message }) { done ->
            tap { caseload.addPerson(name, preferred, address, risk, done) }
        }
    }

    private fun recordRosasVisit(rosa: String): String {
        Screens.narrate("A home visit with Rosa: a conversation about what matters to her.")
        val visitId = startVisit(rosa, Setting.HOME_VISIT)
        typeInto(Section.WHAT_MATTERS, "Rosa wants to stay in her own home", "Rosa wants to stay in her own home and keep her garden going.")
        typeInto(Section.STRENGTHS, "Cooks for herself most days; knows everyone on Mill Lane.")
        typeInto(Section.SUPPORT_NETWORK, "Her son Tomás visits on Sundays; June next door checks in daily.")
        agree("Ask the garden club about their volunteer scheme", "Ann", inDays = 14)
        agree("Ask the OT about a second stair rail", "Ann", inDays = 7)
        Screens.visit(visit.state.value)
        return visitId
    }

    private fun recordGeoffsVisit(geoff: String): String {
        Screens.narrate("A second visit: Geoff, who fell in March.")
        val visitId = startVisit(geoff, Setting.HOME_VISIT)
        typeInto(Section.WHAT_MATTERS, "Geoff wants to get back to his allotment.")
        typeInto(Section.GOALS, "Walk to the allotment and back by the end of the month.")
        typeInto(Section.RISKS_AND_CONCERNS, "Lives alone; one fall in March, none since.")
        agree("Book a falls clinic appointment", "Geoff", inDays = 10)
        Screens.visit(visit.state.value)
        return visitId
    }

    private fun assessRosa(rosa: String) {
        Screens.narrate("Rosa needs a Care Act assessment, but only daily living and her home.")
        val assessment = screens.assessment
        tap { assessment.loadTemplates() }
        val template = assessment.state.await("the assessment forms", { it.message }) { it.templates.isNotEmpty() }
            .templates.first { it.id == "care-act-2014-outcomes" }
        tap { assessment.start(rosa, template, listOf("daily_living", "home")) }
        assessment.state.await("the assessment form", { it.message }) { it.form != null }
        answer("nutrition", Outcome.ACHIEVES, "Cooks for herself most days")
        answer("home_safety", Outcome.ACHIEVES_WITH_DIFFICULTY, "The stairs are hard at night")
        Screens.assessment(assessment.state.value)
    }

    private fun answer(question: String, outcome: Outcome, note: String) {
        val assessment = screens.assessment
        tap { assessment.answer(question, outcome, note) }
        assessment.state.await("answering $question", { it.message }) { screen ->
            screen.form?.sections.orEmpty().flatMap { it.questions }.any { it.id == question && it.outcome == outcome }
        }
    }

    private fun startVisit(person: String, setting: Setting): String {
        val visitId = caseload.state.awaitCallback("starting a visit", { it.message }) { done ->
            tap { caseload.startVisit(person, setting, done) }
        }
        tap { visit.open(visitId) }
        visit.state.await("the visit editor", { it.message }) { it.visitId == visitId }
        return visitId
    }

    /** Types into a section's field in bursts, each saved before the next (as a debounce would). */
    private fun typeInto(section: Section, vararg bursts: String) {
        for (text in bursts) {
            tap { visit.type(section, text) }
            visit.state.await("saving ${section.name}", { it.message }) { !it.saving && it.field(section)?.text == text }
        }
    }

    private fun agree(what: String, who: String, inDays: Long) {
        val due = LocalDate.now().plusDays(inDays).toString()
        tap { visit.agreeAction(what, who, due) }
        visit.state.await("agreeing \"$what\"", { it.message }) { screen -> screen.actions.any { it.what == what } }
    }

    private fun submit(visitId: String) {
        tap { visit.open(visitId) }
        visit.state.await("opening the visit", { it.message }) { it.visitId == visitId }
        tap { visit.submitForReview() }
        visit.state.await("submitting", { it.message }) { it.review.state == ReviewState.SUBMITTED }
    }

    private fun syncAndShow(title: String): SyncUiState {
        val before = sync.state.value.syncsFinished
        tap { sync.syncNow() }
        val after = sync.state.await("a sync", { it.message }) { it.syncsFinished > before }
        expect(after.lastSync?.complete == true) { "the sync did not complete: $after" }
        expect(after.lastSync?.refused.isNullOrEmpty()) { "the server refused records: $after" }
        Screens.sync(after, title)
        return after
    }

    private fun tap(action: () -> Unit) = ui.execute(action)

    private companion object {
        const val LEAD_COMMENT = "Please record what Rosa said about the stairs at night."
        const val RESUBMITTED_RISKS =
            "Rosa finds the stairs hard at night; she leaves the landing light on and would like a second rail."
    }
}

private fun CaseloadUiState.hasReview(visitId: String, review: ReviewState) =
    people.any { person -> person.visits.any { it.visitId == visitId && it.reviewState == review } }
