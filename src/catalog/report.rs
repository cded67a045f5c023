//! What an import did: per resource type, how many were created, updated, left
//! unchanged or deleted, which tariffs changed and which codes were retired or
//! reactivated.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;

/// How many resources of one type an import created, updated, found unchanged or deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// ValueSets of branches left without codes.
    pub deleted: usize,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.created += o.created;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.deleted += o.deleted;
    }
}

/// What happened to one tariff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TariffEvent {
    /// A new tariff for a code that already had one.
    NewPeriod,
    /// An existing tariff's period changed (typically closed by a newer tariff); the end it had.
    PeriodChanged { previous_end: Option<NaiveDate> },
    /// An existing tariff's price changed (the same code and date with another amount); the price it had.
    PriceChanged { previous: Option<Decimal> },
    /// The tariff of a retired code: no longer active; the end its period had.
    Retired { previous_end: Option<NaiveDate> },
}

/// One tariff (ChargeItemDefinition) an import changed, as it now is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffChange {
    pub code: String,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub tariff: Option<Decimal>,
    pub event: TariffEvent,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The file imported.
    pub source: String,
    /// `CSV` or `Bundle`.
    pub format: &'static str,
    /// CSV rows or Bundle entries read.
    pub rows: usize,
    /// Per resource type.
    pub counts: BTreeMap<String, Counts>,
    pub tariffs: Vec<TariffChange>,
    /// Codes retired by this import (stored, active, and not in the CSV file), by code.
    pub retired: Vec<String>,
    /// Retired codes the CSV file lists again, now active, by code.
    pub reactivated: Vec<String>,
}

impl ImportReport {
    /// The counts of one resource type (zero when none was imported).
    pub fn counts_of(&self, res_type: &str) -> Counts {
        self.counts.get(res_type).copied().unwrap_or_default()
    }

    /// The counts over every type.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        self.counts.values().for_each(|c| t.add(*c));
        t
    }

    /// Whether the import wrote anything.
    pub fn changed(&self) -> bool {
        let t = self.total();
        t.created + t.updated + t.deleted > 0
    }

    pub(crate) fn count(&mut self, res_type: &str, c: Counts) {
        self.counts.entry(res_type.to_string()).or_default().add(c);
    }

    /// Records what happened to a ChargeItemDefinition, `before` (stored, if any) and
    /// `after` (written); `had_tariffs`: its code already had a stored tariff.
    pub(crate) fn tariff(&mut self, before: Option<&Value>, after: &Value, had_tariffs: bool) {
        let now = Tariff::of(after);
        let event = match before.map(Tariff::of) {
            None if had_tariffs => TariffEvent::NewPeriod,
            None => return,
            Some(was) if now.retired && !was.retired => TariffEvent::Retired { previous_end: was.end },
            Some(was) if was.tariff != now.tariff => TariffEvent::PriceChanged { previous: was.tariff },
            Some(was) if was.end != now.end || was.start != now.start => {
                TariffEvent::PeriodChanged { previous_end: was.end }
            }
            Some(_) => return,
        };
        self.tariffs.push(TariffChange { code: now.code, start: now.start, end: now.end, tariff: now.tariff, event });
    }
}

/// The parts of a ChargeItemDefinition a report names.
pub(crate) struct Tariff {
    pub code: String,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub tariff: Option<Decimal>,
    pub retired: bool,
}

impl Tariff {
    pub(crate) fn of(cid: &Value) -> Tariff {
        let date = |v: &Value| v.as_str().and_then(|s| NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok());
        let amount = &cid["propertyGroup"][0]["priceComponent"][0]["amount"]["value"];
        Tariff {
            code: cid["code"]["coding"][0]["code"].as_str().unwrap_or("?").to_string(),
            start: date(&cid["effectivePeriod"]["start"]),
            end: date(&cid["effectivePeriod"]["end"]),
            tariff: match amount {
                Value::Number(n) => {
                    let s = n.to_string();
                    Decimal::from_str(&s).or_else(|_| Decimal::from_scientific(&s)).ok()
                }
                _ => None,
            },
            retired: cid["status"] == "retired",
        }
    }
}

