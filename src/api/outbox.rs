//! The integration desk's outbox operations (administrators): `$outbox` (the
//! messages by status and provider, a page at a time, or one with its Bundle),
//! `$outbox-summary` (each provider's figures) and `$resend`. Parameters in, the
//! decisions in `crate::messaging` (`desk`, `resend`), Parameters out. Each call is
//! audited (`Touched::always`, even when it lists nothing), naming the messages it
//! touched and, for a message read whole, the resources its Bundle carries.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::limit::Body;
use super::params::Args;
use super::{AppState, Ctx, Reply, Touched};
use crate::fhir::meta::instant;
use crate::fhir::operations;
use crate::messaging::{desk, resend};
use crate::store::{OutboxQuery, OutboxRow};
use crate::{Error, Result};

const STATUSES: &[&str] = &["pending", "sent", "unroutable", "failed", "parked"];

/// An audit record naming `entities`, made whatever they are.
pub(super) fn audited(entities: Vec<String>) -> Touched {
    Touched { entities, always: true, ..Default::default() }
}

pub(super) fn message_entity(id: &str) -> String {
    format!("MessageHeader/{id}")
}

/// `_count` from 1 to 1000, `default` when absent.
pub(super) fn count_param(args: &Args, default: i64) -> Result<i64> {
    match args.integer("_count") {
        None => Ok(default),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(n) => {
            Err(Error::invalid("value", Some("_count".into()), format!("_count={n} is not a number from 1 to 1000")))
        }
    }
}

/// `status`, one of `allowed`.
fn status_param(args: &Args, allowed: &[&str]) -> Result<Option<String>> {
    match args.text("status") {
        Some(st) if !allowed.contains(&st.as_str()) => {
            Err(Error::invalid("code-invalid", Some("status".into()), format!("status is {}", allowed.join(", "))))
        }
        st => Ok(st),
    }
}

/// The provider code `provider` names (an Organization or a code).
async fn provider_param(s: &AppState, args: &Args) -> Result<Option<String>> {
    match args.text("provider") {
        Some(p) => Ok(Some(desk::provider_code(&s.store, &p).await?)),
        None => Ok(None),
    }
}

/// A 400 naming the first of `names` given beside `with`, which does not take them.
fn alone(args: &Args, with: &str, names: &[&str]) -> Result<()> {
    match names.iter().find(|n| args.text(n).is_some()) {
        Some(n) => Err(Error::invalid("invalid", Some((*n).into()), format!("{n} does not go with {with}"))),
        None => Ok(()),
    }
}

fn parameters(parameter: Vec<Value>) -> Value {
    json!({"resourceType": "Parameters", "parameter": parameter})
}

/// `GET $outbox?status=&provider=&_count=&before=`, or `?message-id=`.
pub async fn outbox(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.administrators_only("$outbox")?;
        let args = Args::read(&operations::OUTBOX, &ctx, &body)?;
        if let Some(id) = args.text("message-id") {
            alone(&args, "message-id", &["status", "provider", "_count", "before"])?;
            return one_message(&s, &ctx, &id).await;
        }
        let q = OutboxQuery {
            status: status_param(&args, STATUSES)?,
            provider: provider_param(&s, &args).await?,
            before: args.integer("before"),
            message_id: None,
            limit: count_param(&args, 100)?,
        };
        let rows = s.store.outbox(&q).await?;
        let mut parameter: Vec<Value> = rows.iter().map(|m| json!({"name": "message", "part": parts_of(m)})).collect();
        // A full page may have a next one: the same query, before the last position.
        if let Some(last) = rows.last().filter(|_| rows.len() as i64 == q.limit) {
            parameter.push(json!({"name": "next", "valueUri": next_page(&s, &ctx, last.seq)}));
        }
        let touched = audited(rows.iter().map(|m| message_entity(&m.message_id)).collect());
        Ok(ctx.resource(StatusCode::OK, &parameters(parameter))?.touched(touched))
    };
    ctx.respond(r.await)
}

