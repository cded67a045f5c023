use chrono::{NaiveDate, Weekday};
use serde_json::{json, Value};

use super::*;

const BASE: &str = "http://example.org/cupola";

fn tpl_url() -> String {
    crate::fhir::names::structure(BASE, "agenda-template")
}

fn session(day: &str, start: &str, end: &str, minutes: i64) -> Value {
    json!({"url": "session", "extension": [
        {"url": "day", "valueCode": day},
        {"url": "start", "valueTime": start},
        {"url": "end", "valueTime": end},
        {"url": "slotMinutes", "valueInteger": minutes},
    ]})
}

fn with(mut ext: Value, part: Value) -> Value {
    if let Some(a) = ext["extension"].as_array_mut() {
        a.push(part);
    }
    ext
}

fn reserve(priority: &str, per_session: i64, release_hours: i64) -> Value {
    json!({"url": "reserve", "extension": [
        {"url": "priority", "valueCode": priority},
        {"url": "perSession", "valueInteger": per_session},
        {"url": "releaseHours", "valueInteger": release_hours},
    ]})
}

/// A Schedule whose first extension is something else, the second the template.
fn schedule(parts: Vec<Value>) -> Value {
    json!({
        "resourceType": "Schedule",
        "id": "cardio-1",
        "extension": [
            {"url": "http://example.org/other", "valueString": "x"},
            {"url": tpl_url(), "extension": parts},
        ],
        "serviceType": [{"coding": [{"system": "http://example.org/cupola/CodeSystem/catalog", "code": "89.52"}]}],
        "actor": [{"reference": "HealthcareService/cardio"}],
    })
}

fn parse(parts: Vec<Value>) -> Template {
    match parse_template(&schedule(parts), BASE) {
        Ok(Some(t)) => t,
        other => panic!("template expected, got {other:?}"),
    }
}

fn error(parts: Vec<Value>) -> TemplateError {
    match parse_template(&schedule(parts), BASE) {
        Err(e) => e,
        other => panic!("error expected, got {other:?}"),
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn starts_ends(slots: &[Value]) -> Vec<(String, String)> {
    slots.iter().map(|s| (s["start"].as_str().unwrap().to_string(), s["end"].as_str().unwrap().to_string())).collect()
}

fn ext<'a>(slot: &'a Value, name: &str) -> Option<&'a Value> {
    let url = crate::fhir::names::structure(BASE, name);
    slot["extension"].as_array()?.iter().find(|e| e["url"] == url.as_str())
}

#[test]
fn no_template_is_none_and_defaults_apply() {
    let plain = json!({"resourceType": "Schedule", "actor": [{"reference": "Location/x"}]});
    assert_eq!(parse_template(&plain, BASE), Ok(None));
    let t = parse(vec![session("mon", "08:00:00", "12:00:00", 20)]);
    assert_eq!(t.time_zone, chrono_tz::Europe::Rome);
    assert_eq!(t.horizon_days, 56);
    assert_eq!(t.sessions[0].day, Weekday::Mon);
    assert_eq!(t.sessions[0].capacity, 1);
    assert_eq!(t.sessions[0].service["code"], "89.52");
    assert_eq!(t.sessions[0].slot_count(), 12);
    assert_eq!(t.sessions[0].element, "Schedule.extension[1].extension[0]");
}

#[test]
fn bad_time_zone_is_named() {
    let e =
        error(vec![json!({"url": "timeZone", "valueCode": "Europe/Roma"}), session("mon", "08:00:00", "09:00:00", 10)]);
    assert_eq!(e.element, "Schedule.extension[1].extension[0]");
    assert!(e.message.contains("timeZone") && e.message.contains("Europe/Roma"), "{}", e.message);
    let t = parse(vec![json!({"url": "timeZone", "valueCode": "Europe/London"})]);
    assert_eq!(t.time_zone, chrono_tz::Europe::London);
}

