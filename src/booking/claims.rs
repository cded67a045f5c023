//! A slot's capacity, claimed and released by every write of an Appointment,
//! whatever path it takes (POST, PUT, transaction, `$book`, `$cancel`): the rules
//! are in `crate::booking::rules`, the counting is here.
//!
//! Race-free by construction: each slot touched is first row-locked (its
//! `resources` row, `FOR UPDATE` on PostgreSQL; SQLite has one writer), in id order
//! so two reschedules crossing each other cannot deadlock; under that lock the live
//! claims (`slot_claims`, holds not yet expired) are counted and a new one is added
//! only below the slot's capacity. Two gateways on one database serialise per slot,
//! never globally. A full slot turns `busy`, and `free` again when a place frees.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::access::Access;
use crate::booking::rules::{self, AppointmentFacts, RequestFacts, SlotFacts};
use crate::error::Issue;
use crate::store::{now_micros, Dialect, Store, Stored, Tx};
use crate::{Error, Result};

impl Store {
    /// Applies the booking rules to a write of `Appointment/id`: `old` is the current
    /// body (`None` on create), `new` the body about to be stored (`None` on delete),
    /// into which a first booking gets its booking code and `booked-by`.
    pub(crate) async fn appointment_write(
        &self,
        tx: &mut Tx,
        access: &Access,
        id: &str,
        old: Option<&Value>,
        new: Option<&mut Value>,
    ) -> Result<()> {
        let base = self.settings().base.clone();
        let old_f = old.map(|o| AppointmentFacts::of(o, &base));
        let new_f = new.as_deref().map(|n| AppointmentFacts::of(n, &base));
        check_new(access, old_f.as_ref(), new_f.as_ref())?;
        let now = now_micros();
        let before: BTreeSet<&String> = old_f.iter().flat_map(|o| o.claimed_slots()).collect();
        let after: BTreeSet<&String> = new_f.iter().flat_map(|n| n.claimed_slots()).collect();
        // A hold turning into a booking claims its place again: the hold may have
        // expired and the place gone to someone else.
        let was_hold = old_f.as_ref().is_some_and(|o| o.status == "pending");
        let now_hold = new_f.as_ref().is_some_and(|n| n.status == "pending");
        let expires = self.hold_expiry_of(tx, id, was_hold, now_hold, now).await?;
        let to_claim: BTreeSet<&String> =
            after.iter().filter(|s| !before.contains(*s) || was_hold != now_hold).copied().collect();
        let to_release: BTreeSet<&String> = before.difference(&after).copied().collect();
        if was_hold && !now_hold && !to_claim.is_empty() && !access.is_privileged() {
            self.check_holder(tx, access, id).await?;
        }
        let requests = match &new_f {
            Some(n) if !to_claim.is_empty() => self.requests(tx, &n.requests).await?,
            _ => Vec::new(),
        };
        let places = Places { access, id, base: &base, now, expires, before: &before, new: new_f.as_ref(), requests };
        let first_claimed = self.move_places(tx, &places, &to_claim, &to_release).await?;
        self.after_places(tx, access, id, old_f.as_ref(), new, expires, first_claimed.as_ref()).await
    }

    /// A hold keeps its expiry through later edits: re-sending it does not extend it.
    async fn hold_expiry_of(&self, tx: &mut Tx, id: &str, was: bool, is: bool, now: i64) -> Result<Option<i64>> {
        Ok(match (was, is) {
            (true, true) => self.hold_expiry(tx, id).await?.or(Some(now + self.settings().hold_micros)),
            (false, true) => Some(now + self.settings().hold_micros),
            _ => None,
        })
    }

    /// Gives back the places of `to_release` and takes those of `to_claim`, each slot
    /// read under its lock; answers the first slot claimed (for the booking's facts).
    async fn move_places(
        &self,
        tx: &mut Tx,
        p: &Places<'_>,
        to_claim: &BTreeSet<&String>,
        to_release: &BTreeSet<&String>,
    ) -> Result<Option<Value>> {
        let mut first_claimed: Option<Value> = None;
        for slot_id in to_claim.union(to_release) {
            let slot = self.current_for_write(tx, "Slot", slot_id).await?.filter(|s| !s.deleted);
            if to_release.contains(slot_id) {
                self.release_place(tx, p, slot_id, slot).await?;
                continue;
            }
            let Some(slot) = slot else {
                return Err(Error::Unprocessable(vec![Issue::error(
                    "not-found",
                    Some("Appointment.slot".into()),
                    format!("Slot/{slot_id} does not exist"),
                )]));
            };
            self.claim_place(tx, p, slot_id, &slot).await?;
            if first_claimed.is_none() && p.new.and_then(|n| n.slots.first()) == Some(*slot_id) {
                first_claimed = Some(slot_body(&slot)?);
            }
        }
        Ok(first_claimed)
    }