/// The URL of the page after the one ending at position `seq`.
fn next_page(s: &AppState, ctx: &Ctx, seq: i64) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in ctx.query.iter().filter(|(k, _)| k != "before") {
        query.append_pair(k, v);
    }
    query.append_pair("before", &seq.to_string());
    format!("{}/$outbox?{}", s.base, query.finish())
}

/// One message and its Bundle; the audit names the resources the Bundle carries.
async fn one_message(s: &AppState, ctx: &Ctx, id: &str) -> Result<Reply> {
    let (row, bundle) = desk::message(&s.store, id).await?;
    let mut entities = vec![message_entity(id)];
    let entries = bundle.as_ref().and_then(|b| b.get("entry")).and_then(Value::as_array);
    for e in entries.into_iter().flatten().skip(1) {
        let r = &e["resource"];
        if let (Some(t), Some(i)) = (r["resourceType"].as_str(), r["id"].as_str()) {
            entities.push(format!("{t}/{i}"));
        }
    }
    let mut part = parts_of(&row);
    part.push(match bundle {
        Some(bundle) => json!({"name": "content", "resource": bundle}),
        None => json!({"name": "content-removed", "valueString": "its provider acknowledged it and its body was \
            removed after the retention period (--outbox-body-retention-hours)"}),
    });
    let out = parameters(vec![json!({"name": "message", "part": part})]);
    Ok(ctx.resource(StatusCode::OK, &out)?.touched(audited(entities)))
}

/// A message's parts, as `$outbox` answers them.
fn parts_of(m: &OutboxRow) -> Vec<Value> {
    let mut part = vec![
        json!({"name": "message-id", "valueString": m.message_id}),
        json!({"name": "provider", "valueString": m.provider}),
        json!({"name": "routing-key", "valueString": m.routing_key}),
        json!({"name": "event", "valueCode": m.event}),
        json!({"name": "focus", "valueReference": {"reference": m.focus}}),
        json!({"name": "status", "valueCode": m.status}),
        json!({"name": "attempts", "valueInteger": m.attempts}),
        json!({"name": "created", "valueInstant": instant(m.created_us)}),
        json!({"name": "position", "valueInteger": m.seq}),
    ];
    let texts = [("reason", &m.reason), ("resent-as", &m.resent_as), ("resent-from", &m.resent_from)];
    part.extend(texts.iter().filter_map(|(n, v)| v.as_ref().map(|v| json!({"name": n, "valueString": v}))));
    if let Some(d) = &m.delivery {
        part.push(json!({"name": "delivery", "valueCode": d}));
    }
    let times = [
        ("acknowledged", m.acked_us),
        ("sent", m.sent_us),
        ("next-attempt", m.next_attempt_us),
        ("resent", m.resent_us),
    ];
    part.extend(times.iter().filter_map(|(n, t)| t.map(|t| json!({"name": n, "valueInstant": instant(t)}))));
    if m.resends > 0 {
        part.push(json!({"name": "resends", "valueInteger": m.resends}));
    }
    part
}

/// An R4 Duration of `seconds`.
fn duration(seconds: i64) -> Value {
    json!({"value": seconds, "unit": "s", "system": "http://unitsofmeasure.org", "code": "s"})
}

/// `GET $outbox-summary?provider=`: each provider's figures.
pub async fn outbox_summary(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.administrators_only("$outbox-summary")?;
        let args = Args::read(&operations::OUTBOX_SUMMARY, &ctx, &body)?;
        let provider = provider_param(&s, &args).await?;
        let all = desk::summary(&s.store, provider.as_deref()).await?;
        let mut entities = Vec::new();
        let mut parameter = Vec::with_capacity(all.len());
        for x in &all {
            let named =
                [x.oldest_pending.as_ref().map(|o| &o.0), x.last_ack.as_ref().map(|a| &a.0), x.unanswered.as_ref()];
            entities.extend(named.into_iter().flatten().map(|id| message_entity(id)));
            parameter.push(json!({"name": "provider", "part": summary_parts(x)}));
        }
        Ok(ctx.resource(StatusCode::OK, &parameters(parameter))?.touched(audited(entities)))
    };
    ctx.respond(r.await)
}

