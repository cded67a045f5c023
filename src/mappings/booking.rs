//! `mappings/booking/rules.json`: the dated booking rules — priority-class
//! deadlines, the services of one branch a prescription may hold, the NRE format.
//! Every number has its effective date; a rule applies from its date until the
//! next one's.

use std::path::Path;

use chrono::{Duration, NaiveDate};
use serde::Deserialize;

use super::{line_of, MappingError};

/// A value in force from `effective`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Dated<T> {
    #[serde(deserialize_with = "date")]
    pub effective: NaiveDate,
    #[serde(flatten)]
    pub value: T,
}

/// The deadline of one priority class.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Deadline {
    pub hours: Option<i64>,
    pub days: Option<i64>,
    /// For visits and for diagnostic exams, where they differ (class D).
    pub visit_days: Option<i64>,
    pub exam_days: Option<i64>,
    /// The class's name and meaning under this entry, for cupola's CodeSystem.
    pub display: Option<String>,
    pub definition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassDeadlines {
    #[serde(default)]
    pub source: Option<String>,
    pub deadlines: std::collections::BTreeMap<String, Deadline>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    pub value: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NreRule {
    pub system: String,
    /// One character per position: `9` a digit, `A` a letter, `X` either.
    pub format: String,
    #[serde(default)]
    pub meaning: Option<String>,
}

/// Who in a waiting list is offered a freed slot first: the classes in this order,
/// then who joined the line first (`then` = `enrolled`, the only tie-break so far).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitlistOrder {
    pub class_order: Vec<String>,
    pub then: WaitlistTieBreak,
    #[serde(default)]
    pub meaning: Option<String>,
}

/// How the entries of one class are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitlistTieBreak {
    /// Who joined the line first.
    Enrolled,
}

/// The booking rules of the region.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BookingRules {
    #[serde(default)]
    pub priority_classes: Vec<Dated<ClassDeadlines>>,
    #[serde(default)]
    pub max_services_per_branch: Vec<Dated<Count>>,
    #[serde(default)]
    pub waitlist: Vec<Dated<WaitlistOrder>>,
    #[serde(default)]
    pub nre: Option<NreRule>,
}

impl BookingRules {
    /// The classes' deadlines in force on `day` (the latest entry effective by then).
    pub fn deadlines_on(&self, day: NaiveDate) -> Option<&ClassDeadlines> {
        self.priority_classes.iter().filter(|d| d.effective <= day).max_by_key(|d| d.effective).map(|d| &d.value)
    }
}

/// `YYYY-MM-DD`.
fn date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let s = String::deserialize(d)?;
    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .map_err(|_| serde::de::Error::custom(format!("effective: {s:?} is not a date like 2019-02-21")))
}

/// The shipped rules, embedded at build time: their priority classes are the
/// national plan's, whose codes make cupola's CodeSystem and the values `$find`
/// takes whatever rules a deployment loads (a region dates their deadlines; it
/// cannot invent a class).
const SHIPPED: &str = include_str!("../../mappings/booking/rules.json");

/// A priority class of the national plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityClass {
    pub code: String,
    pub display: String,
    pub definition: String,
}

/// The priority classes of the shipped `mappings/booking/rules.json`, in the order
/// it first lists them (most urgent first), named as its latest entry names them.
pub fn priority_classes() -> &'static [PriorityClass] {
    static CLASSES: std::sync::OnceLock<Vec<PriorityClass>> = std::sync::OnceLock::new();
    CLASSES.get_or_init(|| classes_of(SHIPPED))
}

