//! The dead-letter queue (`<exchange>.dead-letter`) as the integration desk reads it
//! (`$dead-letter`; `replay` puts messages back on their way). The queue stays the
//! one record of its messages — no copy in the database, which would be a second
//! truth to keep in step with what RabbitMQ's own tools show — and reading it loses
//! none: each message is taken with `basic.get` unacknowledged, so that the same
//! read does not get it twice, and put back with `basic.nack(requeue)` in its place
//! once all are read. A gateway that dies meanwhile has its connection closed by
//! the broker, which puts them back the same. Two readers at once each see the
//! messages the other does not hold at that moment.

use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{BasicGetOptions, BasicNackOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::Value;
use sha2::Digest;

use super::consumer::{OUTCOME_HEADER, USER_HEADER};
use super::Topology;
use crate::{Error, Result};

/// At most this many messages are read (and held) at once.
pub const READ_MAX: usize = 1000;

/// Where a dead message came from, and so how it is replayed.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// An inbound message the gateway refused, or one RabbitMQ dead-lettered from the
    /// inbound queue: processed again as from `user`, the provider's broker user.
    Inbound { user: Option<String> },
    /// Dead-lettered by RabbitMQ from `queue` (a provider's): published again to
    /// the exchange and routing key it had.
    Queue { exchange: String, routing_key: String, queue: String },
    /// Published to the dead-letter exchange by someone else: nothing says where from.
    Unknown,
}

/// A message of the dead-letter queue, as the desk shows it.
#[derive(Debug, Clone)]
pub struct Dead {
    /// Its AMQP message id, else `sha256-` and the start of its body's digest.
    pub id: String,
    pub message_id: Option<String>,
    pub origin: Origin,
    /// Why it is there, in plain words.
    pub reason: String,
    /// The OperationOutcome the consumer attached, when it refused it.
    pub outcome: Option<Value>,
    /// When it died (seconds since the epoch) and how often, per RabbitMQ's `x-death`.
    pub died: Option<u64>,
    pub count: Option<i64>,
    pub body: Vec<u8>,
}

/// What a read found: the messages the queue held (ready) and those read.
#[derive(Debug, Default)]
pub struct Listing {
    pub total: u32,
    pub dead: Vec<Dead>,
}

/// A link to the broker for one request: a channel that reads and a confirming one
/// that publishes (a replay).
pub(super) struct Link {
    conn: Connection,
    pub read: Channel,
    pub publish: Channel,
}

/// A broker failure, as a client sees it: the queue is as it was.
pub(super) fn broker(e: impl std::fmt::Display) -> Error {
    Error::Busy(format!("the broker failed ({e}); the dead-letter queue keeps every message, try again"))
}

impl Link {
    pub async fn open(url: &str, t: &Topology) -> Result<(Link, u32)> {
        let connect = Connection::connect(url, ConnectionProperties::default());
        let conn = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| broker("no answer in 10 s"))?
            .map_err(broker)?;
        let read = conn.create_channel().await.map_err(broker)?;
        let total = super::relay::declare_dead_letter(&read, t).await.map_err(broker)?;
        let publish = conn.create_channel().await.map_err(broker)?;
        publish.confirm_select(ConfirmSelectOptions::default()).await.map_err(broker)?;
        Ok((Link { conn, read, publish }, total))
    }

    /// Up to `limit` messages of the queue, held unacknowledged.
    pub async fn take(&self, t: &Topology, limit: usize) -> Result<Vec<Delivery>> {
        let mut held = Vec::new();
        while held.len() < limit {
            let got = self.read.basic_get(&t.dead_letter_queue(), BasicGetOptions { no_ack: false }).await;
            match got.map_err(broker)? {
                Some(m) => held.push(m.delivery),
                None => break,
            }
        }
        Ok(held)
    }

    /// Puts `held` back in the queue, in their places, and closes the link. Closing
    /// would put them back too: a failed nack only logs.
    pub async fn put_back(self, held: Vec<Delivery>) {
        for d in held {
            if let Err(e) = d.acker.nack(BasicNackOptions { requeue: true, multiple: false }).await {
                tracing::warn!(error = %e, "a dead letter not put back by nack: closing the channel puts it back");
            }
        }
        let _ = self.conn.close(200, "dead-letter queue read").await;
    }
}