fn summary_parts(x: &desk::Summary) -> Vec<Value> {
    let mut part = vec![json!({"name": "provider", "valueString": x.provider})];
    for status in ["pending", "unroutable", "failed", "parked"] {
        let n = x.waiting.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        part.push(json!({"name": status, "valueInteger": n}));
    }
    if let Some((id, created, age)) = &x.oldest_pending {
        part.push(json!({"name": "oldest-pending", "part": [
            {"name": "message-id", "valueString": id},
            {"name": "created", "valueInstant": instant(*created)},
            {"name": "age", "valueDuration": duration(*age)}]}));
    }
    if let Some((id, outcome, at)) = &x.last_ack {
        part.push(json!({"name": "last-acknowledgement", "part": [
            {"name": "message-id", "valueString": id},
            {"name": "outcome", "valueCode": outcome},
            {"name": "received", "valueInstant": instant(*at)}]}));
    }
    part.push(json!({"name": "lag", "valueDuration": duration(x.lag)}));
    if let Some(id) = &x.unanswered {
        part.push(json!({"name": "oldest-unanswered", "valueString": id}));
    }
    part
}

/// `POST $resend` with `message-id` (repeated), or `status` (and `provider`,
/// `_count`) for many.
pub async fn resend(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.administrators_only("$resend")?;
        let args = Args::read(&operations::RESEND, &ctx, &body)?;
        let ids = args.texts("message-id");
        if args.text("status").as_deref() == Some("pending") {
            let why = "pending messages are on their way already: status is unroutable, failed, parked or sent";
            return Err(Error::invalid("code-invalid", Some("status".into()), why));
        }
        let status = status_param(&args, &["unroutable", "failed", "parked", "sent"])?;
        let done = match (ids.is_empty(), status) {
            (false, None) => {
                alone(&args, "message-id", &["provider", "_count"])?;
                resend::resend(&s.store, &ids).await?
            }
            (true, Some(st)) => {
                let provider = provider_param(&s, &args).await?;
                resend::resend_where(&s.store, provider, &st, count_param(&args, 1000)?).await?
            }
            (false, Some(_)) => {
                return Err(Error::invalid("invalid", Some("status".into()), "message-id or status, not both"))
            }
            (true, None) => {
                let why = "$resend needs message-id (repeated for several), or status (and provider) for many";
                return Err(Error::invalid("required", Some("message-id".into()), why));
            }
        };
        resent(&ctx, &done)
    };
    ctx.respond(r.await)
}

/// `$resend`'s answer: how many were queued, and each message asked for.
fn resent(ctx: &Ctx, done: &[resend::Resent]) -> Result<Reply> {
    use resend::Outcome::{Queued, QueuedAs};
    let queued = done.iter().filter(|r| matches!(r.outcome, Queued | QueuedAs)).count();
    let mut parameter = vec![json!({"name": "queued", "valueInteger": queued})];
    let mut entities = Vec::new();
    for r in done {
        parameter.push(json!({"name": "resent", "part": [
            {"name": "message-id", "valueString": r.asked},
            {"name": "resent-id", "valueString": r.message_id},
            {"name": "outcome", "valueCode": r.outcome.code()},
            {"name": "status", "valueCode": r.status},
            {"name": "detail", "valueString": r.detail},
            {"name": "focus", "valueReference": {"reference": r.focus}}]}));
        entities.push(message_entity(&r.asked));
        if r.message_id != r.asked {
            entities.push(message_entity(&r.message_id));
        }
    }
    Ok(ctx.resource(StatusCode::OK, &parameters(parameter))?.touched(audited(entities)))
}
