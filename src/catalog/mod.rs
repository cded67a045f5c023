//! The regional catalog of services (*nomenclatore tariffario* plus the region's own
//! codes) as FHIR R4 resources, and `cupola catalog import`.
//!
//! - `CodeSystem/catalog` (url [`crate::fhir::names::catalog_system`]): one concept per code, with
//!   its specialist branch, whether it is a visit or a diagnostic exam (which decides
//!   the D-class deadline), whether it is a first or a follow-up access by default,
//!   and whether it belongs to the national nomenclator;
//! - `CodeSystem/branch` (url [`crate::fhir::names::branch_system`]): the specialist branches, data
//!   in `profiles/cupola/codesystem-branch.json`;
//! - `ValueSet/catalog-<branch>` per branch present in the catalog;
//! - `ActivityDefinition/svc-<code>` per service;
//! - `ChargeItemDefinition/tariff-<code>-<YYYYMMDD>` per tariff, with its
//!   `effectivePeriod` and the price in EUR as an exact decimal.
//!
//! Input: a CSV file (see [`parse_csv`]) or a FHIR Bundle of those resources; the
//! import ([`import`]) is idempotent and all or nothing. A CSV file is the whole
//! catalog: a code it no longer lists is retired, not deleted (see [`import_as_of`]).

mod build;
mod bundle;
mod cli;
mod fields;
mod import;
mod merge;
mod parse;
mod report;
mod retired;

use std::sync::OnceLock;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

pub use build::money as decimal_value;
pub use build::{
    activity_definition, branch_code_system, build_resources, catalog_code_system, charge_item_definition, concept,
    value_sets,
};
pub use cli::{run, CatalogArgs, CatalogCommand, ImportArgs};
pub use import::{import, import_as_of, ImportError};
pub use parse::parse_csv;
pub use report::{Counts, ImportReport, TariffChange, TariffEvent};

/// The catalog code property telling a national nomenclator code (`true`) from a
/// regional one (`false`). (The other properties are `names::PROP_*`.)
pub const PROP_NATIONAL: &str = "national";
/// The FHIR concept property `status`: `retired` on a code the catalog no longer lists.
pub const PROP_STATUS: &str = "status";
/// The FHIR concept property `inactive`: `true` on a retired code.
pub const PROP_INACTIVE: &str = "inactive";

/// Visit or diagnostic exam: decides the D-class deadline (30 or 60 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Visit,
    Exam,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Visit => "visit",
            Kind::Exam => "exam",
        }
    }

    pub fn from_code(code: &str) -> Option<Kind> {
        match code {
            "visit" => Some(Kind::Visit),
            "exam" => Some(Kind::Exam),
            _ => None,
        }
    }
}

/// First access or follow-up: the code's default, which a prescription may override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessKind {
    First,
    FollowUp,
}

impl AccessKind {
    pub fn code(self) -> &'static str {
        match self {
            AccessKind::First => "first",
            AccessKind::FollowUp => "follow-up",
        }
    }

    pub fn from_code(code: &str) -> Option<AccessKind> {
        match code {
            "first" => Some(AccessKind::First),
            "follow-up" => Some(AccessKind::FollowUp),
            _ => None,
        }
    }
}

/// `kind == "visit"`: compares with the code.
impl PartialEq<&str> for Kind {
    fn eq(&self, other: &&str) -> bool {
        self.code() == *other
    }
}

/// `access == "first"`: compares with the code.
impl PartialEq<&str> for AccessKind {
    fn eq(&self, other: &&str) -> bool {
        self.code() == *other
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::fmt::Display for AccessKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// One catalog row: a code with its attributes and one of its tariffs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub code: String,
    pub display: String,
    pub branch: String,
    pub kind: Kind,
    pub access: AccessKind,
    /// EUR, at most 2 decimals, kept with exactly 2 (`11.62`, `20.00`).
    pub tariff: Decimal,
    /// The first day this tariff applies.
    pub valid_from: NaiveDate,
    /// National nomenclator code (`true`) or regional code (`false`).
    pub national: bool,
    /// How the patient prepares for the service (the optional `preparation` column).
    pub preparation: Option<String>,
    /// Where the row is in its file (the header is line 1); 0 when not from a file.
    pub line: usize,
}

/// A rejected row: its line (the header is line 1) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// A specialist branch, as listed in `profiles/cupola/codesystem-branch.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Branch {
    pub code: String,
    /// The Italian name.
    pub display: String,
    /// The English name.
    #[serde(default)]
    pub definition: Option<String>,
}