    async fn release_place(&self, tx: &mut Tx, p: &Places<'_>, slot_id: &str, slot: Option<Stored>) -> Result<()> {
        sqlx::query("DELETE FROM slot_claims WHERE appointment = $1 AND slot = $2")
            .bind(p.id)
            .bind(slot_id)
            .execute(&mut **tx)
            .await?;
        if let Some(slot) = slot {
            let live = self.live_claims(tx, slot_id, None, p.now).await?;
            self.sync_slot_status(tx, &slot, live).await?;
        }
        Ok(())
    }

    async fn claim_place(&self, tx: &mut Tx, p: &Places<'_>, slot_id: &str, slot: &Stored) -> Result<()> {
        let facts = SlotFacts::of(slot_id, &slot_body(slot)?, p.base);
        // A place already held by this appointment is not checked again.
        if let Some(n) = p.new.filter(|_| !p.before.contains(&slot_id.to_string())) {
            rules::check_claim(n, &facts, &p.requests, p.now, p.access.is_privileged())?;
        }
        let holder = p.access.actor().map(holder_of);
        let live = self.take_place(tx, slot_id, p.id, p.now, facts.capacity, p.expires, holder).await?;
        if live >= facts.capacity {
            return Err(Error::Conflict(format!(
                "Slot/{slot_id} is fully booked ({live} of {}): choose another slot",
                facts.capacity
            )));
        }
        self.sync_slot_status(tx, slot, live + 1).await
    }

    /// What follows the places: the booking's stamp, its ticket and its message.
    #[allow(clippy::too_many_arguments)]
    async fn after_places(
        &self,
        tx: &mut Tx,
        access: &Access,
        id: &str,
        old_f: Option<&AppointmentFacts>,
        new: Option<&mut Value>,
        expires: Option<i64>,
        first_claimed: Option<&Value>,
    ) -> Result<()> {
        let old_status = old_f.map(|o| o.status.as_str());
        match new {
            Some(new) => {
                let status_changed = old_status != new["status"].as_str();
                self.stamp_booking(tx, access, id, old_f, new, expires, first_claimed).await?;
                if old_f.is_some() && status_changed {
                    self.ticket_on_change(tx, access, id, Some(&*new)).await?;
                }
                if status_changed {
                    self.appointment_message(tx, id, old_status, new).await?;
                }
            }
            None if old_f.is_some() => self.ticket_on_change(tx, access, id, None).await?,
            None => {}
        }
        Ok(())
    }

