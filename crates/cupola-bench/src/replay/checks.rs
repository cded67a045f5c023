//! The end checks, through the API as an administrator: no slot over-booked, every
//! booking's message acknowledged `ok`, every payment in its remittance, and each
//! month's settlement equal to the payments to the cent.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use reqwest::Method;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::Value;

use super::api::{money, part, Api, Who, BASE};
use super::run::Run;
use super::stats::OutboxSample;

/// One check: its name, whether it passed, and what it found.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

fn check(name: &'static str, passed: bool, detail: String) -> Check {
    Check { name, passed, detail }
}

/// The outbox now: messages waiting, and the longest wait for an answer (s).
pub async fn outbox_sample(api: &Api, at: f64) -> anyhow::Result<OutboxSample> {
    let v = api.expect("check", &Who::Admin, Method::GET, "$outbox-summary", None, 200).await?;
    let mut sample = OutboxSample { at, ..OutboxSample::default() };
    for p in v["parameter"].as_array().into_iter().flatten().filter(|p| p["name"] == "provider") {
        let parts = &p["part"];
        for name in ["pending", "unroutable", "failed", "parked"] {
            sample.pending += part(parts, name).and_then(|x| x["valueInteger"].as_u64()).unwrap_or(0);
        }
        let lag = part(parts, "lag").map_or(0.0, |x| money(&x["valueDuration"]).to_f64().unwrap_or(0.0));
        sample.lag_secs = sample.lag_secs.max(lag);
    }
    Ok(sample)
}

