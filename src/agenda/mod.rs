//! Agendas: a `Schedule` (its actor a service, practitioner and/or location, the
//! catalog codes it serves in `serviceType`) carries an agenda template, from which
//! its `Slot`s are generated over a planning horizon; closures take slots out of use.
//!
//! # The template
//!
//! A complex extension `{base}/StructureDefinition/agenda-template` on the Schedule,
//! with sub-extensions:
//!
//! - `timeZone` (valueCode, default `Europe/Rome`): an IANA zone;
//! - `horizonDays` (valueInteger, 1–400, default 56);
//! - `session`, repeating: `day` (valueCode `mon`…`sun`), `start` and `end`
//!   (valueTime, local wall-clock), `slotMinutes` (valueInteger ≥ 1), `capacity`
//!   (valueInteger ≥ 1, default 1; more than one allows overbooking), `service`
//!   (valueCoding, default the Schedule's first `serviceType.coding`);
//! - `reserve`, repeating, one per class: `priority` (valueCode `U` or `B`),
//!   `perSession` (valueInteger ≥ 1: that many of each session's earliest slots, the
//!   reserves taken in the order written), `releaseHours` (valueInteger ≥ 0: the slot
//!   opens to every class that long before its start).
//!
//! A template that cannot be used is a [`TemplateError`] whose `element` is the path
//! of the offending part, e.g. `Schedule.extension[0].extension[3]` for a session,
//! `….extension[3].extension[1]` for one of its parts; overlapping sessions of one
//! day name the later session as `element` and the earlier one in the message.
//!
//! # Slots
//!
//! Each generated Slot has the id `{schedule id}-{YYYYMMDDHHMM of its local start}-{n}`
//! (`n` is 0; Schedule ids over 49 characters are shortened with a hash), so that
//! generating again finds what it made before; `schedule`, `status` `free`, `start`
//! and `end` as instants with their offset, `serviceType` with the session's service,
//! the extension `slot-capacity` (valueInteger) and, for reserved slots,
//! `slot-reserved-for` (valueCode `U`/`B`) and `slot-release` (valueDateTime: start
//! minus `releaseHours`, in real time, with the offset in force then). `overbooked` is
//! left absent: it would mean "already overbooked".
//!
//! # Daylight saving
//!
//! Slots are laid out in local wall-clock steps of `slotMinutes` from the session's
//! start; a slot that would run past the session's end is not made. Each slot's local
//! start and local end are then turned into instants on their own:
//!
//! - a local time that does not exist (the spring gap, 02:00–03:00 on the last Sunday
//!   of March in Europe/Rome) makes no slot: a slot whose start *or* end falls in the
//!   gap is skipped (a 01:00–04:00 session of 30-minute slots gives 01:00, 03:00 and
//!   03:30 that day);
//! - a local time that happens twice (02:00–03:00 on the last Sunday of October) is
//!   taken at its first occurrence, the earlier instant (+02:00); the repeated hour
//!   gets no slots of its own (so the 02:30 slot of that Sunday runs from 02:30+02:00
//!   to 03:00+01:00, 90 real minutes);
//! - a slot whose end instant is not after its start instant is skipped.
//!
//! Reserves go to the earliest slots actually made in each session.

mod bulk;
mod closure;
mod generate;
mod place;
mod reopen;
mod template;
#[cfg(test)]
mod tests;

pub use crate::store::{render_grid_slot, AgendaInfo, Shared, SlotRow};
pub use bulk::{generate_all, run, AgendaArgs, AgendaCommand, BulkReport};
pub use closure::{close, Closure, ClosureReport, HOLDING_STATES};
pub use generate::{generate_for_schedule, generate_in, generate_rows, generate_slots, slot_id_prefix, GenerateReport};
pub use place::{place_of, place_slots, Place};
pub use reopen::{reopen, ReopenReport};
pub use template::{
    parse_template, Reserve, Session, Template, TemplateError, DEFAULT_HORIZON_DAYS, DEFAULT_TIME_ZONE,
    MAX_HORIZON_DAYS,
};
