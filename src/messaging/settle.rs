//! What becomes of a published batch once the broker has answered. Published
//! `mandatory`, a message no queue takes (a provider's queue deleted by mistake or by
//! a policy, a broker restored from old definitions) comes back with its confirm: it
//! is not sent. Its row becomes `unroutable` with the broker's reason; the relay
//! declares the topology again, on a channel of its own (a declaration the broker
//! refuses closes that channel, not the publishing one), and publishes it once more.
//! Routed then, it is sent; otherwise it goes again when its backoff ends.

use lapin::message::BasicReturnMessage;
use lapin::options::ConfirmSelectOptions;
use lapin::publisher_confirm::{Confirmation, PublisherConfirm};

use super::relay::{declare, publish, Link};
use crate::metrics::Metrics;
use crate::store::Claimed;

/// A batch's messages by what the broker made of them.
#[derive(Default)]
struct Outcome {
    sent: Vec<i64>,
    /// Returned (no queue took them), with the broker's reason.
    returned: Vec<(Claimed, String)>,
    /// Nacked or unconfirmed: released for the next round.
    failed: Vec<i64>,
}

impl Outcome {
    /// Sorts the batch by the broker's confirms, counting each in `metrics`.
    async fn collect(&mut self, pending: Vec<(Claimed, PublisherConfirm)>, metrics: &Metrics) {
        for (m, confirm) in pending {
            let result = match confirm.await {
                Ok(Confirmation::Ack(None)) => {
                    self.sent.push(m.seq);
                    "ack"
                }
                Ok(Confirmation::Ack(Some(r))) => {
                    let why = reason(&r, &m);
                    self.returned.push((m, why));
                    "returned"
                }
                Ok(other) => {
                    tracing::warn!(?other, seq = m.seq, "the broker did not take a message; it stays in the outbox");
                    self.failed.push(m.seq);
                    "nack"
                }
                Err(e) => {
                    tracing::warn!(error = %e, seq = m.seq, "no confirm");
                    self.failed.push(m.seq);
                    "lost"
                }
            };
            metrics.confirmed(result);
        }
    }
}

/// The broker's reply (`312 NO_ROUTE`) and the routing key no queue took.
fn reason(r: &BasicReturnMessage, m: &Claimed) -> String {
    format!("returned by the broker: {} {}, no queue takes routing key {}", r.reply_code, r.reply_text, m.routing_key)
}

/// Awaits the confirms of a batch claimed with `token` and marks its rows: sent,
/// unroutable (after publishing them once more) or released. Fails when the broker
/// refused some, so that the relay reconnects.
pub(super) async fn settle(
    link: Link,
    token: i64,
    pending: Vec<(Claimed, PublisherConfirm)>,
    failed: Vec<i64>,
) -> anyhow::Result<()> {
    let mut o = Outcome { failed, ..Default::default() };
    o.collect(pending, &link.metrics).await;
    if !o.returned.is_empty() {
        // Marked before publishing again: a crash meanwhile leaves the reason shown.
        let returned: Vec<(i64, String)> = o.returned.iter().map(|(m, why)| (m.seq, why.clone())).collect();
        link.store.mark_unroutable(token, &returned).await?;
        let again = republish(&link, &o.returned).await;
        o.sent.extend(again.sent);
        o.failed.extend(again.failed);
        if !again.returned.is_empty() {
            tracing::warn!(
                exchange = %link.topology.exchange,
                unroutable = again.returned.len(),
                "no queue takes these messages even after declaring the topology again; they are retried with \
                 a backoff (up to a minute): check the providers' queues and bindings on the broker"
            );
        }
    }
    link.store.mark_sent(token, &o.sent).await?;
    link.store.release(token, &o.failed).await?;
    if !o.failed.is_empty() {
        anyhow::bail!("{} messages were not confirmed", o.failed.len());
    }
    Ok(())
}

/// Declares the topology again and publishes `returned` once more on a channel of
/// its own. When the broker refuses the declaration, they all stay returned.
async fn republish(link: &Link, returned: &[(Claimed, String)]) -> Outcome {
    let attempt = async {
        let channel = link.conn.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        declare(&channel, &link.topology).await?;
        let mut pending = Vec::with_capacity(returned.len());
        for (m, _) in returned {
            let published = publish(&channel, &link.topology.exchange, m).await;
            link.metrics.published(published.is_ok());
            pending.push((m.clone(), published?));
        }
        let mut o = Outcome::default();
        o.collect(pending, &link.metrics).await;
        let _ = channel.close(200, "topology declared again").await;
        anyhow::Ok(o)
    };
    match attempt.await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(
                error = %e,
                exchange = %link.topology.exchange,
                "cannot declare the topology again; the returned messages stay unroutable (check the broker's \
                 exchange and queues: one declared by hand with other arguments is refused)"
            );
            Outcome { returned: returned.to_vec(), ..Default::default() }
        }
    }
}