#[derive(Deserialize)]
struct BranchFile {
    concept: Vec<Branch>,
}

const BRANCH_FILE: &str = include_str!("../../profiles/cupola/codesystem-branch.json");

/// The specialist branches a catalog code may belong to.
pub fn branches() -> &'static [Branch] {
    static BRANCHES: OnceLock<Vec<Branch>> = OnceLock::new();
    BRANCHES.get_or_init(|| match serde_json::from_str::<BranchFile>(BRANCH_FILE) {
        Ok(f) => f.concept,
        Err(e) => {
            // Embedded at build time and checked by a unit test: cannot happen in a tested build.
            tracing::error!("profiles/cupola/codesystem-branch.json does not parse: {e}");
            Vec::new()
        }
    })
}

/// Whether `code` is a known branch.
pub fn is_branch(code: &str) -> bool {
    branches().iter().any(|b| b.code == code)
}

/// The code as it appears in ids: `.` → `-` (`89.7A.3` → `89-7A-3`).
pub fn dashed(code: &str) -> String {
    code.replace('.', "-")
}

/// `ActivityDefinition` id of a code: `svc-89-52`.
pub fn service_id(code: &str) -> String {
    format!("svc-{}", dashed(code))
}

/// `ChargeItemDefinition` id of a code's tariff from `valid_from`: `tariff-89-52-20240101`.
pub fn tariff_id(code: &str, valid_from: NaiveDate) -> String {
    format!("tariff-{}-{}", dashed(code), valid_from.format("%Y%m%d"))
}

/// `ValueSet` id of a branch: `catalog-cardiology`.
pub fn value_set_id(branch: &str) -> String {
    format!("catalog-{branch}")
}

/// Logs `what` every 5 % of `total` when `enabled` (files of more than 1000 rows).
pub(crate) struct Progress {
    what: &'static str,
    total: usize,
    step: usize,
    next: usize,
}

/// Files with more rows than this show their progress.
pub(crate) const PROGRESS_ROWS: usize = 1000;

impl Progress {
    pub(crate) fn new(what: &'static str, total: usize, enabled: bool) -> Progress {
        let step = if enabled { total.div_ceil(20).max(1) } else { usize::MAX };
        Progress { what, total, step, next: step }
    }

    /// `done` of `total` are through.
    pub(crate) fn tick(&mut self, done: usize) {
        if done >= self.next {
            tracing::info!("{}: {done} of {} ({} %)", self.what, self.total, done * 100 / self.total.max(1));
            self.next = self.next.saturating_add(self.step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::names;

    #[test]
    fn the_branch_file_parses_with_lowercase_hyphenated_codes() {
        let b = branches();
        assert!(b.len() >= 15, "{} branches", b.len());
        for branch in b {
            assert!(branch.code.bytes().all(|c| c.is_ascii_lowercase() || c == b'-'), "{}", branch.code);
            assert!(!branch.display.is_empty());
        }
        assert!(is_branch("cardiology") && is_branch("physical-medicine") && !is_branch("astrology"));
        let mut codes: Vec<&str> = b.iter().map(|b| b.code.as_str()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), b.len(), "no branch twice");
    }

    #[test]
    fn ids_are_deterministic() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
        assert_eq!(service_id("89.7A.3"), "svc-89-7A-3");
        assert_eq!(tariff_id("89.52", d), "tariff-89-52-20240101");
        assert_eq!(value_set_id("cardiology"), "catalog-cardiology");
        assert_eq!(names::branch_value_set("http://x", "cardiology"), "http://x/ValueSet/catalog-cardiology");
    }
}
