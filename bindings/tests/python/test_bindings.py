"""The Python bindings against the real library and a real sync server.

Run by `cargo test -p outpost-bindings --test python`, which starts the server and sets:
OUTPOST_HOST, OUTPOST_PORT, OUTPOST_CA (PEM path), OUTPOST_CODE_1 and OUTPOST_CODE_2 (one-time
enrolment codes for workers w1 and w2 of team t1) and OUTPOST_WORK (a directory for stores).

Enrolment codes are spent once, so the class enrols phone A (w1) and phone B (w2) in
`setUpClass`; every test works on records of its own, so tests do not depend on their order.
Text positions are UTF-16 code units, as Android and iOS text fields count them.
"""

import datetime
import faulthandler
import os
import threading
import time
import unittest
import uuid
from datetime import timedelta

import outpost

SYNC_DEADLINE = timedelta(seconds=30)
SECTION = outpost.Section.WHAT_MATTERS
# A test that hangs dumps every thread's stack and ends the run rather than the CI job.
TEST_TIMEOUT_S = 180


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run through `cargo test -p outpost-bindings --test python`")
    return value


def server(pins=()):
    with open(env("OUTPOST_CA"), encoding="ascii") as f:
        ca_pem = f.read()
    return outpost.ServerConfig(host=env("OUTPOST_HOST"), port=int(env("OUTPOST_PORT")), ca_pem=ca_pem, pins=list(pins))


def store_path(name):
    return os.path.join(env("OUTPOST_WORK"), f"{name}-{uuid.uuid4().hex[:8]}.sqlite3")


def now():
    # uniffi timestamps must be timezone-aware datetimes.
    return datetime.datetime.now(datetime.timezone.utc)


def utf16_len(text):
    return len(text.encode("utf-16-le")) // 2


def utf16_slice(text, start, end):
    return text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le")


def new_person(phone, name="Ada Example", allocated_workers=()):
    return phone.create_person(
        outpost.NewPerson(
            name=name,
            preferred_name=None,
            date_of_birth="1950-04-01",
            nhs_number=None,
            address=None,
            allocated_workers=list(allocated_workers),
            risk=outpost.RiskTier.MEDIUM,
        )
    )


def new_visit(phone, person_id):
    return phone.create_visit(outpost.NewVisit(person_id=person_id, at=now(), setting=outpost.Setting.HOME_VISIT))


def type_text(phone, visit_id, pieces, section=SECTION):
    """Types `pieces` one after another through the text-field helper, as a text field would
    after each keystroke burst; returns the last SectionText."""
    shown = phone.section_text(visit_id, section)
    for piece in pieces:
        shown = phone.edit_section_text(visit_id, section, shown.version, shown.text, shown.text + piece)
    return shown


def sync(phone):
    outcome = phone.sync_now(SYNC_DEADLINE)
    assert outcome.complete, f"sync stopped at its deadline: {outcome}"
    assert not outcome.refused, f"the server refused records: {outcome.refused}"
    return outcome


