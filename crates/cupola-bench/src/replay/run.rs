//! The year driven through the API: each event of the plan in turn, taken by the
//! next free client — prescriptions written, `$find` (`_count=3`), the patient's
//! choice, `$book`, the payment, and later the cancellation, reschedule or no-show;
//! each day's lists first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::api::{money, Api, Who, BASE};
use super::plan::{Choice, Event, Plan, Prescription};
use super::setup::{patient_id, Region};

/// Times a client finds again after another took its slot, before giving up.
const RETRIES: usize = 10;

/// A booking made: what the follow-ups and the checks need.
#[derive(Debug, Clone)]
pub struct Booked {
    pub appointment: String,
    pub start: chrono::DateTime<chrono::FixedOffset>,
    pub service: String,
    pub provider: String,
    pub point: Who,
    /// The Appointment as `$book` answered it.
    pub resource: Value,
}

/// A payment made: at which point, on which day, how much.
#[derive(Debug, Clone)]
pub struct Paid {
    pub point: String,
    pub day: chrono::NaiveDate,
    pub amount: Decimal,
}

/// What the run did, counted.
#[derive(Debug, Default)]
pub struct Tally {
    pub booked: AtomicU64,
    pub rebooked: AtomicU64,
    pub no_proposal: AtomicU64,
    /// `$book`s answered `409`: another client took the slot first (then found again).
    pub taken: AtomicU64,
    pub declined: AtomicU64,
    pub lapsed_holds: AtomicU64,
    pub paid: AtomicU64,
    pub cancelled: AtomicU64,
    pub cancelled_late: AtomicU64,
    pub no_shows: AtomicU64,
    pub lists: AtomicU64,
    pub failed: AtomicU64,
    pub errors: Mutex<Vec<String>>,
}

/// The run's shared state.
pub struct Run {
    pub api: Arc<Api>,
    pub plan: Arc<Plan>,
    pub region: Region,
    pub today: chrono::NaiveDate,
    pub bookings: Mutex<HashMap<usize, Option<Booked>>>,
    pub payments: Mutex<Vec<Paid>>,
    pub tally: Tally,
    /// No-shows reported by the providers themselves (`--provider-no-shows`).
    pub provider_no_shows: bool,
    next: AtomicUsize,
}

impl Run {
    pub fn new(api: Arc<Api>, plan: Arc<Plan>, region: Region) -> Run {
        let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive();
        let (bookings, payments) = (Mutex::new(HashMap::new()), Mutex::new(Vec::new()));
        let (tally, next) = (Tally::default(), AtomicUsize::new(0));
        Run { api, plan, region, today, bookings, payments, tally, provider_no_shows: false, next }
    }

    /// The plan's events, by `clients` clients at once, as fast as the gateway takes them.
    pub async fn drive(self: &Arc<Self>, clients: usize) -> anyhow::Result<()> {
        let tasks: Vec<_> = (0..clients.max(1))
            .map(|_| {
                let run = self.clone();
                tokio::spawn(async move { run.client().await })
            })
            .collect();
        for t in tasks {
            t.await.context("a replay client stopped")?;
        }
        Ok(())
    }