#[test]
fn overlapping_sessions_name_both() {
    let e = error(vec![
        json!({"url": "horizonDays", "valueInteger": 7}),
        session("tue", "08:00:00", "12:00:00", 20),
        session("wed", "10:00:00", "14:00:00", 20),
        session("tue", "11:30:00", "13:00:00", 30),
    ]);
    assert_eq!(e.element, "Schedule.extension[1].extension[3]");
    assert!(e.message.contains("Schedule.extension[1].extension[1]"), "{}", e.message);
    // Touching sessions do not overlap.
    parse(vec![session("tue", "08:00:00", "12:00:00", 20), session("tue", "12:00:00", "13:00:00", 20)]);
}

#[test]
fn impossible_sessions_are_named() {
    let e = error(vec![session("mon", "08:00:00", "09:00:00", 10), session("mon", "12:00:00", "12:00:00", 10)]);
    assert_eq!(e.element, "Schedule.extension[1].extension[1]");
    assert!(e.message.contains("ends"), "{}", e.message);
    let e = error(vec![session("mon", "08:00:00", "08:20:00", 30)]);
    assert_eq!(e.element, "Schedule.extension[1].extension[0]");
    assert!(e.message.contains("does not fit"), "{}", e.message);
    let e = error(vec![session("mon", "08:00:00", "09:00:00", 0)]);
    assert_eq!(e.element, "Schedule.extension[1].extension[0].extension[3]");
    assert!(e.message.contains("slotMinutes"), "{}", e.message);
    let e = error(vec![session("lun", "08:00:00", "09:00:00", 10)]);
    assert_eq!(e.element, "Schedule.extension[1].extension[0].extension[0]");
    assert!(e.message.contains("unknown day"), "{}", e.message);
    let e = error(vec![session("mon", "8h", "09:00:00", 10)]);
    assert_eq!(e.element, "Schedule.extension[1].extension[0].extension[1]");
    let e =
        error(vec![with(session("mon", "08:00:00", "09:00:00", 10), json!({"url": "capacity", "valueInteger": 0}))]);
    assert_eq!(e.element, "Schedule.extension[1].extension[0].extension[4]");
    let e = error(vec![json!({"url": "session", "extension": [{"url": "day", "valueCode": "mon"}]})]);
    assert_eq!(e.element, "Schedule.extension[1].extension[0]");
    assert!(e.message.contains("start"), "{}", e.message);
    let e = error(vec![json!({"url": "horizonDays", "valueInteger": 401})]);
    assert_eq!(e.element, "Schedule.extension[1].extension[0]");
    let e = error(vec![json!({"url": "weekly", "valueInteger": 4})]);
    assert!(e.message.contains("unknown"), "{}", e.message);
}

#[test]
fn session_without_any_service_is_named() {
    let mut s = schedule(vec![session("mon", "08:00:00", "09:00:00", 10)]);
    s.as_object_mut().unwrap().remove("serviceType");
    let e = parse_template(&s, BASE).unwrap_err();
    assert_eq!(e.element, "Schedule.extension[1].extension[0]");
    assert!(e.message.contains("service"), "{}", e.message);
}

#[test]
fn reserves_beyond_the_session_are_named() {
    let e = error(vec![
        session("mon", "08:00:00", "12:00:00", 20),
        session("fri", "08:00:00", "09:00:00", 20),
        reserve("U", 2, 72),
        reserve("B", 2, 24),
    ]);
    assert_eq!(e.element, "Schedule.extension[1].extension[1]");
    assert!(e.message.contains("reserve"), "{}", e.message);
    let e = error(vec![reserve("D", 1, 24)]);
    assert_eq!(e.element, "Schedule.extension[1].extension[0].extension[0]");
    let e = error(vec![reserve("U", 1, 24), reserve("U", 1, 12)]);
    assert_eq!(e.element, "Schedule.extension[1].extension[1]");
    let e = error(vec![reserve("U", 1, -1)]);
    assert_eq!(e.element, "Schedule.extension[1].extension[0].extension[2]");
}

#[test]
fn a_second_template_is_refused() {
    let mut s = schedule(vec![]);
    s["extension"].as_array_mut().unwrap().push(json!({"url": tpl_url(), "extension": []}));
    let e = parse_template(&s, BASE).unwrap_err();
    assert_eq!(e.element, "Schedule.extension[2]");
}