def eventually(check, timeout_s, interval_s=0.1):
    """Calls `check` until it returns something truthy or the time runs out; returns the last
    result."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval_s)


def no_vitals(**given):
    fields = dict(
        respiration_rate=None,
        oxygen_saturation=None,
        spo2_scale=None,
        supplemental_oxygen=None,
        systolic_blood_pressure=None,
        pulse=None,
        consciousness=None,
        temperature=None,
    )
    fields.update(given)
    return outpost.Vitals(**fields)


class Recorder:
    """A RecordObserver that keeps what it is told; callbacks may come from Rust threads."""

    def __init__(self):
        self._changes = []
        self._cond = threading.Condition()

    def records_changed(self, change):
        with self._cond:
            self._changes.append(change)
            self._cond.notify_all()

    def changes(self):
        with self._cond:
            return list(self._changes)

    def wait_for(self, predicate, timeout_s=5.0):
        with self._cond:
            self._cond.wait_for(lambda: any(predicate(c) for c in self._changes), timeout_s)
            return [c for c in self._changes if predicate(c)]


class StatusRecorder:
    """A SyncStatusObserver that keeps every status it is told."""

    def __init__(self):
        self._statuses = []
        self._cond = threading.Condition()

    def sync_status_changed(self, status):
        with self._cond:
            self._statuses.append(status)
            self._cond.notify_all()

    def wait_for_sync_to_finish(self, timeout_s):
        """Waits until a sync has been seen to start and then end."""

        def finished():
            started = False
            for status in self._statuses:
                started = started or status.syncing
                if started and not status.syncing:
                    return True
            return False

        with self._cond:
            return self._cond.wait_for(finished, timeout_s)


class OutpostBindingsTest(unittest.TestCase):
    a = None
    b = None

    @classmethod
    def setUpClass(cls):
        cls.a = outpost.Outpost.open(store_path("phone-a"), None)
        cls.b = outpost.Outpost.open(store_path("phone-b"), None)
        cls.a.enrol(server(), env("OUTPOST_CODE_1"), "phone A")
        cls.b.enrol(server(), env("OUTPOST_CODE_2"), "phone B")

    @classmethod
    def tearDownClass(cls):
        # No automatic sync may outlive the interpreter: it calls back into Python.
        for phone in (cls.a, cls.b):
            if phone is not None:
                phone.stop_auto_sync()

    def setUp(self):
        faulthandler.dump_traceback_later(TEST_TIMEOUT_S, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)

    def observe(self, phone):
        recorder = Recorder()
        handle = phone.observe_records(recorder)
        self.addCleanup(handle.cancel)
        return recorder, handle

    def shared_visit(self, text):
        """A visit A wrote `text` into, synced to B; returns its id."""
        visit = new_visit(self.a, new_person(self.a))
        type_text(self.a, visit, [text])
        sync(self.a)
        sync(self.b)
        self.assertEqual(self.b.section_text(visit, SECTION).text, text)
        return visit

    # ---- enrolment ---------------------------------------------------------------------------

    def test_enrolment_names_the_worker_team_and_server(self):
        enrolment = self.a.enrolment()
        self.assertEqual(enrolment.worker_id, "w1")
        self.assertEqual(enrolment.team_id, "t1")
        self.assertEqual(enrolment.server_port, int(env("OUTPOST_PORT")))
        self.assertEqual(self.b.enrolment().worker_id, "w2")
        self.assertNotEqual(enrolment.device_id, self.b.enrolment().device_id)
        self.assertTrue(self.a.sync_status().enrolled)
        self.assertIsInstance(outpost.schema_version(), int)

    # ---- text field --------------------------------------------------------------------------

    def test_visit_typed_offline_is_pending_until_synced(self):
        person = new_person(self.a, "Offline Person")
        visit = new_visit(self.a, person)
        shown = type_text(self.a, visit, ["She ", "wants ", "to garden ", "again 🌱"])

        self.assertEqual(shown.text, "She wants to garden again 🌱")
        self.assertEqual(self.a.section_text(visit, SECTION).text, shown.text)
        sections = {entry.section: entry.text for entry in self.a.visit(visit).sections}
        self.assertEqual(sections[SECTION], shown.text)
        self.assertEqual(sections[outpost.Section.GOALS], "")
        pending = self.a.pending_sync()
        self.assertIn(visit, pending)
        self.assertIn(person, pending)
        self.assertGreaterEqual(self.a.sync_status().pending_records, 2)

        outcome = self.a.sync_now(SYNC_DEADLINE)

        self.assertTrue(outcome.complete)
        self.assertEqual(outcome.refused, [])
        self.assertGreaterEqual(outcome.records_sent, 2)
        self.assertEqual(self.a.pending_sync(), [])
        status = self.a.sync_status()
        self.assertEqual(status.pending_records, 0)
        self.assertIsNotNone(status.last_success)

    def test_remote_edit_arrives_through_observer_and_caret_is_mapped(self):
        visit = self.shared_visit("Met Zoë at home 👋. She wants to walk to the shops.")
        shown = self.a.section_text(visit, SECTION)
        caret = utf16_len(shown.text[: shown.text.index("walk")])
        # The caret is after an emoji, so UTF-16 units and code points differ already.
        self.assertNotEqual(caret, shown.text.index("walk"))

        insertion = "Tuesday, café 🙂: "
        self.assertNotEqual(utf16_len(insertion), len(insertion))
        on_b = self.b.section_text(visit, SECTION)
        self.b.edit_section_text(visit, SECTION, on_b.version, on_b.text, insertion + on_b.text)
        sync(self.b)
        recorder, _ = self.observe(self.a)
        sync(self.a)

        received = recorder.wait_for(lambda c: c.origin == outpost.ChangeOrigin.SYNC and visit in c.ids)
        self.assertTrue(received, f"no SYNC change naming {visit}: {recorder.changes()}")
        mapped = self.a.map_selection(visit, SECTION, shown.version, caret, caret)
        self.assertEqual(mapped.text.text, insertion + shown.text)
        self.assertNotEqual(mapped.text.version, shown.version)
        self.assertEqual(mapped.start, caret + utf16_len(insertion))
        self.assertEqual(mapped.end, mapped.start)

        end = caret + utf16_len("walk")
        selection = self.a.map_selection(visit, SECTION, shown.version, caret, end)
        self.assertEqual(selection.start, caret + utf16_len(insertion))
        self.assertEqual(selection.end, end + utf16_len(insertion))
        self.assertEqual(utf16_slice(selection.text.text, selection.start, selection.end), "walk")

    def test_concurrent_edits_from_a_stale_field_merge(self):
        visit = self.shared_visit("Goals: stay at home.")
        stale = self.a.section_text(visit, SECTION)
        on_b = self.b.section_text(visit, SECTION)
        self.b.edit_section_text(visit, SECTION, on_b.version, on_b.text, on_b.text + " B: see family.")
        sync(self.b)
        sync(self.a)
        self.assertIn("B: see family.", self.a.section_text(visit, SECTION).text)

        # A's field still shows the text from before B's edit arrived.
        merged = self.a.edit_section_text(visit, SECTION, stale.version, stale.text, "A: ✔ " + stale.text)

        self.assertEqual(merged.text, "A: ✔ Goals: stay at home. B: see family.")
        sync(self.a)
        sync(self.b)
        self.assertEqual(self.a.section_text(visit, SECTION).text, merged.text)
        self.assertEqual(self.b.section_text(visit, SECTION).text, merged.text)

    # ---- typed errors ------------------------------------------------------------------------

    def test_person_id_with_a_slash_is_invalid_input(self):
        with self.assertRaises(outpost.OutpostError.InvalidInput) as raised:
            self.a.visits_for_person("w1/person")
        self.assertEqual(raised.exception.field, "person id")
        with self.assertRaises(outpost.OutpostError.InvalidInput) as raised:
            new_visit(self.a, "w1/person")
        self.assertEqual(raised.exception.field, "person id")

    def test_blank_action_is_invalid_input(self):
        visit = new_visit(self.a, new_person(self.a))
        with self.assertRaises(outpost.OutpostError.InvalidInput) as raised:
            self.a.add_action(visit, outpost.NewAction(what="   ", who="w1", due=None))
        self.assertEqual(raised.exception.field, "action what")
        self.assertTrue(raised.exception.reason)
        self.assertEqual(self.a.visit(visit).actions, [])

    def test_unknown_visit_is_not_found(self):
        with self.assertRaises(outpost.OutpostError.NotFound) as raised:
            self.a.visit("visit-that-was-never-made")
        self.assertIn("visit-that-was-never-made", raised.exception.what)
        with self.assertRaises(outpost.OutpostError.NotFound):
            self.a.section_text("visit-that-was-never-made", SECTION)

    def test_action_due_that_is_not_a_date_is_invalid_input(self):
        visit = new_visit(self.a, new_person(self.a))
        with self.assertRaises(outpost.OutpostError.InvalidInput) as raised:
            self.a.add_action(visit, outpost.NewAction(what="Ring the GP", who="w1", due="31/12/2030"))
        self.assertEqual(raised.exception.field, "action due")
        self.assertIn("31/12/2030", raised.exception.reason)
        self.assertEqual(self.a.visit(visit).actions, [])

        action = self.a.add_action(visit, outpost.NewAction(what="Ring the GP", who="w1", due="2030-12-31"))
        [stored] = self.a.visit(visit).actions
        self.assertEqual(stored.id, action)
        self.assertEqual(stored.due.value, "2030-12-31")

    def test_store_key_of_the_wrong_length_is_invalid_input(self):
        with self.assertRaises(outpost.OutpostError.InvalidInput) as raised:
            outpost.Outpost.open(store_path("short-key"), b"\x01" * 16)
        self.assertEqual(raised.exception.field, "key")
        opened = outpost.Outpost.open(store_path("good-key"), b"\x01" * 32)
        self.assertIsNone(opened.enrolment())

    def test_pin_that_is_not_hex_is_invalid_input(self):
        phone = outpost.Outpost.open(store_path("pinned"), None)
        for pin in ["not-a-pin", "zz" * 32, "ab" * 31]:
            with self.subTest(pin=pin):
                with self.assertRaises(outpost.OutpostError.InvalidInput) as raised:
                    phone.enrol(server(pins=[pin]), "NO-CODE-NEEDED", "pinned phone")
                self.assertEqual(raised.exception.field, "pin")
        self.assertIsNone(phone.enrolment())

    def test_pin_not_matching_the_server_key_is_refused_at_the_handshake(self):
        phone = outpost.Outpost.open(store_path("mispinned"), None)
        with self.assertRaises(outpost.OutpostError.Network) as raised:
            phone.enrol(server(pins=["00" * 32]), "NO-CODE-NEEDED", "mispinned phone")
        self.assertIn("pinned key", raised.exception.reason)
        self.assertIsNone(phone.enrolment())

    def test_wrong_enrolment_code_is_not_authorised(self):
        phone = outpost.Outpost.open(store_path("stranger"), None)
        with self.assertRaises(outpost.OutpostError.NotAuthorised):
            phone.enrol(server(), "WRONG-CODE-0000", "stranger's phone")
        self.assertIsNone(phone.enrolment())
        self.assertFalse(phone.sync_status().enrolled)
        # Nothing can be written before enrolment.
        with self.assertRaises(outpost.OutpostError.NotAuthorised):
            new_person(phone)

    def test_panic_is_internal_error_and_store_still_works(self):
        visit = new_visit(self.a, new_person(self.a))
        with self.assertRaises(outpost.InternalError) as raised:
            outpost.force_panic_for_test("boom")
        self.assertIn("boom", str(raised.exception))

        type_text(self.a, visit, ["still here"])
        self.assertEqual(self.a.section_text(visit, SECTION).text, "still here")
        self.assertIn(visit, self.a.pending_sync())

    # ---- automatic sync ----------------------------------------------------------------------

    def start_auto_sync(self, phone):
        statuses = StatusRecorder()
        handle = phone.observe_sync_status(statuses)
        self.addCleanup(handle.cancel)
        phone.start_auto_sync(
            outpost.AutoSyncConfig(
                every=timedelta(seconds=60),
                after_edit=timedelta(milliseconds=200),
                deadline=timedelta(seconds=20),
            )
        )
        self.addCleanup(phone.set_network_available, True)
        self.addCleanup(phone.stop_auto_sync)
        # Automatic sync starts with a sync; let it finish so the edits below are new to it.
        self.assertTrue(statuses.wait_for_sync_to_finish(20), "the first automatic sync did not finish")
        return statuses

    def b_sees(self, visit, text, timeout_s=15):
        def check():
            sync(self.b)
            try:
                return self.b.section_text(visit, SECTION).text == text
            except outpost.OutpostError.NotFound:
                return False

        return eventually(check, timeout_s, interval_s=0.25)

    def test_auto_sync_sends_an_edit_without_sync_now(self):
        self.start_auto_sync(self.a)
        self.assertTrue(self.a.sync_status().auto_sync)
        visit = new_visit(self.a, new_person(self.a))

        type_text(self.a, visit, ["sent by auto sync"])

        self.assertTrue(self.b_sees(visit, "sent by auto sync"), "the edit did not reach B")
        self.assertEqual(eventually(lambda: visit not in self.a.pending_sync(), 5), True)

    def test_auto_sync_holds_edits_while_the_network_is_down(self):
        # Shared first, so no automatic sync of these records is under way when the network goes.
        visit = self.shared_visit("before the tunnel")
        self.start_auto_sync(self.a)
        self.a.set_network_available(False)
        self.assertFalse(self.a.sync_status().network_available)

        type_text(self.a, visit, [", in the tunnel"])

        # Ten times `after_edit`: a sync would have sent it by now.
        time.sleep(2)
        self.assertIn(visit, self.a.pending_sync())
        self.a.set_network_available(True)
        self.assertTrue(self.b_sees(visit, "before the tunnel, in the tunnel"), "the edit did not reach B")
        self.assertEqual(eventually(lambda: visit not in self.a.pending_sync(), 5), True)

    def test_stop_auto_sync_returns_and_status_says_off(self):
        self.start_auto_sync(self.a)
        self.assertTrue(self.a.sync_status().auto_sync)
        type_text(self.a, new_visit(self.a, new_person(self.a)), ["edit just before stopping"])

        self.a.stop_auto_sync()

        self.assertFalse(self.a.sync_status().auto_sync)
        self.a.stop_auto_sync()  # stopping twice is harmless

    # ---- a person's records ------------------------------------------------------------------

    def test_caseload_lists_a_person_allocated_to_w1(self):
        person = new_person(self.a, "Caseload Person", allocated_workers=["w1"])
        [entry] = [e for e in self.a.caseload() if e.person_id == person]
        self.assertEqual(entry.name, "Caseload Person")
        self.assertEqual(entry.risk, outpost.RiskTier.MEDIUM)
        self.assertEqual(self.a.person(person).allocated_workers, ["w1"])
        self.assertIn(person, [e.person_id for e in self.a.team_caseload()])
        # Allocated to someone else, a person is in the team's caseload but not w1's.
        theirs = new_person(self.a, "Someone Else's", allocated_workers=["w2"])
        self.assertNotIn(theirs, [e.person_id for e in self.a.caseload()])
        self.assertIn(theirs, [e.person_id for e in self.a.team_caseload()])

    def test_visits_for_person_lists_their_visits(self):
        person = new_person(self.a)
        first = new_visit(self.a, person)
        second = new_visit(self.a, person)
        visits = self.a.visits_for_person(person)
        self.assertEqual({v.visit_id for v in visits}, {first, second})
        for summary in visits:
            self.assertEqual(summary.person_id, person)
            self.assertEqual(summary.worker, "w1")
            self.assertEqual(summary.setting, outpost.Setting.HOME_VISIT)
            self.assertEqual(summary.review_state, outpost.ReviewState.DRAFT)
        self.assertEqual(self.a.visits_for_person(new_person(self.a)), [])

    def test_search_finds_a_typed_word(self):
        person = new_person(self.a)
        visit = new_visit(self.a, person)
        word = "xylophone" + uuid.uuid4().hex[:6]
        type_text(self.a, visit, ["She played the ", word, " at the hub."])
        hits = self.a.search(word, 10)
        self.assertEqual([(h.visit_id, h.person_id) for h in hits], [(visit, person)])
        self.assertIn(f"[{word}]", hits[0].snippet)
        self.assertEqual(self.a.search("zzqqnotaword", 10), [])

    def test_assessment_with_one_section_answers_and_reads_back(self):
        [template] = outpost.assessment_templates()
        section = template.sections[0]
        question = section.questions[0]
        person = new_person(self.a)
        assessment = self.a.create_assessment(
            outpost.NewAssessment(
                person_id=person,
                at=now(),
                template_id=template.id,
                template_version=template.version,
                sections=[section.id],
            )
        )

        self.a.answer(assessment, question.id, outpost.Outcome.ACHIEVES_WITH_DIFFICULTY, "needs help with stairs")

        read = self.a.assessment(assessment)
        self.assertEqual(read.person_id, person)
        self.assertEqual(read.template_id, template.id)
        self.assertEqual(read.sections, [section.id])
        self.assertEqual(read.assessor.value, "w1")
        [answer] = read.answers
        self.assertEqual(answer.question, question.id)
        self.assertEqual(answer.outcome.value, outpost.Outcome.ACHIEVES_WITH_DIFFICULTY)
        self.assertEqual(answer.note.value, "needs help with stairs")

    def test_all_seven_vitals_give_a_news2_score(self):
        observations = self.a.create_observations(new_person(self.a), now())
        recorded = self.a.record_vitals(
            observations,
            outpost.Vitals(
                respiration_rate=22,  # 2
                oxygen_saturation=95,  # 1 on scale 1
                spo2_scale=outpost.SpO2Scale.SCALE1,
                supplemental_oxygen=False,  # 0
                systolic_blood_pressure=105,  # 1
                pulse=95,  # 1
                consciousness=outpost.Consciousness.ALERT,  # 0
                temperature=38.5,  # 1
            ),
        )
        self.assertIsNotNone(recorded.news2)
        self.assertEqual(recorded.news2.total, 6)
        self.assertEqual(recorded.news2.risk, outpost.ClinicalRisk.MEDIUM)
        self.assertEqual(self.a.observations(observations).news2, recorded.news2)
        self.assertEqual(recorded.pulse.value, 95)

    def test_some_vitals_give_no_news2_score(self):
        observations = self.a.create_observations(new_person(self.a), now())
        recorded = self.a.record_vitals(observations, no_vitals(pulse=72, respiration_rate=16))
        self.assertIsNone(recorded.news2)
        self.assertEqual(recorded.pulse.value, 72)
        self.assertEqual(recorded.respiration_rate.value, 16)
        self.assertIsNone(recorded.temperature)

    def test_submitting_a_visit_for_review(self):
        visit = new_visit(self.a, new_person(self.a))
        self.assertEqual(self.a.review(visit).state.value, outpost.ReviewState.DRAFT)

        state = self.a.review_visit(visit, outpost.ReviewAction.SUBMIT, None)

        self.assertEqual(state, outpost.ReviewState.SUBMITTED)
        review = self.a.review(visit)
        self.assertEqual(review.state.value, outpost.ReviewState.SUBMITTED)
        self.assertEqual(review.history[-1].action, outpost.ReviewAction.SUBMIT)
        with self.assertRaises(outpost.OutpostError.InvalidInput) as raised:
            self.a.review_visit(visit, outpost.ReviewAction.SUBMIT, None)
        self.assertEqual(raised.exception.field, "review action")

    # ---- observers ---------------------------------------------------------------------------

    def test_local_edit_is_heard_with_origin_local(self):
        visit = new_visit(self.a, new_person(self.a))
        recorder, _ = self.observe(self.a)
        type_text(self.a, visit, ["heard"])
        heard = recorder.wait_for(lambda c: c.origin == outpost.ChangeOrigin.LOCAL and visit in c.ids)
        self.assertTrue(heard, recorder.changes())

    def test_observer_that_raises_does_not_stop_the_edit(self):
        class Failing:
            def records_changed(self, change):
                raise RuntimeError("the app's observer failed")

        handle = self.a.observe_records(Failing())
        self.addCleanup(handle.cancel)
        recorder, _ = self.observe(self.a)
        visit = new_visit(self.a, new_person(self.a))

        type_text(self.a, visit, ["saved anyway"])

        self.assertEqual(self.a.section_text(visit, SECTION).text, "saved anyway")
        self.assertTrue(recorder.wait_for(lambda c: visit in c.ids), "the next observer was not told")

    def test_cancelled_observer_hears_nothing_more(self):
        visit = new_visit(self.a, new_person(self.a))
        recorder, handle = self.observe(self.a)
        type_text(self.a, visit, ["one"])
        self.assertTrue(recorder.wait_for(lambda c: visit in c.ids))
        heard = len(recorder.changes())

        handle.cancel()
        type_text(self.a, visit, [" two"])
        self.a.set_risk(self.a.visit(visit).person_id, outpost.RiskTier.HIGH)
        sync(self.a)
        handle.cancel()  # cancelling twice is harmless

        self.assertEqual(len(recorder.changes()), heard)

if __name__ == "__main__":
    unittest.main()