/// Reads up to `limit` messages of the dead-letter queue, leaving them all there.
pub async fn list(url: &str, t: &Topology, limit: usize) -> Result<Listing> {
    let (link, total) = Link::open(url, t).await?;
    let held = match link.take(t, limit.min(READ_MAX)).await {
        Ok(h) => h,
        Err(e) => {
            link.put_back(Vec::new()).await;
            return Err(e);
        }
    };
    let dead = held.iter().map(|d| Dead::of(d, t)).collect();
    link.put_back(held).await;
    Ok(Listing { total, dead })
}

impl Dead {
    pub fn of(d: &Delivery, t: &Topology) -> Dead {
        let headers = d.properties.headers().clone().unwrap_or_default();
        let h = headers.inner();
        let outcome: Option<Value> = h.get(OUTCOME_HEADER).and_then(text).and_then(|s| serde_json::from_str(&s).ok());
        let death = h.get("x-death").and_then(AMQPValue::as_array).and_then(|a| a.as_slice().first());
        let death = death.and_then(AMQPValue::as_field_table);
        let message_id = d.properties.message_id().as_ref().map(|m| m.to_string());
        let proven = d.properties.user_id().as_ref().map(|u| u.to_string());
        let user = h.get(USER_HEADER).and_then(text).or(proven);
        let origin = origin(outcome.is_some(), death, user, t);
        let reason = match (&outcome, death) {
            (Some(o), _) => diagnostics(o),
            (None, Some(x)) => death_reason(x),
            (None, None) => "no reason recorded: it was published to the dead-letter exchange directly".into(),
        };
        Dead {
            id: message_id.clone().unwrap_or_else(|| digest_id(&d.data)),
            message_id,
            origin,
            reason,
            outcome,
            died: death.and_then(|x| x.inner().get("time")).and_then(AMQPValue::as_timestamp),
            count: death.and_then(|x| x.inner().get("count")).and_then(AMQPValue::as_long_long_int),
            body: d.data.clone(),
        }
    }

    /// The body as a FHIR resource, when it is one.
    pub fn resource(&self) -> Option<Value> {
        serde_json::from_slice::<Value>(&self.body).ok().filter(|v| v.get("resourceType").is_some())
    }
}

fn origin(refused: bool, death: Option<&FieldTable>, user: Option<String>, t: &Topology) -> Origin {
    if refused {
        return Origin::Inbound { user };
    }
    let Some(x) = death else { return Origin::Unknown };
    let field = |k: &str| x.inner().get(k).and_then(text).unwrap_or_default();
    let keys = x.inner().get("routing-keys").and_then(AMQPValue::as_array);
    let routing_key = keys.and_then(|k| k.as_slice().first()).and_then(text).unwrap_or_default();
    let queue = field("queue");
    if queue == t.inbound_queue() {
        return Origin::Inbound { user };
    }
    Origin::Queue { exchange: field("exchange"), routing_key, queue }
}

/// What RabbitMQ's `x-death` says of a message's death, in plain words.
fn death_reason(x: &FieldTable) -> String {
    let field = |k: &str| x.inner().get(k).and_then(text).unwrap_or_default();
    let queue = field("queue");
    match field("reason").as_str() {
        "rejected" => format!("rejected by a consumer of queue {queue}, not to be delivered again"),
        "expired" => format!("expired in queue {queue}: its time to live ran out"),
        "maxlen" => format!("dropped from queue {queue}, which was full (max-length)"),
        "delivery_limit" => format!("delivered too many times from queue {queue} (delivery-limit)"),
        other => format!("dead-lettered from queue {queue} ({other})"),
    }
}

/// The diagnostics of an OperationOutcome's issues, one after the other.
pub(super) fn diagnostics(outcome: &Value) -> String {
    let issues = outcome.get("issue").and_then(Value::as_array).into_iter().flatten();
    let said: Vec<&str> = issues.filter_map(|i| i.get("diagnostics").and_then(Value::as_str)).collect();
    if said.is_empty() {
        "refused by the gateway (its OperationOutcome says no more)".into()
    } else {
        said.join("; ")
    }
}

/// A header value as text.
fn text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// An id for a message without one: its body's digest (the same body, the same id).
fn digest_id(body: &[u8]) -> String {
    let digest = sha2::Sha256::digest(body);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256-{hex}")
}
