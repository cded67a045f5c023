//! Websocket channels: the sockets bound in this process, by subscription. The
//! dispatcher hands a bound subscription's notifications to its sockets and
//! counts them delivered once one socket has written them; while none is bound
//! here its events wait (no failure counted: the client is away, not failing).
//!
//! Each socket has a small queue of its own: a client that does not keep up has
//! its socket dropped rather than holding the dispatcher or another socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// Notifications queued for one socket at most; one more drops the socket.
const QUEUE: usize = 8;
/// How long the dispatcher waits for a socket to write a notification.
pub const WRITE_WAIT: Duration = Duration::from_secs(10);

/// A notification on its way to one socket, and the word that it was written.
pub struct Frame {
    pub text: Arc<str>,
    pub written: oneshot::Sender<()>,
}

type Bound = HashMap<String, Vec<(u64, mpsc::Sender<Frame>)>>;

/// The sockets bound in this process, by subscription id.
#[derive(Clone, Default)]
pub struct Sockets {
    bound: Arc<Mutex<Bound>>,
    next: Arc<AtomicU64>,
}

/// One socket's hold on its subscription: its queue of notifications. Dropped
/// (the socket closed), the socket is unbound.
pub struct Binding {
    pub subscription: String,
    pub frames: mpsc::Receiver<Frame>,
    key: u64,
    sockets: Sockets,
}

impl Drop for Binding {
    fn drop(&mut self) {
        self.sockets.unbind(&self.subscription, self.key);
    }
}

impl Sockets {
    /// Binds a new socket to subscription `id`.
    pub fn bind(&self, id: &str) -> Binding {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, frames) = mpsc::channel(QUEUE);
        if let Ok(mut b) = self.bound.lock() {
            b.entry(id.to_string()).or_default().push((key, tx));
        }
        Binding { subscription: id.to_string(), frames, key, sockets: self.clone() }
    }

    /// Forgets socket `key` of `id`: its queue closes, and its socket with it.
    fn unbind(&self, id: &str, key: u64) {
        if let Ok(mut b) = self.bound.lock() {
            if let Some(list) = b.get_mut(id) {
                list.retain(|(k, _)| *k != key);
                if list.is_empty() {
                    b.remove(id);
                }
            }
        }
    }

    /// The subscriptions with a socket bound in this process.
    pub fn ids(&self) -> Vec<String> {
        self.bound.lock().map(|b| b.keys().cloned().collect()).unwrap_or_default()
    }

    /// Hands `bundle` to each socket of `id`; `Ok` once one of them wrote it. A
    /// socket whose queue is full or closed is dropped.
    pub async fn deliver(&self, id: &str, bundle: &Value) -> Result<(), String> {
        let text: Arc<str> = bundle.to_string().into();
        let sockets = self.bound.lock().map(|b| b.get(id).cloned().unwrap_or_default()).unwrap_or_default();
        let mut written = Vec::with_capacity(sockets.len());
        for (key, tx) in sockets {
            let (done, wait) = oneshot::channel();
            match tx.try_send(Frame { text: text.clone(), written: done }) {
                Ok(()) => written.push(wait),
                Err(e) => {
                    tracing::info!(subscription = id, reason = %e, "a websocket that does not keep up is dropped");
                    self.unbind(id, key);
                }
            }
        }
        if written.is_empty() {
            return Err("no websocket is bound to it in this process".into());
        }
        match tokio::time::timeout(WRITE_WAIT, futures_util::future::select_ok(written)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err("its websockets closed before writing".into()),
            Err(_) => Err("its websockets did not write in time".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Sockets, QUEUE};

    /// A socket whose queue is full is dropped at the next notification, at once;
    /// another subscription's socket goes on being served.
    #[tokio::test]
    async fn a_socket_that_does_not_keep_up_is_dropped_and_holds_no_other() {
        let sockets = Sockets::default();
        let slow = sockets.bind("slow");
        let mut quick = sockets.bind("quick");
        let waiting: Vec<_> = (0..QUEUE)
            .map(|_| {
                let s = sockets.clone();
                tokio::spawn(async move { s.deliver("slow", &json!({})).await })
            })
            .collect();
        while slow.frames.len() < QUEUE {
            tokio::task::yield_now().await;
        }
        assert!(sockets.deliver("slow", &json!({})).await.is_err(), "the full queue drops the socket");
        assert_eq!(sockets.ids(), ["quick"]);
        let reader = tokio::spawn(async move {
            let frame = quick.frames.recv().await.expect("a notification");
            frame.written.send(()).is_ok()
        });
        assert_eq!(sockets.deliver("quick", &json!({"n": 1})).await, Ok(()));
        assert!(reader.await.unwrap_or(false));
        drop(slow);
        for w in waiting {
            assert!(w.await.map(|r| r.is_err()).unwrap_or(false), "never written: not delivered");
        }
    }
}
