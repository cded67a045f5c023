//! The websocket endpoint of websocket subscriptions (`{base}/$subscription-ws`).
//! It takes no bearer token: the client's first message, `bind-with-token
//! <token>`, authenticates it (`crate::notify::bind`). The answer is the
//! subscription's handshake Bundle, or an OperationOutcome and the socket closed;
//! then the socket writes what the dispatcher hands it until either side closes.

use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;

use super::AppState;
use crate::notify::{Binding, WRITE_WAIT};
use crate::Error;

/// How long a socket may stay open without binding.
const BIND_WAIT: Duration = Duration::from_secs(30);

pub async fn upgrade(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve(s, socket))
}

async fn serve(s: AppState, mut socket: WebSocket) {
    if let Some(binding) = bind(&s, &mut socket).await {
        pump(socket, binding).await;
    }
}

/// The first text message, if one comes (pings and pongs aside).
async fn first_text(socket: &mut WebSocket) -> Option<String> {
    while let Some(Ok(m)) = socket.recv().await {
        match m {
            Message::Text(t) => return Some(t.to_string()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
    None
}

/// Waits for `bind-with-token <token>` (the R5 form `bind-with-token: <token>`
/// too) and answers the handshake, or the refusal before closing.
async fn bind(s: &AppState, socket: &mut WebSocket) -> Option<Binding> {
    let asked = timeout(BIND_WAIT, first_text(socket)).await.ok().flatten();
    let token = asked.as_deref().and_then(|m| m.trim().strip_prefix("bind-with-token"));
    let bound = match token.map(|t| t.trim_start_matches(':').trim()) {
        Some(t) if !t.is_empty() => crate::notify::bind(&s.store, &s.sockets, &s.base, t).await,
        _ => Err(Error::invalid("required", None, "the first message is `bind-with-token <token>`")),
    };
    match bound {
        Ok((handshake, binding)) => {
            let sent = timeout(WRITE_WAIT, socket.send(Message::Text(handshake.to_string().into()))).await;
            matches!(sent, Ok(Ok(()))).then_some(binding)
        }
        Err(e) => {
            refuse(socket, &e).await;
            None
        }
    }
}

/// Answers `e`'s OperationOutcome, then closes.
async fn refuse(socket: &mut WebSocket, e: &Error) {
    let code = match e {
        Error::Internal(cause) => {
            tracing::warn!(error = %cause, "binding a websocket failed");
            close_code::ERROR
        }
        _ => close_code::POLICY,
    };
    let _ = timeout(WRITE_WAIT, async {
        socket.send(Message::Text(e.outcome().to_string().into())).await?;
        socket.send(Message::Close(Some(CloseFrame { code, reason: "binding refused".into() }))).await
    })
    .await;
}

/// Writes the subscription's notifications, each acknowledged once written,
/// until the client closes, a write takes too long, or the dispatcher drops the
/// socket for not keeping up. The binding goes with it.
async fn pump(socket: WebSocket, mut binding: Binding) {
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            frame = binding.frames.recv() => {
                let Some(frame) = frame else { break };
                match timeout(WRITE_WAIT, sink.send(Message::Text((*frame.text).into()))).await {
                    Ok(Ok(())) => {
                        let _ = frame.written.send(());
                    }
                    _ => break,
                }
            }
            // Pings are answered beneath; other messages mean nothing here.
            incoming = stream.next() => if !matches!(incoming, Some(Ok(m)) if !matches!(m, Message::Close(_))) {
                break;
            },
        }
    }
    tracing::debug!(subscription = binding.subscription, "websocket unbound");
    // Unbound before the close is answered: a client that saw its socket closed
    // knows the next events wait for its next socket.
    drop(binding);
    let _ = timeout(Duration::from_secs(1), sink.close()).await;
}