    async fn client(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(event) = self.plan.events.get(i).copied() else { return };
            if let Err(e) = self.event(event).await {
                self.tally.failed.fetch_add(1, Ordering::Relaxed);
                let text = format!("{event:?}: {e:#}");
                tracing::warn!(error = %text, "a step of the replay failed");
                if let Ok(mut errors) = self.tally.errors.lock() {
                    if errors.len() < 20 {
                        errors.push(text);
                    }
                }
            }
            self.api.stats.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn event(&self, event: Event) -> anyhow::Result<()> {
        match event {
            Event::Lists(day) => self.lists(day).await,
            Event::Book(n) => {
                let p = &self.plan.prescriptions[n];
                let booked = self.book(p).await;
                let ok = booked.as_ref().ok().cloned();
                if let Ok(mut m) = self.bookings.lock() {
                    m.insert(n, ok);
                }
                booked.map(|_| ())
            }
            Event::Later(n) => self.later(n).await,
        }
    }

    /// The day's lists for the next day, as the region's administrators send them.
    async fn lists(&self, day: u16) -> anyhow::Result<()> {
        let date = self.today + chrono::Duration::days(i64::from(day) + 1);
        let path = format!("$dispatch-lists?date={date}");
        self.api.expect("lists", &Who::Admin, Method::POST, &path, None, 200).await?;
        self.tally.lists.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The prescription written, its first slots found, the patient's choice, the
    /// booking and its payment.
    async fn book(&self, p: &Prescription) -> anyhow::Result<Booked> {
        let point = Who::Point(p.channel.clone(), p.point);
        let nre = self.prescribe(p, &point).await?;
        let query = format!("{}&referral-identifier={nre}&_count=3", self.window());
        let branch = &self.region.branches[p.branch as usize % self.region.branches.len()];
        let elsewhere = self.region.districts_offering(&branch.services, p.n);
        let proposals = self.find(&point, &query, &elsewhere).await.with_context(|| {
            let district = self.region.district(&self.plan, p.patient);
            format!("class {}, {} services of {}, patient in {district}", p.class, p.services, branch.code)
        })?;
        let (first, held) = match p.choice {
            Choice::Book => (0, false),
            Choice::Decline => {
                self.decline(&point, &proposals[0], p.patient).await?;
                (1, false)
            }
            Choice::HoldLapses => (1, self.hold(&point, &proposals[0]).await?),
        };
        let (booked, invoice) = match held {
            true => self.book_beside_a_hold(&point, (&query, &elsewhere), proposals).await?,
            false => self.book_found(&point, (&query, &elsewhere), proposals, first, None).await?,
        };
        self.tally.booked.fetch_add(1, Ordering::Relaxed);
        if let Some((channel, number)) = &p.pay {
            self.pay(channel, *number, &invoice, p.n).await?;
        }
        Ok(booked)
    }

    /// `start` and `end` of every search: the next 365 days.
    pub(super) fn window(&self) -> String {
        format!("start={}&end={}", self.today, self.today + chrono::Duration::days(365))
    }

    /// The prescription's ServiceRequests (one NRE, services of one branch) in one
    /// transaction; returns the NRE.
    async fn prescribe(&self, p: &Prescription, point: &Who) -> anyhow::Result<String> {
        let branch = &self.region.branches[p.branch as usize % self.region.branches.len()];
        let nre = format!("070A{:011}", p.n);
        let count = usize::from(p.services).min(branch.services.len());
        let entries: Vec<Value> = (0..count)
            .map(|i| {
                let code = &branch.services[(p.n + i) % branch.services.len()];
                let id = format!("rsr-{}-{i}", p.n);
                json!({"request": {"method": "PUT", "url": format!("ServiceRequest/{id}")},
                    "resource": {"resourceType": "ServiceRequest", "id": id, "status": "active", "intent": "order",
                    "requisition": {"system": "urn:oid:2.16.840.1.113883.2.9.4.3.9", "value": nre},
                    "subject": {"reference": format!("Patient/{}", patient_id(p.patient))},
                    "code": {"coding": [{"system": format!("{BASE}/CodeSystem/catalog"), "code": code}]},
                    "extension": [{"url": format!("{BASE}/StructureDefinition/priority-class"),
                        "valueCoding": {"system": format!("{BASE}/CodeSystem/priority-class"), "code": p.class}}]}})
            })
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        self.api.expect("prescribe", point, Method::POST, "", Some(&bundle), 200).await?;
        Ok(nre)
    }

    /// The proposals of a `$find`; when the patient's district has none (a service
    /// without a deadline is not sought beyond it), the same in each of `elsewhere`
    /// in turn, as a booking point asks the patient to travel. None is an error.
    pub(super) async fn find(&self, point: &Who, query: &str, elsewhere: &[String]) -> anyhow::Result<Vec<Value>> {
        let wider = elsewhere.iter().map(|d| {
            let d: String = url::form_urlencoded::byte_serialize(d.as_bytes()).collect();
            format!("{query}&district={d}")
        });
        for q in std::iter::once(query.to_string()).chain(wider) {
            let found =
                self.api.expect("$find", point, Method::GET, &format!("Appointment/$find?{q}"), None, 200).await?;
            let proposals: Vec<Value> = found["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["search"]["mode"] != "outcome")
                .map(|e| e["resource"].clone())
                .collect();
            if !proposals.is_empty() {
                return Ok(proposals);
            }
        }
        self.tally.no_proposal.fetch_add(1, Ordering::Relaxed);
        anyhow::bail!("$find proposed nothing ({query}, nor in {elsewhere:?}): are the agendas sized for the scale?")
    }

    /// The patient declines `proposal` (an AppointmentResponse).
    async fn decline(&self, point: &Who, proposal: &Value, patient: usize) -> anyhow::Result<()> {
        let id = proposal["id"].as_str().context("a proposal without id")?;
        let body = json!({"resourceType": "AppointmentResponse", "appointment": {"reference": format!("Appointment/{id}")},
            "actor": {"reference": format!("Patient/{}", patient_id(patient))}, "participantStatus": "declined"});
        self.api.expect("decline", point, Method::POST, "AppointmentResponse", Some(&body), 201).await?;
        self.tally.declined.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// `$book` of proposal `first` of `proposals` (replacing `replaces`), finding
    /// again with `query` while other clients take the slots first, as a booking
    /// point does: the booking and its Invoice.
    pub(super) async fn book_found(
        &self,
        point: &Who,
        (query, elsewhere): (&str, &[String]),
        mut proposals: Vec<Value>,
        mut first: usize,
        replaces: Option<&str>,
    ) -> anyhow::Result<(Booked, Value)> {
        for _ in 0..RETRIES {
            let proposal = proposals.get(first).or(proposals.first()).context("no proposal left to book")?;
            if let Some(done) = self.book_proposal(point, proposal, replaces).await? {
                return Ok(done);
            }
            self.tally.taken.fetch_add(1, Ordering::Relaxed);
            proposals = self.find(point, query, elsewhere).await?;
            first = 0;
        }
        anyhow::bail!("other clients took the proposed slots {RETRIES} times running ({query})")
    }

    /// `$hold` of the first proposal, left to lapse: whether it was held (`false` when
    /// another client took the slot first).
    async fn hold(&self, point: &Who, proposal: &Value) -> anyhow::Result<bool> {
        let body = reference_params(proposal, None);
        match self.api.call("$hold", point, Method::POST, "Appointment/$hold", Some(&body)).await? {
            (200, _) => {
                self.tally.lapsed_holds.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            (409, _) => {
                self.tally.taken.fetch_add(1, Ordering::Relaxed);
                Ok(false)
            }
            (status, v) => anyhow::bail!("$hold answered {status}: {}", super::api::outcome(&v)),
        }
    }

    /// The second proposal booked while the first is held for the patient; when
    /// another client took the second, the held one is booked, as a counter does (a
    /// new `$find` would not propose the prescription's held service again: a hold
    /// counts as its booking until it lapses). Then the hold did not lapse.
    async fn book_beside_a_hold(
        &self,
        point: &Who,
        search: (&str, &[String]),
        proposals: Vec<Value>,
    ) -> anyhow::Result<(Booked, Value)> {
        if let Some(second) = proposals.get(1) {
            if let Some(done) = self.book_proposal(point, second, None).await? {
                return Ok(done);
            }
            self.tally.taken.fetch_add(1, Ordering::Relaxed);
        }
        self.tally.lapsed_holds.fetch_sub(1, Ordering::Relaxed);
        match self.book_proposal(point, &proposals[0], None).await? {
            Some(done) => Ok(done),
            None => self.book_found(point, search, proposals, 0, None).await,
        }
    }

    /// `$book` of `proposal` (replacing `replaces`): the booking and its Invoice, or
    /// `None` when another client took the slot first (`409`).
    async fn book_proposal(
        &self,
        point: &Who,
        proposal: &Value,
        replaces: Option<&str>,
    ) -> anyhow::Result<Option<(Booked, Value)>> {
        let body = reference_params(proposal, replaces);
        let (status, out) = self.api.call("$book", point, Method::POST, "Appointment/$book", Some(&body)).await?;
        match status {
            // 200: a retry after a 503 found the booking already made.
            200 | 201 => {}
            409 => return Ok(None),
            _ => anyhow::bail!("$book answered {status}: {}", super::api::outcome(&out)),
        }
        let resources: Vec<&Value> = out["entry"].as_array().into_iter().flatten().map(|e| &e["resource"]).collect();
        let appointment = resources
            .iter()
            .find(|r| r["resourceType"] == "Appointment" && r["status"] == "booked")
            .context("$book answered no booked Appointment")?;
        let invoice = resources.iter().find(|r| r["resourceType"] == "Invoice").map_or(Value::Null, |v| (*v).clone());
        Ok(Some((self.booked(appointment, point)?, invoice)))
    }

    /// What the replay keeps of a booked Appointment.
    fn booked(&self, a: &Value, point: &Who) -> anyhow::Result<Booked> {
        let start = chrono::DateTime::parse_from_rfc3339(a["start"].as_str().unwrap_or_default())
            .context("a booked Appointment without its start")?;
        let catalog = format!("{BASE}/CodeSystem/catalog");
        let codings = a["serviceType"].as_array().into_iter().flatten().flat_map(|t| t["coding"].as_array()).flatten();
        let service = codings.filter(|c| c["system"] == catalog.as_str()).find_map(|c| c["code"].as_str());
        let location =
            a["participant"].as_array().into_iter().flatten().find_map(|p| {
                p["actor"]["reference"].as_str().filter(|r| r.starts_with("Location/")).map(str::to_string)
            });
        let provider = location.and_then(|l| self.region.provider_of.get(&l).cloned()).unwrap_or_default();
        Ok(Booked {
            appointment: a["id"].as_str().context("a booked Appointment without id")?.to_string(),
            start,
            service: service.unwrap_or_default().to_string(),
            provider,
            point: point.clone(),
            resource: a.clone(),
        })
    }

    /// The ticket paid at a payment point of `channel` (a counter takes it with its
    /// booking token; pharmacies, kiosks and the web as payment points).
    async fn pay(&self, channel: &str, number: u32, invoice: &Value, n: usize) -> anyhow::Result<()> {
        let owed = money(&invoice["totalNet"]);
        let Some(id) = invoice["id"].as_str().filter(|_| owed > Decimal::ZERO) else { return Ok(()) };
        let who = match channel {
            "counter" => Who::Point(channel.into(), number),
            _ => Who::Payer(channel.into(), number),
        };
        let (point, day) = (who.org(), rome_today());
        let body = json!({"resourceType": "PaymentNotice", "status": "active",
            "identifier": [{"system": format!("urn:x-point:{point}"), "value": format!("R-{n}")}],
            "request": {"reference": format!("Invoice/{id}")},
            "created": chrono::Utc::now().to_rfc3339(),
            "payment": {"identifier": {"system": format!("{BASE}/sid/remittance"), "value": format!("{point}/{day}")}},
            "recipient": {"reference": "Organization/ssr-liguria"},
            "amount": {"value": cupola::catalog::decimal_value(owed), "currency": "EUR"}});
        self.api.expect("pay", &who, Method::POST, "PaymentNotice", Some(&body), 201).await?;
        self.tally.paid.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut p) = self.payments.lock() {
            p.push(Paid { point, day, amount: owed });
        }
        Ok(())
    }
}

/// `Parameters` naming a stored proposal (and the appointment it replaces).
fn reference_params(proposal: &Value, replaces: Option<&str>) -> Value {
    let id = proposal["id"].as_str().unwrap_or_default();
    let mut p =
        vec![json!({"name": "appointment-reference", "valueReference": {"reference": format!("Appointment/{id}")}})];
    if let Some(r) = replaces {
        p.push(json!({"name": "cancelled-appt-id", "valueString": r}));
    }
    json!({"resourceType": "Parameters", "parameter": p})
}

/// Today in Europe/Rome (the remittances' day).
pub fn rome_today() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive()
}