/// The classes of a rules file's text; none when it does not parse (the shipped
/// file's test says it does).
fn classes_of(text: &str) -> Vec<PriorityClass> {
    let rules: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let mut entries: Vec<&serde_json::Value> =
        rules["priorityClasses"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    // Stable: entries of one date keep the file's order.
    entries.sort_by_key(|e| e["effective"].as_str().unwrap_or_default().to_string());
    let mut classes: Vec<PriorityClass> = Vec::new();
    let deadlines = entries.iter().filter_map(|e| e["deadlines"].as_object()).flatten();
    for (code, d) in deadlines {
        let text = |key: &str| d[key].as_str().map(str::to_string);
        match classes.iter_mut().find(|c| c.code == *code) {
            Some(class) => {
                class.display = text("display").unwrap_or(std::mem::take(&mut class.display));
                class.definition = text("definition").unwrap_or(std::mem::take(&mut class.definition));
            }
            None => classes.push(PriorityClass {
                code: code.clone(),
                display: text("display").unwrap_or_default(),
                definition: text("definition").unwrap_or_default(),
            }),
        }
    }
    classes
}

/// The rule of `list` in force on `day`.
pub(super) fn in_force<T>(list: &[Dated<T>], day: NaiveDate) -> Option<&T> {
    list.iter().filter(|d| d.effective <= day).max_by_key(|d| d.effective).map(|d| &d.value)
}

impl BookingRules {
    /// Reads and checks `file`; a missing file is no rules (no deadlines, no limits).
    pub fn load(file: &Path) -> Result<BookingRules, MappingError> {
        if !file.exists() {
            tracing::warn!(file = %file.display(), "no booking rules: priority classes have no deadline");
            return Ok(BookingRules::default());
        }
        let text =
            std::fs::read_to_string(file).map_err(|e| MappingError::new(file, None, format!("cannot read: {e}")))?;
        let rules: BookingRules = serde_json::from_str(&text)
            .map_err(|e| MappingError::new(file, Some(e.line()), format!("not valid booking rules: {e}")))?;
        for (i, d) in rules.priority_classes.iter().enumerate() {
            for (class, deadline) in &d.value.deadlines {
                let place = line_of(&text, &format!("\"{class}\""), 1);
                if !priority_classes().iter().any(|c| c.code == *class) {
                    return Err(MappingError::new(file, place, format!("priorityClasses[{i}]: unknown class {class}")));
                }
                let given = [deadline.hours, deadline.days, deadline.visit_days, deadline.exam_days];
                if given.iter().flatten().any(|n| *n <= 0) || given.iter().all(Option::is_none) {
                    return Err(MappingError::new(
                        file,
                        place,
                        format!("priorityClasses[{i}].{class}: give hours, days or visitDays/examDays, all above 0"),
                    ));
                }
            }
        }
        for (i, w) in rules.waitlist.iter().enumerate() {
            if let Some(c) = w.value.class_order.iter().find(|c| !priority_classes().iter().any(|p| p.code == **c)) {
                let place = line_of(&text, "\"classOrder\"", 1);
                return Err(MappingError::new(file, place, format!("waitlist[{i}].classOrder: unknown class {c}")));
            }
        }
        if let Some(n) = &rules.nre {
            if n.format.is_empty() || !n.format.chars().all(|c| matches!(c, '9' | 'A' | 'X')) {
                return Err(MappingError::new(
                    file,
                    line_of(&text, "\"format\"", 1),
                    "nre.format: one of 9 (digit), A (letter), X (either) per character",
                ));
            }
        }
        Ok(rules)
    }

    /// How long after the first request a first access of `class` must be served,
    /// for a visit (`exam` false) or a diagnostic exam, under the rule in force on `day`.
    pub fn deadline(&self, class: &str, exam: bool, day: NaiveDate) -> Option<Duration> {
        let d = in_force(&self.priority_classes, day)?.deadlines.get(class)?;
        if let Some(h) = d.hours {
            return Some(Duration::hours(h));
        }
        let days = if exam { d.exam_days.or(d.days) } else { d.visit_days.or(d.days) };
        days.map(Duration::days)
    }

    /// The order of the classes in a waiting list on `day`: the rule in force, else
    /// the national plan's order (most urgent first).
    pub fn waitlist_order(&self, day: NaiveDate) -> Vec<String> {
        match in_force(&self.waitlist, day) {
            Some(w) => w.class_order.clone(),
            None => priority_classes().iter().map(|c| c.code.clone()).collect(),
        }
    }

    /// The most services of one branch a prescription may hold on `day`.
    pub fn max_per_branch(&self, day: NaiveDate) -> Option<usize> {
        in_force(&self.max_services_per_branch, day).map(|c| c.value)
    }

    /// Why `nre` is not a prescription number, if it is not one.
    pub fn nre_fault(&self, nre: &str) -> Option<String> {
        let rule = self.nre.as_ref()?;
        let fits = nre.chars().count() == rule.format.chars().count()
            && nre.chars().zip(rule.format.chars()).all(|(c, f)| match f {
                '9' => c.is_ascii_digit(),
                'A' => c.is_ascii_uppercase(),
                _ => c.is_ascii_digit() || c.is_ascii_uppercase(),
            });
        (!fits).then(|| {
            format!(
                "{nre:?} is not an NRE: expected {} characters shaped {} (9 digit, A letter{})",
                rule.format.chars().count(),
                rule.format,
                rule.meaning.as_deref().map(|m| format!("; {m}")).unwrap_or_default()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn the_shipped_rules_load_and_date_their_deadlines() {
        let rules = BookingRules::load(Path::new("mappings/booking/rules.json")).expect("shipped rules");
        let today = day("2026-11-26");
        assert_eq!(rules.deadline("U", false, today), Some(Duration::hours(72)));
        assert_eq!(rules.deadline("D", false, today), Some(Duration::days(30)));
        assert_eq!(rules.deadline("D", true, today), Some(Duration::days(60)));
        assert_eq!(rules.deadline("D", true, day("2018-01-01")), None, "before the plan, no deadline");
        assert_eq!(rules.max_per_branch(today), Some(8));
        assert_eq!(rules.waitlist_order(today), ["U", "B", "D", "P"]);
        assert!(rules.nre_fault("070A12345678901").is_none());
        assert!(rules.nre_fault("070A1234567890").is_some());
        assert!(rules.nre_fault("07xA12345678901").is_some());
    }

    #[test]
    fn a_later_rule_replaces_an_earlier_one_from_its_date() {
        let text = r#"{"priorityClasses": [
            {"effective": "2019-01-01", "deadlines": {"B": {"days": 10}}},
            {"effective": "2027-01-01", "deadlines": {"B": {"days": 7}}}]}"#;
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("rules.json");
        std::fs::write(&file, text).expect("write");
        let rules = BookingRules::load(&file).expect("rules");
        assert_eq!(rules.deadline("B", false, day("2026-12-31")), Some(Duration::days(10)));
        assert_eq!(rules.deadline("B", false, day("2027-01-01")), Some(Duration::days(7)));
        std::fs::write(&file, r#"{"priorityClasses": [{"effective": "2019-01-01", "deadlines": {"Z": {"days": 1}}}]}"#)
            .expect("write");
        let e = BookingRules::load(&file).expect_err("unknown class");
        assert!(e.message.contains("unknown class Z"), "{e}");
    }

    #[test]
    fn the_waiting_lines_order_is_dated_and_names_known_classes() {
        let text = r#"{"waitlist": [
            {"effective": "2019-01-01", "classOrder": ["U", "B", "D", "P"], "then": "enrolled"},
            {"effective": "2027-01-01", "classOrder": ["B", "U", "D", "P"], "then": "enrolled"}]}"#;
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("rules.json");
        std::fs::write(&file, text).expect("write");
        let rules = BookingRules::load(&file).expect("rules");
        assert_eq!(rules.waitlist_order(day("2026-12-31")), ["U", "B", "D", "P"]);
        assert_eq!(rules.waitlist_order(day("2027-01-01")), ["B", "U", "D", "P"]);
        assert_eq!(BookingRules::default().waitlist_order(day("2026-12-31")), ["U", "B", "D", "P"], "the plan's order");
        let bad = r#"{"waitlist": [{"effective": "2019-01-01", "classOrder": ["U", "X"], "then": "enrolled"}]}"#;
        std::fs::write(&file, bad).expect("write");
        let e = BookingRules::load(&file).expect_err("unknown class");
        assert!(e.message.contains("waitlist[0].classOrder: unknown class X"), "{e}");
    }

    #[test]
    fn the_priority_classes_are_the_shipped_files_most_urgent_first_with_their_names() {
        let classes = priority_classes();
        let codes: Vec<&str> = classes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["U", "B", "D", "P"]);
        assert_eq!(
            (classes[0].display.as_str(), classes[0].definition.as_str()),
            ("Urgente", "as soon as possible, within 72 hours")
        );
        assert!(classes.iter().all(|c| !c.display.is_empty() && !c.definition.is_empty()), "{classes:?}");
        let later = r#"{"priorityClasses": [
            {"effective": "2027-01-01", "deadlines": {"B": {"days": 7, "definition": "within 7 days"}}},
            {"effective": "2019-01-01", "deadlines": {"U": {"hours": 72, "display": "Urgente"}, "B": {"days": 10, "display": "Breve", "definition": "within 10 days"}}}]}"#;
        let classes = classes_of(later);
        assert_eq!(classes.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(), ["U", "B"]);
        assert_eq!((classes[1].display.as_str(), classes[1].definition.as_str()), ("Breve", "within 7 days"));
    }
}
