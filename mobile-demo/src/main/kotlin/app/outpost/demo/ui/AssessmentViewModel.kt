package app.outpost.demo.ui

import app.outpost.demo.data.OutpostRepository
import java.time.Instant
import uniffi.outpost.Assessment
import uniffi.outpost.NewAssessment
import uniffi.outpost.Outcome
import uniffi.outpost.Template

/** The assessment screen: a proportionate form, only the sections the worker chose. */
data class AssessmentUiState(
    val templates: List<TemplateChoice> = emptyList(),
    val form: AssessmentForm? = null,
    val message: String? = null,
)

data class TemplateChoice(val id: String, val version: Long, val title: String, val sections: List<FormSection>)

/** An assessment being answered: [sections] are the template's chosen ones, with answers so far. */
data class AssessmentForm(val assessmentId: String, val template: TemplateChoice, val sections: List<FormSection>)

data class FormSection(val id: String, val title: String, val questions: List<FormQuestion>)

data class FormQuestion(val id: String, val text: String, val outcome: Outcome? = null, val note: String? = null)

class AssessmentViewModel(private val repository: OutpostRepository) {
    val state = LiveValue(AssessmentUiState())

    fun loadTemplates() = repository.assessmentTemplates { result ->
        result.onSuccess { templates -> state.update { it.copy(templates = templates.map(::choice)) } }
            .onFailure(::showError)
    }

    /** Starts an assessment for [personId] asking only [sectionIds] of the template. */
    fun start(personId: String, template: TemplateChoice, sectionIds: List<String>) {
        val new = NewAssessment(personId, Instant.now(), template.id, template.version, sectionIds)
        repository.createAssessment(new) { result ->
            result.onSuccess { assessment -> show(template, assessment) }.onFailure(::showError)
        }
    }

    fun answer(questionId: String, outcome: Outcome, note: String?) {
        val form = state.value.form ?: return
        repository.answer(form.assessmentId, questionId, outcome, note) { result ->
            result.onSuccess { assessment -> show(form.template, assessment) }.onFailure(::showError)
        }
    }

    private fun show(template: TemplateChoice, assessment: Assessment) {
        val answers = assessment.answers.associateBy { it.question }
        val sections = template.sections.filter { it.id in assessment.sections }.map { section ->
            section.copy(
                questions = section.questions.map { q ->
                    val answer = answers[q.id]
                    q.copy(outcome = answer?.outcome?.value, note = answer?.note?.value)
                },
            )
        }
        state.update { it.copy(form = AssessmentForm(assessment.id, template, sections), message = null) }
    }

    private fun showError(error: Throwable) = state.update { it.copy(message = userMessage(error)) }
}

private fun choice(template: Template) = TemplateChoice(
    id = template.id,
    version = template.version,
    title = template.title,
    sections = template.sections.map { section ->
        FormSection(section.id, section.title, section.questions.map { FormQuestion(it.id, it.text) })
    },
)