#[test]
fn ordinary_mornings_on_the_daylight_saving_sundays() {
    let t = parse(vec![json!({"url": "horizonDays", "valueInteger": 1}), session("sun", "08:00:00", "12:00:00", 20)]);
    let spring = generate_slots("s1", &t, date(2026, 3, 29), BASE);
    assert_eq!(spring.len(), 12);
    assert_eq!(spring[0]["start"], "2026-03-29T08:00:00+02:00");
    assert_eq!(spring[0]["end"], "2026-03-29T08:20:00+02:00");
    assert_eq!(spring[11]["end"], "2026-03-29T12:00:00+02:00");
    let autumn = generate_slots("s1", &t, date(2026, 10, 25), BASE);
    assert_eq!(autumn.len(), 12);
    assert_eq!(autumn[0]["start"], "2026-10-25T08:00:00+01:00");
    assert_eq!(autumn[11]["end"], "2026-10-25T12:00:00+01:00");
    // The day before each change keeps the old offset.
    let before =
        generate_slots("s1", &parse(vec![session("sat", "08:00:00", "09:00:00", 20)]), date(2026, 3, 28), BASE);
    assert_eq!(before[0]["start"], "2026-03-28T08:00:00+01:00");
    let monday =
        generate_slots("s1", &parse(vec![session("mon", "08:00:00", "09:00:00", 20)]), date(2026, 3, 30), BASE);
    assert_eq!(monday[0]["start"], "2026-03-30T08:00:00+02:00");
}

#[test]
fn the_spring_gap_makes_no_slots() {
    let t = parse(vec![json!({"url": "horizonDays", "valueInteger": 1}), session("sun", "01:00:00", "04:00:00", 30)]);
    let slots = generate_slots("s1", &t, date(2026, 3, 29), BASE);
    let pairs: Vec<(String, String)> = starts_ends(&slots);
    assert_eq!(
        pairs,
        vec![
            ("2026-03-29T01:00:00+01:00".into(), "2026-03-29T01:30:00+01:00".into()),
            ("2026-03-29T03:00:00+02:00".into(), "2026-03-29T03:30:00+02:00".into()),
            ("2026-03-29T03:30:00+02:00".into(), "2026-03-29T04:00:00+02:00".into()),
        ]
    );
}

#[test]
fn the_repeated_autumn_hour_is_taken_once_at_its_first_occurrence() {
    let t = parse(vec![json!({"url": "horizonDays", "valueInteger": 1}), session("sun", "01:00:00", "04:00:00", 30)]);
    let slots = generate_slots("s1", &t, date(2026, 10, 25), BASE);
    let pairs: Vec<(String, String)> = starts_ends(&slots);
    assert_eq!(
        pairs,
        vec![
            ("2026-10-25T01:00:00+02:00".into(), "2026-10-25T01:30:00+02:00".into()),
            ("2026-10-25T01:30:00+02:00".into(), "2026-10-25T02:00:00+02:00".into()),
            ("2026-10-25T02:00:00+02:00".into(), "2026-10-25T02:30:00+02:00".into()),
            ("2026-10-25T02:30:00+02:00".into(), "2026-10-25T03:00:00+01:00".into()),
            ("2026-10-25T03:00:00+01:00".into(), "2026-10-25T03:30:00+01:00".into()),
            ("2026-10-25T03:30:00+01:00".into(), "2026-10-25T04:00:00+01:00".into()),
        ]
    );
    let ids: Vec<&str> = slots.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids[2], "s1-202610250200-0");
}

