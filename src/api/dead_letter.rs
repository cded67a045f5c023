//! The integration desk's dead-letter operations (administrators): `$dead-letter`
//! reads the dead-letter queue, leaving every message there, and
//! `$dead-letter-replay` puts messages back on their way (see
//! `crate::messaging::dead_letter` and `replay` for how nothing is lost). Each call
//! is audited, naming the messages it read or replayed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::limit::Body;
use super::outbox::{audited, count_param, message_entity};
use super::params::Args;
use super::{AppState, Ctx};
use crate::fhir::meta::instant;
use crate::fhir::operations;
use crate::messaging::dead_letter::{self, Dead, Origin};
use crate::messaging::replay::{self, Which};
use crate::{Error, Result};

/// The broker the gateway publishes to; none configured, no queue to read.
fn broker_url(s: &AppState) -> Result<String> {
    s.config.amqp_url.clone().ok_or_else(|| {
        Error::Conflict("this gateway has no broker (--amqp-url): there is no dead-letter queue to read".into())
    })
}

/// `GET $dead-letter?_count=`: the queue's messages, each with why it is there.
pub async fn dead_letter(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.administrators_only("$dead-letter")?;
        let args = Args::read(&operations::DEAD_LETTER, &ctx, &body)?;
        let count = count_param(&args, 100)?;
        let topology = s.store.settings().messaging.topology();
        let listing = dead_letter::list(&broker_url(&s)?, &topology, count as usize).await?;
        let mut parameter = vec![json!({"name": "total", "valueInteger": listing.total})];
        parameter.extend(listing.dead.iter().map(|d| json!({"name": "message", "part": parts_of(d)})));
        let entities = listing.dead.iter().filter_map(|d| d.message_id.as_deref()).map(message_entity).collect();
        let out = json!({"resourceType": "Parameters", "parameter": parameter});
        Ok(ctx.resource(StatusCode::OK, &out)?.touched(audited(entities)))
    };
    ctx.respond(r.await)
}

/// A dead letter's parts, as `$dead-letter` answers them.
fn parts_of(d: &Dead) -> Vec<Value> {
    let origin = match &d.origin {
        Origin::Inbound { .. } => "inbound",
        Origin::Queue { .. } => "queue",
        Origin::Unknown => "unknown",
    };
    let mut part = vec![
        json!({"name": "dead-letter-id", "valueString": d.id}),
        json!({"name": "origin", "valueCode": origin}),
        json!({"name": "reason", "valueString": d.reason}),
    ];
    let mut text = |name: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            part.push(json!({"name": name, "valueString": v}));
        }
    };
    text("message-id", d.message_id.as_deref());
    match &d.origin {
        Origin::Inbound { user } => text("provider", user.as_deref()),
        Origin::Queue { exchange, routing_key, queue } => {
            text("exchange", Some(exchange.as_str()));
            text("routing-key", Some(routing_key.as_str()));
            text("queue", Some(queue.as_str()));
        }
        Origin::Unknown => {}
    }
    if let Some(t) = d.died {
        let at = i64::try_from(t).unwrap_or_default().saturating_mul(1_000_000);
        part.push(json!({"name": "died", "valueInstant": instant(at)}));
    }
    if let Some(n) = d.count {
        part.push(json!({"name": "count", "valueInteger": n}));
    }
    if let Some(o) = &d.outcome {
        part.push(json!({"name": "outcome", "resource": o}));
    }
    part.push(content(d));
    part
}

/// The message itself: a FHIR resource as such, anything else as text (its start).
fn content(d: &Dead) -> Value {
    match d.resource() {
        Some(r) => json!({"name": "content", "resource": r}),
        None => {
            let shown: String = String::from_utf8_lossy(&d.body).chars().take(4000).collect();
            json!({"name": "content-text", "valueString": shown})
        }
    }
}

/// `POST $dead-letter-replay` with `dead-letter-id` (repeated), or `all=true`.
pub async fn replay(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.administrators_only("$dead-letter-replay")?;
        let args = Args::read(&operations::DEAD_LETTER_REPLAY, &ctx, &body)?;
        let ids = args.texts("dead-letter-id");
        let which = match (ids.is_empty(), args.boolean("all")) {
            (false, None | Some(false)) => Which::Ids(ids),
            (true, Some(true)) => Which::All,
            (false, Some(true)) => {
                return Err(Error::invalid("invalid", Some("all".into()), "all=true or dead-letter-id, not both"))
            }
            (true, _) => {
                let why = "$dead-letter-replay needs dead-letter-id (repeated for several), or all=true";
                return Err(Error::invalid("required", Some("dead-letter-id".into()), why));
            }
        };
        let topology = s.store.settings().messaging.topology();
        let done = replay::replay(&s.store, &broker_url(&s)?, &topology, &which).await?;
        let replayed = done.iter().filter(|r| r.outcome == "replayed").count();
        let mut parameter = vec![json!({"name": "replayed-count", "valueInteger": replayed})];
        let mut entities = Vec::new();
        for r in &done {
            let mut part = vec![json!({"name": "dead-letter-id", "valueString": r.id})];
            if let Some(m) = &r.message_id {
                part.push(json!({"name": "message-id", "valueString": m}));
                entities.push(message_entity(m));
            }
            part.push(json!({"name": "outcome", "valueCode": r.outcome}));
            part.push(json!({"name": "detail", "valueString": r.detail}));
            parameter.push(json!({"name": "replayed", "part": part}));
        }
        let out = json!({"resourceType": "Parameters", "parameter": parameter});
        Ok(ctx.resource(StatusCode::OK, &out)?.touched(audited(entities)))
    };
    ctx.respond(r.await)
}