/// At most this many codes are named per line of the report.
const NAMED_CODES: usize = 10;

/// `retired: N (a, b, …)`: how many codes, the first few named.
fn codes_line(f: &mut std::fmt::Formatter<'_>, what: &str, codes: &[String]) -> std::fmt::Result {
    write!(f, "{what}: {}", codes.len())?;
    if !codes.is_empty() {
        let more = if codes.len() > NAMED_CODES { ", …" } else { "" };
        write!(f, " ({}{more})", codes[..codes.len().min(NAMED_CODES)].join(", "))?;
    }
    writeln!(f)
}

fn or_open(d: Option<NaiveDate>) -> String {
    d.map_or_else(|| "open-ended".to_string(), |d| d.to_string())
}

fn eur(d: Option<Decimal>) -> String {
    d.map_or_else(|| "no price".to_string(), |d| format!("{d} EUR"))
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "catalog import of {} ({}, {} {}):",
            self.source,
            self.format,
            self.rows,
            match self.format {
                "Bundle" => "entries",
                _ => "rows",
            }
        )?;
        self.count_lines(f)?;
        if self.format == "CSV" {
            codes_line(f, "retired", &self.retired)?;
            if !self.reactivated.is_empty() {
                codes_line(f, "reactivated", &self.reactivated)?;
            }
        }
        if !self.changed() {
            writeln!(f, "nothing changed: the store already holds this catalog")?;
        }
        if !self.tariffs.is_empty() {
            writeln!(f, "tariff changes:")?;
        }
        for t in &self.tariffs {
            tariff_line(f, t)?;
        }
        Ok(())
    }
}

impl ImportReport {
    /// A line of counts per resource type, and their total.
    fn count_lines(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rows: Vec<(&str, Counts)> = self.counts.iter().map(|(t, c)| (t.as_str(), *c)).collect();
        let total = self.total();
        rows.push(("total", total));
        for (t, c) in rows {
            write!(f, "  {t:<22} {:>6} created  {:>6} updated  {:>6} unchanged", c.created, c.updated, c.unchanged)?;
            if c.deleted > 0 {
                write!(f, "  {:>6} deleted", c.deleted)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// One tariff change as a line of the report.
fn tariff_line(f: &mut std::fmt::Formatter<'_>, t: &TariffChange) -> std::fmt::Result {
    let from = or_open(t.start);
    match &t.event {
        TariffEvent::NewPeriod => {
            let until = t.end.map_or_else(|| "on".to_string(), |e| format!("to {e}"));
            writeln!(f, "  {} new tariff {} from {from} {until}", t.code, eur(t.tariff))?
        }
        TariffEvent::PeriodChanged { previous_end } => writeln!(
            f,
            "  {} tariff {} from {from} now ends {} (was {})",
            t.code,
            eur(t.tariff),
            or_open(t.end),
            or_open(*previous_end)
        )?,
        TariffEvent::PriceChanged { previous } => {
            writeln!(f, "  {} tariff from {from} changed from {} to {}", t.code, eur(*previous), eur(t.tariff))?
        }
        TariffEvent::Retired { previous_end } => writeln!(
            f,
            "  {} tariff {} from {from} retired, ends {} (was {})",
            t.code,
            eur(t.tariff),
            or_open(t.end),
            or_open(*previous_end)
        )?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_report_counts_retired_codes_and_names_the_first_few() {
        let mut r = ImportReport { source: "c.csv".into(), format: "CSV", ..ImportReport::default() };
        assert!(r.to_string().contains("\nretired: 0\n"), "{r}");
        r.retired = (0..12).map(|i| format!("R.{i}")).collect();
        r.reactivated = vec!["89.52".into()];
        let text = r.to_string();
        assert!(text.contains("retired: 12 (R.0, R.1, R.2, R.3, R.4, R.5, R.6, R.7, R.8, R.9, …)"), "{text}");
        assert!(text.contains("reactivated: 1 (89.52)"), "{text}");
        r.format = "Bundle";
        assert!(!r.to_string().contains("retired"), "a Bundle retires nothing");
    }
}
