//! The providers' systems: one consumer per provider queue on the replay's own
//! exchange, acknowledging every message `ok` as `cupola provider-sim` does (its
//! `answers`), sent over HTTP (`$process-message`) with the provider's token — so the
//! replay needs no broker user per provider. The patients' fates are the plan's
//! (no-shows), not the simulator's. The exchange and its queues are removed at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use reqwest::Method;

use super::api::{Api, Who, BASE};

/// The running simulators, and the broker objects to remove.
pub struct Sim {
    conn: Connection,
    exchange: String,
    providers: Vec<String>,
    pub answered: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Sim {
    /// Consumers of `providers`' queues on `exchange` (declared by the gateway).
    pub async fn start(api: Arc<Api>, amqp_url: &str, exchange: &str, providers: &[String]) -> anyhow::Result<Sim> {
        let conn = Connection::connect(amqp_url, ConnectionProperties::default())
            .await
            .with_context(|| format!("the provider simulator cannot reach the broker at {amqp_url} (--amqp-url)"))?;
        let answered = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for code in providers {
            let consumer = consumer(&conn, exchange, code).await?;
            let (api, code, answered) = (api.clone(), code.clone(), answered.clone());
            tasks.push(tokio::spawn(async move { consume(api, code, consumer, answered).await }));
        }
        let (exchange, providers) = (exchange.to_string(), providers.to_vec());
        Ok(Sim { conn, exchange, providers, answered, tasks })
    }

    /// The consumers stopped, and the exchange's queues and exchanges deleted.
    pub async fn stop(self) {
        tracing::info!(answered = self.answered.load(Ordering::Relaxed), "the providers' simulators stop");
        for t in &self.tasks {
            t.abort();
        }
        remove_objects(&self.conn, &self.exchange, &self.providers).await;
        let _ = self.conn.close(0, "replay done").await;
    }
}

/// The queues and exchanges a gateway declares for `exchange`, removed.
async fn remove_objects(conn: &Connection, x: &str, providers: &[String]) {
    let Ok(ch) = conn.create_channel().await else { return };
    let queues = providers.iter().map(|p| format!("{x}.provider.{p}"));
    for q in queues.chain([format!("{x}.dead-letter"), format!("{x}.inbound")]) {
        let _ = ch.queue_delete(&q, QueueDeleteOptions::default()).await;
    }
    for e in [x.to_string(), format!("{x}.dlx"), format!("{x}.inbound")] {
        let _ = ch.exchange_delete(&e, ExchangeDeleteOptions::default()).await;
    }
}

/// The broker objects of `exchange` removed once the gateway that declares them has
/// stopped (a running gateway declares them again when it reconnects).
pub async fn remove_broker_objects(amqp_url: &str, exchange: &str, providers: &[String]) -> anyhow::Result<()> {
    let conn = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .with_context(|| format!("cannot reach the broker at {amqp_url} to remove {exchange}"))?;
    remove_objects(&conn, exchange, providers).await;
    let _ = conn.close(0, "replay objects removed").await;
    Ok(())
}

/// A consumer of `code`'s queue on `exchange`, once the gateway has declared it (its
/// relay does so when it connects, which may be after it answers): tried for 30 s.
async fn consumer(conn: &Connection, exchange: &str, code: &str) -> anyhow::Result<lapin::Consumer> {
    let queue = format!("{exchange}.provider.{code}");
    let mut attempts = 0;
    loop {
        // A refused consume closes its channel: a new one each time.
        let channel = conn.create_channel().await?;
        channel.basic_qos(16, BasicQosOptions::default()).await?;
        let tag = format!("replay-sim-{code}");
        match channel.basic_consume(&queue, &tag, BasicConsumeOptions::default(), FieldTable::default()).await {
            Ok(c) => return Ok(c),
            Err(_) if attempts < 60 => attempts += 1,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("consuming {queue}: did the gateway declare it (--amqp-exchange)?"))
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Each message of one provider's queue acknowledged `ok` through the API, a few at once.
async fn consume(api: Arc<Api>, code: String, consumer: lapin::Consumer, answered: Arc<AtomicU64>) {
    let who = Who::Provider(code.clone());
    let args = cupola::messaging::cli::SimArgs {
        provider: code.clone(),
        amqp_url: String::new(),
        exchange: String::new(),
        arrive: 1.0,
        fulfil: 1.0,
        count: None,
    };
    let (api, who, args, code, answered) = (&api, &who, &args, &code, &answered);
    consumer
        .for_each_concurrent(2, |delivery| async move {
            let Ok(delivery) = delivery else { return };
            let message: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap_or_default();
            // The acknowledgement only: the first of the simulator's answers.
            if let Some(ack) = cupola::messaging::cli::answers(BASE, code, &message, args).into_iter().next() {
                match api.call("ack", who, Method::POST, "$process-message", Some(&ack)).await {
                    Ok((200, _)) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((status, body)) => tracing::warn!(code, status, %body, "an acknowledgement was refused"),
                    Err(e) => tracing::warn!(code, error = %e, "an acknowledgement was not sent"),
                }
            }
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        })
        .await;
}