    /// When the hold of appointment `id` lapses.
    async fn hold_expiry(&self, tx: &mut Tx, id: &str) -> Result<Option<i64>> {
        let e: Option<i64> = sqlx::query_scalar("SELECT MIN(expires_us) FROM slot_claims WHERE appointment = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        Ok(e)
    }

    /// Only the operator who holds an appointment may book it.
    async fn check_holder(&self, tx: &mut Tx, access: &Access, id: &str) -> Result<()> {
        let holders: Vec<Option<String>> = sqlx::query_scalar("SELECT holder FROM slot_claims WHERE appointment = $1")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
        let me = access.actor().map(holder_of);
        match holders.iter().flatten().find(|h| Some(*h) != me.as_ref()) {
            Some(h) => Err(Error::Forbidden(format!(
                "Appointment/{id} is held by {}: only the holder may book it",
                h.replace('|', " user ")
            ))),
            None => Ok(()),
        }
    }

    /// The ServiceRequests an appointment is based on, as the rules see them.
    async fn requests(&self, tx: &mut Tx, ids: &[String]) -> Result<Vec<RequestFacts>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let found = crate::store::current_seen(tx, self.dialect(), "ServiceRequest", id).await?;
            let Some(v) = found.map(|s| s.value()).transpose()?.flatten() else {
                return Err(Error::Unprocessable(vec![Issue::error(
                    "not-found",
                    Some("Appointment.basedOn".into()),
                    format!("ServiceRequest/{id} does not exist"),
                )]));
            };
            out.push(RequestFacts::of(id, &v, &self.settings().base));
        }
        Ok(out)
    }

    /// Takes a place in `slot` (row-locked by the caller) for `appointment` if fewer
    /// than `capacity` are taken by others; returns how many were. On PostgreSQL the
    /// count and the new place are one statement.
    #[allow(clippy::too_many_arguments)]
    async fn take_place(
        &self,
        tx: &mut Tx,
        slot: &str,
        appointment: &str,
        now: i64,
        capacity: i64,
        expires: Option<i64>,
        holder: Option<String>,
    ) -> Result<i64> {
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

    /// `free` ↔ `busy` as the slot fills and empties, given the places now taken (a
    /// closed or tentative slot is left as it is).
    async fn sync_slot_status(&self, tx: &mut Tx, slot: &Stored, live: i64) -> Result<()> {
        let body = slot_body(slot)?;
        let facts = SlotFacts::of(&slot.id, &body, &self.settings().base);
        let wanted = match facts.status.as_str() {
            "free" if live >= facts.capacity => "busy",
            "busy" if live < facts.capacity => "free",
            _ => return Ok(()),
        };
        let mut body = body;
        body["status"] = json!(wanted);
        self.next_version(tx, slot, "PUT", Some(body)).await?;
        Ok(())
    }

    /// A booking's code (unique, kept in `booking_codes`) and who booked it.
    #[allow(clippy::too_many_arguments)]
    async fn stamp_booking(
        &self,
        tx: &mut Tx,
        access: &Access,
        id: &str,
        old: Option<&AppointmentFacts>,
        new: &mut Value,
        hold_expires: Option<i64>,
        slot: Option<&Value>,
    ) -> Result<()> {
        let base = self.settings().base.clone();
        let status = new["status"].as_str().unwrap_or_default().to_string();
        let hold_url = crate::fhir::names::structure(&base, "hold-expires");
        if let Some(list) = new.get_mut("extension").and_then(Value::as_array_mut) {
            list.retain(|e| e["url"].as_str() != Some(hold_url.as_str()));
            if list.is_empty() {
                new.as_object_mut().map(|o| o.remove("extension"));
            }
        }
        if let Some(until) = hold_expires {
            let ext = json!({"url": hold_url, "valueInstant": crate::fhir::meta::instant(until)});
            match new.get_mut("extension").and_then(Value::as_array_mut) {
                Some(a) => a.push(ext),
                None => new["extension"] = json!([ext]),
            }
        }
        // Administrators migrating data keep the identifiers they send.
        if status != "booked" || old.is_some_and(|o| o.status == "booked") || access.is_privileged() {
            return Ok(());
        }
        if let Some(actor) = access.actor() {
            rules::add_booked_by(new, &base, actor);
        }
        self.record_booking(tx, access, id, new, slot).await?;
        if rules::booking_code(new, &base).is_none() {
            self.assign_booking_code(tx, id, new).await?;
        }
        self.ticket_on_booking(tx, access, id, new, slot).await
    }

    /// A new booking code (unique, kept in `booking_codes`) on the appointment.
    async fn assign_booking_code(&self, tx: &mut Tx, id: &str, new: &mut Value) -> Result<()> {
        let base = self.settings().base.clone();
        for _ in 0..8 {
            let code = rules::new_booking_code();
            let taken: Option<String> = sqlx::query_scalar(
                "INSERT INTO booking_codes (code, appointment) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING RETURNING code",
            )
            .bind(&code)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
            if taken.is_some() {
                rules::add_booking_code(new, &base, &code);
                return Ok(());
            }
        }
        Err(Error::Busy("no free booking code was found; retry".into()))
    }
}

impl Store {
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

    /// `(pk, version)` of the current version of `res_type/id`.
    /// Answered from what the transaction already read or wrote of it when it can.
    pub(crate) async fn current_version(&self, tx: &mut Tx, res_type: &str, id: &str) -> Result<Option<(i64, i64)>> {
        if let Some(v) = tx.version_seen(res_type, id) {
            return Ok(v);
        }
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT pk, version FROM resources WHERE res_type = $1 AND res_id = $2 AND deleted = $3")
                .bind(res_type)
                .bind(id)
                .bind(false)
                .fetch_optional(&mut **tx)
                .await?;
        Ok(row)
    }

    pub(crate) async fn forget_proposal(&self, tx: &mut Tx, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM proposals WHERE appointment = $1").bind(id).execute(&mut **tx).await?;
        Ok(())
    }
}

/// Who holds a place: the booking point and its user.
fn holder_of(actor: &crate::access::Actor) -> String {
    format!("{}|{}", actor.org.as_deref().unwrap_or("-"), actor.sub)
}

fn slot_body(slot: &Stored) -> Result<Value> {
    Ok(slot.value()?.unwrap_or(Value::Null))
}

/// What every place a write takes or gives back needs to know.
struct Places<'a> {
    access: &'a Access,
    id: &'a str,
    base: &'a str,
    now: i64,
    /// A hold's expiry (`None` for a booking).
    expires: Option<i64>,
    /// The places the appointment held before this write.
    before: &'a BTreeSet<&'a String>,
    new: Option<&'a AppointmentFacts>,
    requests: Vec<RequestFacts>,
}

/// Who may set the new status, and that a new appointment names its slot.
fn check_new(access: &Access, old: Option<&AppointmentFacts>, new: Option<&AppointmentFacts>) -> Result<()> {
    let Some(n) = new else { return Ok(()) };
    rules::check_status(access.actor(), old.map(|o| o.status.as_str()), &n.status)?;
    if n.slots.is_empty() && !access.is_privileged() {
        return Err(Error::Unprocessable(vec![Issue::error(
            "required",
            Some("Appointment.slot".into()),
            "an appointment is booked on a slot (only an administrator may store one without, for data migration)",
        )]));
    }
    Ok(())
}