#[test]
fn weekly_pattern_over_the_horizon() {
    let t = parse(vec![
        json!({"url": "horizonDays", "valueInteger": 14}),
        session("wed", "14:00:00", "15:00:00", 30),
        session("mon", "08:00:00", "09:00:00", 15),
        session("mon", "10:00:00", "10:50:00", 25),
    ]);
    // 2026-06-01 is a Monday: two Mondays (4 + 2 slots) and two Wednesdays (2) in 14 days.
    let slots = generate_slots("s1", &t, date(2026, 6, 1), BASE);
    assert_eq!(slots.len(), 2 * 6 + 2 * 2);
    let starts: Vec<&str> = slots.iter().map(|s| s["start"].as_str().unwrap()).collect();
    assert_eq!(starts[0], "2026-06-01T08:00:00+02:00");
    assert_eq!(starts[4], "2026-06-01T10:00:00+02:00");
    assert_eq!(starts[5], "2026-06-01T10:25:00+02:00");
    assert_eq!(starts[6], "2026-06-03T14:00:00+02:00");
    assert_eq!(starts[8], "2026-06-08T08:00:00+02:00");
    assert!(starts.iter().all(|s| !s.starts_with("2026-06-15")));
    let s = &slots[0];
    assert_eq!(s["resourceType"], "Slot");
    assert_eq!(s["schedule"]["reference"], "Schedule/s1");
    assert_eq!(s["status"], "free");
    assert_eq!(s["serviceType"][0]["coding"][0]["code"], "89.52");
    assert!(s.get("overbooked").is_none());
    // A session ending between two steps makes only the slots that fit.
    let t = parse(vec![json!({"url": "horizonDays", "valueInteger": 1}), session("mon", "08:00:00", "08:50:00", 20)]);
    assert_eq!(generate_slots("s1", &t, date(2026, 6, 1), BASE).len(), 2);
}

#[test]
fn capacity_service_and_reserves_with_release_times() {
    let mut s = with(session("mon", "08:00:00", "10:00:00", 20), json!({"url": "capacity", "valueInteger": 3}));
    s = with(s, json!({"url": "service", "valueCoding": {"system": "http://x/catalog", "code": "89.7A.3"}}));
    let t = parse(vec![json!({"url": "horizonDays", "valueInteger": 1}), s, reserve("U", 1, 72), reserve("B", 2, 24)]);
    // Monday 2026-03-30: the U slot's release falls before the change to summer time.
    let slots = generate_slots("s1", &t, date(2026, 3, 30), BASE);
    assert_eq!(slots.len(), 6);
    for s in &slots {
        assert_eq!(ext(s, "slot-capacity").unwrap()["valueInteger"], 3);
        assert_eq!(s["serviceType"][0]["coding"][0]["code"], "89.7A.3");
    }
    assert_eq!(ext(&slots[0], "slot-reserved-for").unwrap()["valueCode"], "U");
    assert_eq!(ext(&slots[0], "slot-release").unwrap()["valueDateTime"], "2026-03-27T07:00:00+01:00");
    assert_eq!(ext(&slots[1], "slot-reserved-for").unwrap()["valueCode"], "B");
    assert_eq!(ext(&slots[1], "slot-release").unwrap()["valueDateTime"], "2026-03-29T08:20:00+02:00");
    assert_eq!(ext(&slots[2], "slot-reserved-for").unwrap()["valueCode"], "B");
    for s in &slots[3..] {
        assert!(ext(s, "slot-reserved-for").is_none() && ext(s, "slot-release").is_none());
    }
}

#[test]
fn ids_are_deterministic() {
    let t = parse(vec![json!({"url": "horizonDays", "valueInteger": 7}), session("tue", "08:00:00", "09:00:00", 30)]);
    let a = generate_slots("cardio-1", &t, date(2026, 6, 1), BASE);
    let b = generate_slots("cardio-1", &t, date(2026, 6, 1), BASE);
    assert_eq!(a, b);
    assert_eq!(a[0]["id"], "cardio-1-202606020800-0");
    assert_eq!(a[1]["id"], "cardio-1-202606020830-0");
    // A later start date regenerates the same ids for the days both cover.
    let c = generate_slots("cardio-1", &t, date(2026, 6, 2), BASE);
    assert_eq!(c[0]["id"], a[0]["id"]);
    let long = "x".repeat(64);
    let p = slot_id_prefix(&long);
    assert_eq!(p.len(), 49);
    assert_eq!(p, slot_id_prefix(&long));
    assert_ne!(p, slot_id_prefix(&"x".repeat(63)));
    let ids = generate_slots(&long, &t, date(2026, 6, 1), BASE);
    assert!(ids.iter().all(|s| s["id"].as_str().unwrap().len() <= 64));
    assert_eq!(ids[0]["schedule"]["reference"], format!("Schedule/{long}"));
}
