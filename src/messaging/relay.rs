//! The relay: publishes the outbox to RabbitMQ with publisher confirms. It claims
//! pending rows (a lease by the database's clock, `SKIP LOCKED` on PostgreSQL, so
//! that several gateways share the work), publishes each as a persistent,
//! `mandatory` message (message id = the MessageHeader id, content type
//! `application/fhir+json`) and marks a row sent only after the broker's ack of a
//! routed message (see `settle` for one the broker returns). A nack, a lost
//! connection or a crash leaves the row pending: it goes again, with the same
//! message id. It wakes when a transaction that wrote the outbox commits, and polls
//! in case another gateway wrote it.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::PublisherConfirm;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Notify;

use super::Topology;
use crate::metrics::Metrics;
use crate::store::{Claimed, Lease, Store};

/// Rows claimed at once, batches unconfirmed at once, and how long a claim holds.
const BATCH: i64 = 250;
const WINDOW: usize = 4;
const LEASE_US: i64 = 30_000_000;
/// How often an idle relay looks for rows other gateways wrote.
const POLL: Duration = Duration::from_millis(200);

/// Connects, declares the topology, then publishes until the connection fails;
/// reconnects with a growing pause (up to 5 s). Runs for the gateway's life,
/// counting what it publishes and what the broker confirms in `metrics`.
pub async fn run_forever(store: Store, url: String, topology: Arc<Topology>, wake: Arc<Notify>, metrics: Arc<Metrics>) {
    let mut pause = Duration::from_millis(100);
    loop {
        match connect(&url, &topology).await {
            Ok((conn, channel)) => {
                let conn = Arc::new(conn);
                tracing::info!(exchange = %topology.exchange, "relay connected to the broker");
                pause = Duration::from_millis(100);
                // The inbound queue is consumed on a channel of its own.
                let inbound = match conn.create_channel().await {
                    Ok(ch) => Some(tokio::spawn(super::consumer::consume(
                        store.clone(),
                        ch,
                        (*topology).clone(),
                        metrics.clone(),
                    ))),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open the inbound channel");
                        None
                    }
                };
                let link = Link {
                    store: store.clone(),
                    conn: conn.clone(),
                    channel,
                    topology: topology.clone(),
                    metrics: metrics.clone(),
                };
                if let Err(e) = pump(&link, &wake).await {
                    tracing::warn!(error = %e, "relay lost the broker; the outbox keeps the messages");
                }
                if let Some(i) = inbound {
                    i.abort();
                }
                let _ = conn.close(0, "relay restarting").await;
            }
            Err(e) => {
                tracing::warn!(error = %e, url = %redacted(&url), "cannot reach the broker; messages wait in the outbox (check --amqp-url)");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// The URL without its password, for logs.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// A connection and a confirming channel with the topology declared.
pub async fn connect(url: &str, topology: &Topology) -> anyhow::Result<(Connection, Channel)> {
    let conn = tokio::time::timeout(Duration::from_secs(10), Connection::connect(url, ConnectionProperties::default()))
        .await
        .map_err(|_| anyhow::anyhow!("no answer from the broker in 10 s"))??;
    let channel = conn.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    declare(&channel, topology).await?;
    Ok((conn, channel))
}

/// The topic exchange, the dead-letter exchange and its queue, and one durable
/// queue per provider bound to its routing keys (`<provider>.#`).
pub async fn declare(channel: &Channel, t: &Topology) -> anyhow::Result<()> {
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel.exchange_declare(&t.exchange, ExchangeKind::Topic, durable, FieldTable::default()).await?;
    declare_dead_letter(channel, t).await?;
    let queue = QueueDeclareOptions { durable: true, ..Default::default() };
    let mut dead = FieldTable::default();
    dead.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(t.dead_letter_exchange().into()));
    channel.exchange_declare(&t.inbound_exchange(), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
    channel.queue_declare(&t.inbound_queue(), queue, dead).await?;
    channel
        .queue_bind(&t.inbound_queue(), &t.inbound_exchange(), "", QueueBindOptions::default(), FieldTable::default())
        .await?;
    for provider in &t.providers {
        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(t.dead_letter_exchange().into()));
        let name = t.provider_queue(provider);
        channel.queue_declare(&name, queue, args).await?;
        channel
            .queue_bind(
                &name,
                &t.exchange,
                &format!("{provider}.#"),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// The dead-letter exchange and its queue; the messages the queue holds (ready,
/// not those another reader holds unacknowledged).
pub async fn declare_dead_letter(channel: &Channel, t: &Topology) -> lapin::Result<u32> {
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel.exchange_declare(&t.dead_letter_exchange(), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
    let queue = QueueDeclareOptions { durable: true, ..Default::default() };
    let declared = channel.queue_declare(&t.dead_letter_queue(), queue, FieldTable::default()).await?;
    let (q, x, none) = (t.dead_letter_queue(), t.dead_letter_exchange(), FieldTable::default());
    channel.queue_bind(&q, &x, "", QueueBindOptions::default(), none).await?;
    Ok(declared.message_count())
}

/// What publishing needs: the store, the connection (a channel of its own declares
/// the topology again when the broker returns a message), the confirming channel,
/// the topology, and the metrics it counts in.
#[derive(Clone)]
pub(super) struct Link {
    pub store: Store,
    pub conn: Arc<Connection>,
    pub channel: Channel,
    pub topology: Arc<Topology>,
    pub metrics: Arc<Metrics>,
}

/// Publishes `m` persistent and `mandatory`: a message no queue takes (a provider's
/// queue deleted, a binding gone) comes back with its confirm instead of being
/// dropped by the broker and confirmed as if delivered.
pub(super) async fn publish(channel: &Channel, exchange: &str, m: &Claimed) -> lapin::Result<PublisherConfirm> {
    let props = BasicProperties::default()
        .with_message_id(m.message_id.clone().into())
        .with_content_type("application/fhir+json".into())
        .with_delivery_mode(2);
    let mandatory = BasicPublishOptions { mandatory: true, ..Default::default() };
    channel.basic_publish(exchange, &m.routing_key, mandatory, m.body.as_bytes(), props).await
}

/// Publishes claimed batches until the channel fails. The next batch is claimed
/// while one is published, and a batch's confirms are awaited (and its rows marked)
/// while the next batches are claimed and published:
/// up to [`WINDOW`] batches unconfirmed, as a publisher keeps a window in flight.
async fn pump(link: &Link, wake: &Notify) -> anyhow::Result<()> {
    let mut next = None;
    let r = publish_claimed(link, wake, &mut next).await;
    // A batch claimed ahead and never published goes back at once, not when its
    // lease runs out.
    if let Some(n) = next.take() {
        if let Ok(Ok(lease)) = n.await {
            let seqs: Vec<_> = lease.rows.iter().map(|m| m.seq).collect();
            if let Err(e) = link.store.release(lease.token, &seqs).await {
                tracing::warn!(error = %e, "claimed messages wait for their lease to end");
            }
        }
    }
    r
}

type Claim = tokio::task::JoinHandle<crate::Result<Lease>>;

fn claim(store: &Store) -> Claim {
    let store = store.clone();
    tokio::spawn(async move { store.claim(BATCH, LEASE_US).await })
}

async fn publish_claimed(link: &Link, wake: &Notify, next: &mut Option<Claim>) -> anyhow::Result<()> {
    let mut unconfirmed: std::collections::VecDeque<tokio::task::JoinHandle<anyhow::Result<()>>> =
        std::collections::VecDeque::new();
    loop {
        let lease = next.take().unwrap_or_else(|| claim(&link.store)).await??;
        if lease.rows.is_empty() {
            if let Some(p) = unconfirmed.pop_front() {
                p.await??;
            } else {
                let _ = tokio::time::timeout(POLL, wake.notified()).await;
            }
            continue;
        }
        // The next batch is claimed while this one is published.
        *next = Some(claim(&link.store));
        let mut pending = Vec::with_capacity(lease.rows.len());
        let mut failed = Vec::new();
        for m in lease.rows {
            let published = publish(&link.channel, &link.topology.exchange, &m).await;
            link.metrics.published(published.is_ok());
            match published {
                Ok(confirm) => pending.push((m, confirm)),
                Err(e) => {
                    failed.push(m.seq);
                    tracing::warn!(error = %e, "publish failed");
                }
            }
        }
        while unconfirmed.len() >= WINDOW {
            if let Some(p) = unconfirmed.pop_front() {
                p.await??;
            }
        }
        unconfirmed.push_back(tokio::spawn(super::settle::settle(link.clone(), lease.token, pending, failed)));
    }
}
