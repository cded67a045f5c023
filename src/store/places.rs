//! The booking tables as storage: the places taken in slots (`slot_claims`), the
//! proposals awaiting the sweep (`proposals`), when a prescription was first asked
//! for (`prescription_clock`), the booking codes given (`booking_codes`) and the
//! guarantees waived (`guarantee_waivers`). What goes in them is decided by the
//! booking rules of the domain; this is only how it is kept, per backend.

use serde_json::Value;

use super::{Dialect, Store, Tx};
use crate::Result;

/// A place taken in a slot: by which appointment, until when (a hold), by whom.
pub struct PlaceClaim<'a> {
    pub slot: &'a str,
    pub appointment: &'a str,
    pub now: i64,
    pub expires: Option<i64>,
    pub holder: Option<String>,
}

impl Store {
    /// Takes a place in `slot` (row-locked by the caller) for `appointment` if fewer
    /// than `capacity` are taken by others; returns how many were. On PostgreSQL the
    /// count and the new place are one statement.
    pub(crate) async fn take_place(&self, tx: &mut Tx, place: PlaceClaim<'_>, capacity: i64) -> Result<i64> {
        let PlaceClaim { slot, appointment, now, expires, holder } = place;
        const INSERT: &str = "INSERT INTO slot_claims (appointment, slot, expires_us, holder)";
        const UPSERT: &str =
            "ON CONFLICT (appointment, slot) DO UPDATE SET expires_us = excluded.expires_us, holder = excluded.holder";
        if self.dialect() == Dialect::Postgres {
            let live: i64 = sqlx::query_scalar(&format!(
                "WITH live AS (SELECT count(*) AS n FROM slot_claims WHERE slot = $1 AND appointment <> $2 \
                 AND (expires_us IS NULL OR expires_us > $3)), \
                 placed AS ({INSERT} SELECT $2, $1, $4, $5 FROM live WHERE live.n < $6 {UPSERT}) \
                 SELECT n FROM live"
            ))
            .bind(slot)
            .bind(appointment)
            .bind(now)
            .bind(expires)
            .bind(holder)
            .bind(capacity)
            .fetch_one(&mut **tx)
            .await?;
            return Ok(live);
        }
        let live = self.live_claims(tx, slot, Some(appointment), now).await?;
        if live < capacity {
            sqlx::query(&format!("{INSERT} VALUES ($1, $2, $3, $4) {UPSERT}"))
                .bind(appointment)
                .bind(slot)
                .bind(expires)
                .bind(holder)
                .execute(&mut **tx)
                .await?;
        }
        Ok(live)
    }

    /// Places taken in `slot` (holds not expired), `except` one appointment.
    pub(crate) async fn live_claims(&self, tx: &mut Tx, slot: &str, except: Option<&str>, now: i64) -> Result<i64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM slot_claims WHERE slot = $1 AND appointment <> $2 \
             AND (expires_us IS NULL OR expires_us > $3)",
        )
        .bind(slot)
        .bind(except.unwrap_or(""))
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        Ok(n)
    }

    /// When the hold of appointment `id` lapses.
    pub(crate) async fn hold_expiry(&self, tx: &mut Tx, id: &str) -> Result<Option<i64>> {
        let e: Option<i64> = sqlx::query_scalar("SELECT MIN(expires_us) FROM slot_claims WHERE appointment = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        Ok(e)
    }

    /// Who holds the places of appointment `id` (the booking point and its user).
    pub(crate) async fn holders(&self, tx: &mut Tx, id: &str) -> Result<Vec<Option<String>>> {
        let holders = sqlx::query_scalar("SELECT holder FROM slot_claims WHERE appointment = $1")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
        Ok(holders)
    }

    /// Appointment `id` no longer holds a place in `slot`.
    pub(crate) async fn give_back_place(&self, tx: &mut Tx, id: &str, slot: &str) -> Result<()> {
        sqlx::query("DELETE FROM slot_claims WHERE appointment = $1 AND slot = $2")
            .bind(id)
            .bind(slot)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Keeps `code` for appointment `id`; `false` when another booking has it.
    pub(crate) async fn claim_booking_code(&self, tx: &mut Tx, code: &str, id: &str) -> Result<bool> {
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO booking_codes (code, appointment) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING RETURNING code",
        )
        .bind(code)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(taken.is_some())
    }

    /// Appointments whose hold has expired.
    pub(crate) async fn expired_holds(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        let r = sqlx::query_scalar(
            "SELECT DISTINCT appointment FROM slot_claims WHERE expires_us IS NOT NULL AND expires_us <= $1 LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *c)
        .await;
        c.done(r)
    }

    /// Proposals past their expiry.
    pub(crate) async fn expired_proposals(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        let r = sqlx::query_scalar("SELECT appointment FROM proposals WHERE expires_us <= $1 LIMIT $2")
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *c)
            .await;
        c.done(r)
    }

    /// Stores `$find`'s proposals (they take no place: no booking rule to apply) and
    /// records them for the sweep at `expires_us`. Returns their ids.
    pub(crate) async fn insert_proposals(
        &self,
        tx: &mut Tx,
        proposals: Vec<Value>,
        expires_us: i64,
    ) -> Result<Vec<String>> {
        let ids = self.insert_many(tx, "Appointment", proposals).await?;
        for id in &ids {
            sqlx::query("INSERT INTO proposals (appointment, expires_us) VALUES ($1, $2)")
                .bind(id)
                .bind(expires_us)
                .execute(&mut **tx)
                .await?;
        }
        Ok(ids)
    }

    /// When prescription `nre` was first asked for (now, if this is the first time).
    pub(crate) async fn prescription_clock(&self, tx: &mut Tx, nre: &str, now: i64) -> Result<i64> {
        sqlx::query("INSERT INTO prescription_clock (nre, first_us) VALUES ($1, $2) ON CONFLICT (nre) DO NOTHING")
            .bind(nre)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        let first: i64 = sqlx::query_scalar("SELECT first_us FROM prescription_clock WHERE nre = $1")
            .bind(nre)
            .fetch_one(&mut **tx)
            .await?;
        Ok(first)
    }

    pub(crate) async fn forget_proposal(&self, tx: &mut Tx, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM proposals WHERE appointment = $1").bind(id).execute(&mut **tx).await?;
        Ok(())
    }

    /// Records that the patient left the guarantee of `nre` (by AppointmentResponse
    /// `response`); the first such answer is the one kept.
    pub(crate) async fn waive_guarantee(&self, tx: &mut Tx, nre: &str, response: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO guarantee_waivers (nre, response, at_us) VALUES ($1, $2, $3) ON CONFLICT (nre) DO NOTHING",
        )
        .bind(nre)
        .bind(response)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The AppointmentResponse by which the patient left the guarantee of `nre`, if any.
    pub(crate) async fn guarantee_waiver(&self, tx: &mut Tx, nre: &str) -> Result<Option<String>> {
        let r: Option<String> = sqlx::query_scalar("SELECT response FROM guarantee_waivers WHERE nre = $1")
            .bind(nre)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(r)
    }
}