/// Waits (up to `limit`) until nothing waits in the outbox and every provider has
/// answered what it was sent.
pub async fn settle_outbox(api: &Api, limit: Duration) -> anyhow::Result<OutboxSample> {
    let start = Instant::now();
    loop {
        let s = outbox_sample(api, api.stats.start.elapsed().as_secs_f64()).await?;
        api.stats.push_outbox(s);
        if (s.pending == 0 && s.lag_secs == 0.0) || start.elapsed() > limit {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every check, in turn.
pub async fn all(run: &Run) -> anyhow::Result<Vec<Check>> {
    let api = &run.api;
    Ok(vec![
        every_step_done(run),
        no_slot_over_booked(api).await?,
        bookings_acknowledged(run).await?,
        payments_in_remittances(run).await?,
        settlement_equals_payments(run).await?,
    ])
}

/// Every step of the plan done, every prescription booked.
fn every_step_done(run: &Run) -> Check {
    use std::sync::atomic::Ordering::Relaxed;
    let (failed, booked) = (run.tally.failed.load(Relaxed), run.tally.booked.load(Relaxed));
    let planned = run.plan.prescriptions.len() as u64;
    let detail = format!("{booked} of {planned} prescriptions booked, {failed} steps failed");
    check("every step of the plan done", failed == 0 && booked == planned, detail)
}

/// Each slot holds no more live appointments than its capacity.
async fn no_slot_over_booked(api: &Api) -> anyhow::Result<Check> {
    let q = "Appointment?status=pending,booked,arrived,checked-in,fulfilled,noshow&_count=1000";
    let live = api.search_all(&Who::Admin, q).await?;
    let mut per_slot: HashMap<String, u64> = HashMap::new();
    for a in &live {
        for s in a["slot"].as_array().into_iter().flatten().filter_map(|s| s["reference"].as_str()) {
            *per_slot.entry(s.to_string()).or_default() += 1;
        }
    }
    let shared: Vec<(&String, &u64)> = per_slot.iter().filter(|(_, n)| **n > 1).collect();
    let capacity_url = format!("{BASE}/StructureDefinition/slot-capacity");
    let mut over = Vec::new();
    for (slot, n) in &shared {
        let s = api.expect("check", &Who::Admin, Method::GET, slot, None, 200).await?;
        let ext = s["extension"].as_array().and_then(|e| e.iter().find(|x| x["url"] == capacity_url.as_str()));
        let capacity = ext.and_then(|x| x["valueInteger"].as_u64()).unwrap_or(1);
        if **n > capacity {
            over.push(format!("{slot}: {n} of {capacity}"));
        }
    }
    let most = per_slot.values().max().copied().unwrap_or(0);
    let detail = format!(
        "{} live appointments on {} slots ({} holding more than one, at most {most}); over-booked: {}",
        live.len(),
        per_slot.len(),
        shared.len(),
        if over.is_empty() { "none".to_string() } else { over.join(", ") }
    );
    Ok(check("no slot over-booked", over.is_empty() && !live.is_empty(), detail))
}

/// Every `appointment-booked` message sent and answered `ok`, one per booking made.
async fn bookings_acknowledged(run: &Run) -> anyhow::Result<Check> {
    // The answers of a provider's last messages may still be on their way.
    let mut messages = outbox_messages(&run.api).await?;
    for _ in 0..30 {
        if messages.iter().all(|m| part(m, "delivery").is_some_and(|d| d["valueCode"] == "ok")) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        messages = outbox_messages(&run.api).await?;
    }
    let event = |m: &Value| part(m, "event").and_then(|e| e["valueCode"].as_str()).unwrap_or_default().to_string();
    let field = |m: &Value, name: &str| part(m, name).map(|x| x["valueCode"].as_str().unwrap_or_default().to_string());
    let booked: Vec<&Value> = messages.iter().filter(|m| event(m) == "appointment-booked").collect();
    let acked = booked.iter().filter(|m| field(m, "delivery").as_deref() == Some("ok")).count();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for m in &messages {
        *by_status.entry(field(m, "status").unwrap_or_default()).or_default() += 1;
    }
    let made = (run.tally.booked.load(std::sync::atomic::Ordering::Relaxed)
        + run.tally.rebooked.load(std::sync::atomic::Ordering::Relaxed)) as usize;
    let passed = acked == booked.len() && booked.len() >= made && made > 0;
    let unanswered: Vec<String> = messages
        .iter()
        .filter(|m| field(m, "delivery").as_deref() != Some("ok"))
        .take(3)
        .map(|m| format!("{} {}: {}", event(m), field(m, "status").unwrap_or_default(), reason(m)))
        .collect();
    let detail = format!(
        "{} bookings made, {} appointment-booked messages, {acked} acknowledged ok; all {} messages by status: {by_status:?}; not acknowledged: {unanswered:?}",
        made,
        booked.len(),
        messages.len()
    );
    Ok(check("every booking's message acknowledged ok", passed, detail))
}

/// Why a message is not sent, as the outbox says.
fn reason(m: &Value) -> String {
    part(m, "reason").and_then(|r| r["valueString"].as_str()).unwrap_or("no reason given").chars().take(200).collect()
}

/// The outbox, page after page (`next`), newest first.
async fn outbox_messages(api: &Api) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut path = "$outbox?_count=1000".to_string();
    loop {
        let page = api.expect("check", &Who::Admin, Method::GET, &path, None, 200).await?;
        let params = page["parameter"].as_array().cloned().unwrap_or_default();
        out.extend(params.iter().filter(|p| p["name"] == "message").map(|p| p["part"].clone()));
        let next = params.iter().find(|p| p["name"] == "next").and_then(|p| {
            p["valueUri"].as_str().or(p["valueUrl"].as_str()).or(p["valueString"].as_str()).map(str::to_string)
        });
        match next {
            Some(url) => path = url.split_once("/fhir/").map_or(url.clone(), |(_, p)| p.to_string()),
            None => return Ok(out),
        }
    }
}

/// The PaymentNotices (payments and refunds) the gateway holds.
async fn notices(api: &Api) -> anyhow::Result<Vec<Value>> {
    api.search_all(&Who::Admin, "PaymentNotice?_count=1000").await
}

/// Each payment the replay made is a PaymentNotice, and each point's remittance of
/// the day holds its payments (and refunds): their number and their sum.
async fn payments_in_remittances(run: &Run) -> anyhow::Result<Check> {
    let all = notices(&run.api).await?;
    let made: Vec<_> = run.payments.lock().map(|p| p.clone()).unwrap_or_default();
    let made_sum: Decimal = made.iter().map(|p| p.amount).sum();
    let positive: Vec<&Value> = all.iter().filter(|n| money(&n["amount"]) > Decimal::ZERO).collect();
    let stored_sum: Decimal = positive.iter().map(|n| money(&n["amount"])).sum();
    let mut groups: BTreeMap<String, (usize, Decimal)> = BTreeMap::new();
    for n in &all {
        let key = n["payment"]["identifier"]["value"].as_str().unwrap_or_default().replace('/', "-");
        let g = groups.entry(key).or_default();
        g.0 += 1;
        g.1 += money(&n["amount"]);
    }
    let mut wrong = Vec::new();
    for (key, (count, sum)) in &groups {
        let path = format!("PaymentReconciliation/remittance-{key}");
        let r = run.api.expect("check", &Who::Admin, Method::GET, &path, None, 200).await?;
        let details = r["detail"].as_array().map_or(0, Vec::len);
        if details != *count || money(&r["paymentAmount"]) != *sum {
            wrong.push(format!("{path}: {details} details, {} (expected {count}, {sum})", money(&r["paymentAmount"])));
        }
    }
    for p in &made {
        let key = format!("{}-{}", p.point, p.day);
        if !groups.contains_key(&key) {
            wrong.push(format!("no remittance-{key} holds the payment of {} EUR made there", p.amount));
        }
    }
    let passed = wrong.is_empty() && positive.len() == made.len() && stored_sum == made_sum && !made.is_empty();
    let detail = format!(
        "{} payments made ({made_sum} EUR), {} stored ({stored_sum} EUR), {} refunds; {} remittances, wrong: {}",
        made.len(),
        positive.len(),
        all.len() - positive.len(),
        groups.len(),
        if wrong.is_empty() { "none".to_string() } else { wrong.join("; ") }
    );
    Ok(check("every payment in its remittance", passed, detail))
}

/// Each month's settlement: its `payments-total` and the providers' `ticket` lines
/// equal, to the cent, the month's PaymentNotices.
async fn settlement_equals_payments(run: &Run) -> anyhow::Result<Check> {
    let all = notices(&run.api).await?;
    let mut months: BTreeMap<String, Decimal> = BTreeMap::new();
    for n in &all {
        let created = n["created"].as_str().and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok());
        let month = created.map(|c| c.with_timezone(&chrono_tz::Europe::Rome).format("%Y-%m").to_string());
        *months.entry(month.unwrap_or_default()).or_default() += money(&n["amount"]);
    }
    let mut lines = Vec::new();
    let mut passed = !months.is_empty();
    for (period, paid) in &months {
        let path = format!("$settlement?period={period}");
        let out = run.api.expect("check", &Who::Admin, Method::GET, &path, None, 200).await?;
        let entries: Vec<&Value> = out["entry"].as_array().into_iter().flatten().map(|e| &e["resource"]).collect();
        let total =
            entries.last().and_then(|p| part(&p["parameter"], "payments-total")).map(|t| money(&t["valueMoney"]));
        let tickets: Decimal = entries
            .iter()
            .filter(|r| r["resourceType"] == "PaymentReconciliation")
            .flat_map(|r| r["detail"].as_array().cloned().unwrap_or_default())
            .filter(|d| d["type"]["coding"][0]["code"] == "ticket")
            .map(|d| money(&d["amount"]))
            .sum();
        passed &= total == Some(*paid) && tickets == *paid;
        lines.push(format!(
            "{period}: payments {paid} EUR, settlement payments-total {total:?}, ticket lines {tickets}"
        ));
    }
    Ok(check("the month's settlement equals the payments to the cent", passed, lines.join("; ")))
}
