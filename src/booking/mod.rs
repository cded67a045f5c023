//! Booking: prescriptions, `$find` / `$hold` / `$book`, cancellation and
//! rescheduling, with no double booking.
//!
//! Every write of an Appointment — a plain POST or PUT, a transaction entry, an
//! operation — goes through the same rules (`rules`), applied by the store in the
//! write's own transaction (`store::claims`): an appointment `pending`, `booked`,
//! `arrived`, `checked-in`, `fulfilled` or `noshow` takes a place in each of its
//! slots, counted against the slot's capacity under the slot's row lock; a
//! cancellation, a deletion or a move gives it back. The operations here only
//! shape requests into such writes.

mod find;
mod ops;
pub mod rules;
mod sweep;

pub(crate) use find::{access_type, catalog_facts, deadline_of};
mod waiting;
pub use find::{find, FindRequest, Found, NRE_SYSTEM};
pub use ops::{book, cancel, hold, BookRequest, Booked};
pub use sweep::{sweep, sweep_forever};
pub use waiting::{waiting_times, WaitingQuery, WaitingTimes};

/// What the booking rules need from the gateway's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--canonical-base`: the extensions and identifier systems the rules read and write.
    pub base: String,
    /// How long a hold keeps its slot.
    pub hold_micros: i64,
    /// How long a `$find` proposal lives.
    pub proposal_micros: i64,
    /// The dated rules of `mappings/booking/rules.json`.
    pub rules: std::sync::Arc<crate::mappings::BookingRules>,
    /// The catalog facts `$find` reads (kind, access), kept per catalog version.
    pub catalog_cache: find::CatalogCache,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            base: "http://example.org/cupola".into(),
            hold_micros: 300_000_000,
            proposal_micros: 900_000_000,
            rules: Default::default(),
            catalog_cache: Default::default(),
        }
    }
}

impl Settings {
    pub fn from_config(
        base: &str,
        c: &crate::config::BookingConfig,
        rules: std::sync::Arc<crate::mappings::BookingRules>,
    ) -> Settings {
        Settings {
            rules,
            catalog_cache: Default::default(),
            base: base.to_string(),
            hold_micros: c.hold_seconds as i64 * 1_000_000,
            proposal_micros: c.proposal_seconds as i64 * 1_000_000,
        }
    }
}
