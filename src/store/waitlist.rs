//! The waiting lists as storage (`waitlist`): one row per Appointment `waitlist`
//! in line, with what matching a freed slot needs as columns, so that the first in
//! line is chosen by one query. Who goes first and what fits is decided by the
//! booking rules of the domain; this is only how it is kept and asked, per backend.

use super::{Dialect, Store, Tx};
use crate::Result;

/// One entry in line (`waitlist` row).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitRow {
    pub appointment: String,
    pub patient: String,
    pub service: String,
    pub class: String,
    pub district: Option<String>,
    pub location: Option<String>,
    pub from_us: i64,
    pub to_us: i64,
    pub enrolled_us: i64,
    /// Who enrolled them (the booking point and its user): who may book an offer.
    pub holder: Option<String>,
}

/// A freed slot as the line is asked about it.
pub struct FreedSlot<'a> {
    pub services: &'a [String],
    pub start_us: i64,
    pub district: Option<&'a str>,
    pub location: Option<&'a str>,
    /// The only class the slot is open to now (a reservation not yet released).
    pub only_class: Option<&'a str>,
}

/// A row as the driver answers it (sqlx's `any` driver derives no `FromRow`).
type Row = (String, String, String, String, Option<String>, Option<String>, i64, i64, i64, Option<String>);

fn row(
    (appointment, patient, service, class, district, location, from_us, to_us, enrolled_us, holder): Row,
) -> WaitRow {
    WaitRow { appointment, patient, service, class, district, location, from_us, to_us, enrolled_us, holder }
}

const COLUMNS: &str =
    "w.appointment, w.patient, w.service, w.class, w.district, w.location, w.from_us, w.to_us, w.enrolled_us, w.holder";

impl Store {
    /// Puts (or keeps) `row` in line; a row already there keeps its place
    /// (`enrolled_us`) and loses any offer.
    pub(crate) async fn enrol(&self, tx: &mut Tx, row: &WaitRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO waitlist (appointment, patient, service, class, district, location, from_us, to_us, \
             enrolled_us, holder) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (appointment) DO UPDATE SET patient = excluded.patient, service = excluded.service, \
             class = excluded.class, district = excluded.district, location = excluded.location, \
             from_us = excluded.from_us, to_us = excluded.to_us, offered = NULL",
        )
        .bind(&row.appointment)
        .bind(&row.patient)
        .bind(&row.service)
        .bind(&row.class)
        .bind(&row.district)
        .bind(&row.location)
        .bind(row.from_us)
        .bind(row.to_us)
        .bind(row.enrolled_us)
        .bind(&row.holder)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The entry of `appointment`, if it is in line (offered or not).
    pub(crate) async fn in_line(&self, tx: &mut Tx, appointment: &str) -> Result<Option<WaitRow>> {
        let found: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM waitlist w WHERE w.appointment = $1"))
            .bind(appointment)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(found.map(row))
    }

    /// `appointment` leaves the line.
    pub(crate) async fn leave_line(&self, tx: &mut Tx, appointment: &str) -> Result<()> {
        sqlx::query("DELETE FROM waitlist WHERE appointment = $1").bind(appointment).execute(&mut **tx).await?;
        Ok(())
    }

    /// `appointment` has been offered `slot`: out of the matching until it answers.
    pub(crate) async fn mark_offered(&self, tx: &mut Tx, appointment: &str, slot: &str) -> Result<()> {
        sqlx::query("UPDATE waitlist SET offered = $2 WHERE appointment = $1")
            .bind(appointment)
            .bind(slot)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Whether `patient` has an offer out (other than `except`'s).
    pub(crate) async fn has_offer(&self, tx: &mut Tx, patient: &str, except: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM waitlist WHERE patient = $1 AND appointment <> $2 AND offered IS NOT NULL",
        )
        .bind(patient)
        .bind(except)
        .fetch_one(&mut **tx)
        .await?;
        Ok(n > 0)
    }

    /// The first in line that `slot` fits, in `classes`' order then time in line,
    /// leaving out `skip`; its Appointment row is locked (PostgreSQL: `FOR UPDATE
    /// SKIP LOCKED`, so that a slot freed at the same time by another transaction
    /// goes to the next one instead of waiting; SQLite has one writer).
    pub(crate) async fn first_in_line(
        &self,
        tx: &mut Tx,
        slot: &FreedSlot<'_>,
        classes: &[String],
        skip: &[String],
    ) -> Result<Option<WaitRow>> {
        let mut n = 4;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        let services: Vec<String> = slot.services.iter().map(|_| next()).collect();
        let skipped: Vec<String> = skip.iter().map(|_| next()).collect();
        let rank: String = classes.iter().enumerate().map(|(i, _)| format!(" WHEN {} THEN {i}", next())).collect();
        let not_skipped = if skipped.is_empty() {
            String::new()
        } else {
            format!("AND w.appointment NOT IN ({})", skipped.join(", "))
        };
        let lock = match self.dialect() {
            Dialect::Postgres => " FOR UPDATE OF r SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM waitlist w JOIN resources r ON r.res_type = 'Appointment' AND r.res_id = w.appointment \
             WHERE w.offered IS NULL AND w.service IN ({}) AND w.from_us <= $1 AND $1 < w.to_us \
             AND (w.location = $2 OR (w.location IS NULL AND w.district = $3)) AND ($4 = '' OR w.class = $4) \
             AND NOT EXISTS (SELECT 1 FROM waitlist o WHERE o.patient = w.patient AND o.offered IS NOT NULL) \
             {not_skipped} \
             ORDER BY CASE w.class{rank} ELSE {} END, w.enrolled_us, w.appointment LIMIT 1{lock}",
            services.join(", "),
            classes.len(),
        );
        let mut q = sqlx::query_as::<_, Row>(&sql)
            .bind(slot.start_us)
            .bind(slot.location.unwrap_or(""))
            .bind(slot.district.unwrap_or(""))
            .bind(slot.only_class.unwrap_or(""));
        for v in slot.services.iter().chain(skip).chain(classes) {
            q = q.bind(v);
        }
        Ok(q.fetch_optional(&mut **tx).await?.map(row))
    }

    /// Everyone in line for one of `services` and not offered a slot, in
    /// `classes`' order then time in line (an agenda's new slots are matched to them).
    pub(crate) async fn line_for(&self, tx: &mut Tx, services: &[String], classes: &[String]) -> Result<Vec<WaitRow>> {
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let places: Vec<String> = (1..=services.len()).map(|i| format!("${i}")).collect();
        let rank: String = (0..classes.len()).map(|i| format!(" WHEN ${} THEN {i}", services.len() + i + 1)).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM waitlist w WHERE w.offered IS NULL AND w.service IN ({}) \
             ORDER BY CASE w.class{rank} ELSE {} END, w.enrolled_us, w.appointment",
            places.join(", "),
            classes.len()
        );
        let mut q = sqlx::query_as::<_, Row>(&sql);
        for v in services.iter().chain(classes) {
            q = q.bind(v);
        }
        Ok(q.fetch_all(&mut **tx).await?.into_iter().map(row).collect())
    }
}
