//! Replaying dead letters (`$dead-letter-replay`): one message, several, or all the
//! queue holds (up to [`READ_MAX`]). A message dead-lettered from a provider's
//! queue is published again to the exchange and routing key it had (`mandatory`,
//! with a publisher confirm); an inbound message the gateway refused is processed
//! again, as from the provider whose broker user published it (the gateway cannot
//! republish it under that user: RabbitMQ checks `user_id`). A replayed message
//! leaves the queue (`basic.ack`) only once the replay is done — confirmed by the
//! broker with a queue taking it, or processed and committed; one whose replay
//! fails stays, in its place, and the answer says why. Should the gateway die
//! between the two, the broker puts the message back: it may be replayed twice,
//! under its one message id, which a provider drops as a duplicate.

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicPublishOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use serde_json::Value;

use super::dead_letter::{broker, diagnostics, Dead, Link, Origin, READ_MAX};
use super::inbound::{self, Sender};
use super::Topology;
use crate::store::Store;
use crate::Result;

/// Which dead letters to replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Which {
    All,
    /// By `Dead::id`; the first message of each id.
    Ids(Vec<String>),
}

/// One dead letter asked for, and what its replay did.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub id: String,
    pub message_id: Option<String>,
    /// `replayed`, `failed` (it stays in the queue) or `not-found`.
    pub outcome: &'static str,
    pub detail: String,
}

/// Replays `which`; every message not replayed stays in the queue, in its place.
pub async fn replay(store: &Store, url: &str, t: &Topology, which: &Which) -> Result<Vec<Replayed>> {
    let (link, total) = Link::open(url, t).await?;
    let limit = (total as usize).min(READ_MAX);
    let held = match link.take(t, limit).await {
        Ok(h) => h,
        Err(e) => {
            link.put_back(Vec::new()).await;
            return Err(e);
        }
    };
    let mut out: Vec<Replayed> = Vec::new();
    let mut kept = Vec::new();
    for d in held {
        let dead = Dead::of(&d, t);
        let wanted = match which {
            Which::All => true,
            Which::Ids(ids) => ids.contains(&dead.id) && !out.iter().any(|r| r.id == dead.id),
        };
        if !wanted {
            kept.push(d);
            continue;
        }
        let (replayed, d) = replay_one(store, &link, t, &dead, d).await;
        if let Some(d) = d {
            kept.push(d);
        }
        out.push(replayed);
    }
    link.put_back(kept).await;
    if let Which::Ids(ids) = which {
        let missing: Vec<String> = ids.iter().filter(|id| !out.iter().any(|r| &r.id == *id)).cloned().collect();
        for id in missing {
            let detail = format!("not in the dead-letter queue (read up to {READ_MAX} messages)");
            out.push(Replayed { id, message_id: None, outcome: "not-found", detail });
        }
    }
    Ok(out)
}

/// Replays `dead` and, once done, removes it from the queue; the delivery back
/// when it stays.
async fn replay_one(
    store: &Store,
    link: &Link,
    t: &Topology,
    dead: &Dead,
    d: Delivery,
) -> (Replayed, Option<Delivery>) {
    let answer =
        |outcome, detail| Replayed { id: dead.id.clone(), message_id: dead.message_id.clone(), outcome, detail };
    let done = match &dead.origin {
        Origin::Inbound { user: Some(user) } => process_again(store, user, &d.data).await,
        Origin::Inbound { user: None } => {
            Err("it came without its provider's broker user (user_id): nothing proves who sent it".into())
        }
        Origin::Queue { exchange, routing_key, .. } if *exchange == t.exchange => {
            republish(link, exchange, routing_key, &d).await
        }
        Origin::Queue { exchange, .. } => {
            Err(format!("it died from exchange {exchange:?}, not the gateway's ({}): not replayed", t.exchange))
        }
        Origin::Unknown => Err("nothing says where it came from (no x-death, no x-cupola-outcome)".into()),
    };
    match done {
        Ok(detail) => match d.acker.ack(BasicAckOptions::default()).await {
            Ok(()) => (answer("replayed", detail), None),
            Err(e) => {
                (answer("replayed", format!("{detail}; its removal from the queue failed ({})", broker(e))), None)
            }
        },
        Err(why) => (answer("failed", format!("{why}; it stays in the dead-letter queue")), Some(d)),
    }
}

/// An inbound message processed again as from the provider whose broker user
/// published it.
async fn process_again(store: &Store, user: &str, body: &[u8]) -> std::result::Result<String, String> {
    let bundle: Value = serde_json::from_slice(body).map_err(|e| format!("it is not JSON ({e})"))?;
    match inbound::process(store, &Sender::ProviderCode(user.to_string()), &bundle).await {
        Ok(_) => Ok(format!("processed again as from provider {user}")),
        Err(e) => Err(format!("processed again, refused again: {}", diagnostics(&e.outcome()))),
    }
}

/// Publishes `d` again to `exchange` with `routing_key`, without the records of its
/// death; done when the broker confirms a queue took it.
async fn republish(
    link: &Link,
    exchange: &str,
    routing_key: &str,
    d: &Delivery,
) -> std::result::Result<String, String> {
    let headers = d.properties.headers().clone().unwrap_or_default();
    let kept: std::collections::BTreeMap<_, _> = headers
        .inner()
        .iter()
        .filter(|(k, _)| {
            !["x-death", "x-first-death-", "x-last-death-", "x-cupola-"].iter().any(|p| k.as_str().starts_with(p))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut props = BasicProperties::default().with_delivery_mode(2).with_headers(FieldTable::from(kept));
    if let Some(id) = d.properties.message_id() {
        props = props.with_message_id(id.clone());
    }
    if let Some(ct) = d.properties.content_type() {
        props = props.with_content_type(ct.clone());
    }
    let mandatory = BasicPublishOptions { mandatory: true, ..Default::default() };
    let sent = link.publish.basic_publish(exchange, routing_key, mandatory, &d.data, props).await;
    let confirm = sent.map_err(|e| format!("not published ({e})"))?;
    match confirm.await {
        Ok(Confirmation::Ack(None)) => Ok(format!("published again to {exchange} with routing key {routing_key}")),
        Ok(Confirmation::Ack(Some(r))) => Err(format!(
            "returned by the broker: {} {}, no queue takes routing key {routing_key}",
            r.reply_code, r.reply_text
        )),
        Ok(other) => Err(format!("the broker did not take it ({other:?})")),
        Err(e) => Err(format!("no confirm from the broker ({e})")),
    }
}
