//! The inbound queue: provider systems publish their messages to the inbound
//! exchange, each as its own broker user; RabbitMQ checks that a message's
//! `user_id` is the user that published it, and the gateway takes that user as the
//! provider code (see `inbound`). A message processed (or already processed) is
//! acked; one that is malformed, unauthorised or not understood goes to the
//! dead-letter exchange with the OperationOutcome saying why (header
//! `x-cupola-outcome`) and changes nothing; a failure of the gateway itself is
//! retried once, then dead-lettered.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};

use super::inbound::{self, Sender};
use super::Topology;
use crate::metrics::Metrics;
use crate::store::Store;

/// The header of a dead-lettered inbound message saying why it was refused (an
/// OperationOutcome), and the one naming the broker user that published it.
pub const OUTCOME_HEADER: &str = "x-cupola-outcome";
pub const USER_HEADER: &str = "x-cupola-user";

/// Consumes the inbound queue until the channel fails, counting each message's
/// outcome in `metrics`.
pub async fn consume(store: Store, channel: Channel, t: Topology, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    let mut consumer = channel
        .basic_consume(&t.inbound_queue(), "cupola-inbound", BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let handled = handle(&store, &delivery).await;
        metrics.inbound("queue", handled.as_ref().err().map(|e| e.status().as_u16()));
        match handled {
            Ok(()) => delivery.acker.ack(BasicAckOptions::default()).await?,
            Err(e) if e.status().is_server_error() && !delivery.redelivered => {
                tracing::warn!(error = %e, "inbound message failed; it will be tried again");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                delivery.acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await?
            }
            Err(e) => {
                tracing::warn!(error = %e, "inbound message refused: to the dead-letter queue");
                dead_letter(&channel, &t, &delivery, &e).await?;
                delivery.acker.ack(BasicAckOptions::default()).await?
            }
        }
    }
    Ok(())
}

async fn handle(store: &Store, d: &Delivery) -> crate::Result<()> {
    let Some(user) = d.properties.user_id().as_ref().map(|u| u.to_string()) else {
        return Err(crate::Error::Forbidden(
            "an inbound message carries its provider's broker user as user_id (RabbitMQ checks it)".into(),
        ));
    };
    let bundle: serde_json::Value = serde_json::from_slice(&d.data)
        .map_err(|e| crate::Error::invalid("structure", None, format!("the message is not JSON: {e}")))?;
    inbound::process(store, &Sender::ProviderCode(user), &bundle).await.map(|_| ())
}

/// The refused message, as it came, with why (an OperationOutcome) in a header,
/// and the broker user that published it (RabbitMQ proved it: `$dead-letter-replay`
/// processes it again as from that provider; the gateway could not republish it
/// under another user's `user_id`).
async fn dead_letter(channel: &Channel, t: &Topology, d: &Delivery, e: &crate::Error) -> anyhow::Result<()> {
    let mut headers = d.properties.headers().clone().unwrap_or_default();
    headers.insert(ShortString::from(OUTCOME_HEADER), AMQPValue::LongString(e.outcome().to_string().into()));
    if let Some(user) = d.properties.user_id() {
        headers.insert(ShortString::from(USER_HEADER), AMQPValue::LongString(user.to_string().into()));
    }
    let mut props = BasicProperties::default().with_headers(headers).with_delivery_mode(2);
    if let Some(id) = d.properties.message_id() {
        props = props.with_message_id(id.clone());
    }
    if let Some(ct) = d.properties.content_type() {
        props = props.with_content_type(ct.clone());
    }
    channel.basic_publish(&t.dead_letter_exchange(), "", BasicPublishOptions::default(), &d.data, props).await?.await?;
    Ok(())
}
