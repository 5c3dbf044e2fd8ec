package app.outpost.demo.data

import uniffi.outpost.CaseloadEntry
import uniffi.outpost.Review
import uniffi.outpost.Section
import uniffi.outpost.SectionText
import uniffi.outpost.Visit
import uniffi.outpost.VisitSummary

/** A person on the caseload with their visits, newest first: one caseload row. */
data class PersonWithVisits(val person: CaseloadEntry, val visits: List<VisitSummary>)

/** Everything the visit editor shows, read in one trip to the io thread. */
data class VisitDetails(
    val visit: Visit,
    val personName: String,
    val review: Review,
    /** Each section's text with the version it was read at, as a text field needs it. */
    val sections: Map<Section, SectionText>,
)
