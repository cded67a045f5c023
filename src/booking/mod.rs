//! Booking: prescriptions, `$find` / `$hold` / `$book`, cancellation and
//! rescheduling, with no double booking.
//!
//! Every write of an Appointment — a plain POST or PUT, a transaction entry, an
//! operation — goes through the same rules (`rules`), applied by the store in the
//! write's own transaction (`booking::claims`): an appointment `pending`, `booked`,
//! `arrived`, `checked-in`, `fulfilled` or `noshow` takes a place in each of its
//! slots, counted against the slot's capacity under the slot's row lock; a
//! cancellation, a deletion or a move gives it back. The operations here only
//! shape requests into such writes.

mod claims;
mod facts;
mod find;
pub mod hooks;
pub mod integrity;
mod ops;
mod prescriptions;
mod preview;
mod records;
pub mod rules;
mod sweep;
pub mod views;
mod waitlist;

pub(crate) use facts::{access_type, catalog_facts, CATALOG_ID};
pub(crate) use find::deadline_of;
mod waiting;
pub use find::{find, FindRequest, Found, NRE_SYSTEM};
pub use ops::{book, cancel, cancel_preview, hold, BookRequest, Booked, CancelPreview};
pub use preview::CancelEffect;
pub use sweep::{sweep, sweep_forever};
pub use waiting::{waiting_times, Grouping, WaitingQuery, WaitingTimes};
pub use waitlist::{offer_agenda, offer_slot};

/// What the booking rules need from the gateway's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--canonical-base`: the extensions and identifier systems the rules read and write.
    pub base: String,
    /// How long a hold keeps its slot.
    pub hold_micros: i64,
    /// How long a `$find` proposal lives.
    pub proposal_micros: i64,
    /// How long a slot offered to a waiting list's first stays theirs.
    pub waitlist_hold_micros: i64,
    /// The dated rules of `mappings/booking/rules.json`.
    pub rules: std::sync::Arc<crate::mappings::BookingRules>,
    /// The catalog facts `$find` reads (kind, access), kept per catalog version.
    pub catalog_cache: facts::CatalogCache,
    /// The dated ticket rules of `mappings/billing/rules.json`.
    pub billing: std::sync::Arc<crate::mappings::BillingRules>,
    /// Routing and the providers' code maps, for the messages changes send.
    pub messaging: std::sync::Arc<crate::messaging::Settings>,
    /// Groups of concurrent `$book` requests committed at once, each group one
    /// transaction (PostgreSQL: SQLite's one writer groups every write); 0: each booking in a transaction of its own.
    pub book_lanes: usize,
    /// Which local references must resolve (`--referential-integrity`).
    pub integrity: crate::config::Integrity,
    /// The FHIR base clients see (`--public-url`): an absolute reference under it is local.
    pub public_base: String,
}

impl crate::store::Store {
    /// The booking settings this store carries (the defaults when it carries none:
    /// a command that does not book).
    pub fn settings(&self) -> &Settings {
        static DEFAULT: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();
        self.domain::<Settings>().unwrap_or_else(|| DEFAULT.get_or_init(Settings::default))
    }
}

/// The cancellation reason of an appointment moved by a reschedule (never a late
/// cancellation: its ticket moves with it).
pub const RESCHEDULED: &str = "rescheduled";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            base: "http://example.org/cupola".into(),
            hold_micros: 300_000_000,
            proposal_micros: 900_000_000,
            waitlist_hold_micros: 900_000_000,
            rules: Default::default(),
            catalog_cache: Default::default(),
            billing: Default::default(),
            messaging: Default::default(),
            book_lanes: 0,
            integrity: Default::default(),
            public_base: String::new(),
        }
    }
}

impl Settings {
    pub fn from_config(
        base: &str,
        c: &crate::config::BookingConfig,
        rules: std::sync::Arc<crate::mappings::BookingRules>,
        billing: std::sync::Arc<crate::mappings::BillingRules>,
        messaging: std::sync::Arc<crate::messaging::Settings>,
    ) -> Settings {
        Settings {
            rules,
            billing,
            messaging,
            catalog_cache: Default::default(),
            base: base.to_string(),
            hold_micros: c.hold_seconds as i64 * 1_000_000,
            proposal_micros: c.proposal_seconds as i64 * 1_000_000,
            waitlist_hold_micros: c.waitlist_hold_seconds as i64 * 1_000_000,
            book_lanes: c.book_lanes,
            integrity: c.referential_integrity,
            public_base: String::new(),
        }
    }
}

/// cupola's booking CodeSystems, served as resources: the priority classes (as
/// `mappings/booking/rules.json` names them) and the access types of a prescription.
pub fn code_systems(base: &str) -> Vec<serde_json::Value> {
    use serde_json::json;
    let concept = |code: &str, display: &str, definition: &str| json!({"code": code, "display": display, "definition": definition});
    let priority_classes: Vec<serde_json::Value> = crate::mappings::booking::priority_classes()
        .iter()
        .map(|c| concept(&c.code, &c.display, &c.definition))
        .collect();
    vec![
        json!({"resourceType": "CodeSystem", "id": "priority-class",
        "url": crate::fhir::names::priority_class_system(base), "name": "PriorityClass",
        "title": "Classe di priorità", "status": "active", "content": "complete", "caseSensitive": true,
        "description": "The urgency a GP writes on a prescription (national waiting-list plan); the deadline of each class for a first access is dated data in mappings/booking/rules.json",
        "concept": priority_classes}),
        json!({"resourceType": "CodeSystem", "id": "access-type",
        "url": format!("{base}/CodeSystem/access-type"), "name": "AccessType",
        "title": "Primo accesso / accesso successivo", "status": "active", "content": "complete", "caseSensitive": true,
        "description": "Whether a prescribed service is a first access (the priority deadline binds) or a follow-up",
        "concept": [
            concept("first", "Primo accesso", "the first access for the problem: the priority class's deadline applies"),
            concept("follow-up", "Accesso successivo", "a follow-up: no priority deadline"),
        ]}),
    ]
}
