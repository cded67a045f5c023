//! `$get-ws-binding-token` and the socket's `bind-with-token`: a websocket carries
//! no bearer token, so the subscription's owner asks for a binding token over the
//! authenticated API and the socket presents it.
//!
//! A token is random (256 bits), for one subscription, and binds one socket once:
//! it is taken when presented, valid or not, and lapses unused after
//! `--subscription-ws-token-secs` (five minutes).
//! It is kept hashed in the database, so that any gateway process may check it.

use base64::Engine;
use ring::rand::SecureRandom;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::notification::events_bundle;
use super::query::visible;
use super::websocket::{Binding, Sockets};
use crate::access::Access;
use crate::error::Issue;
use crate::fhir::meta::instant;
use crate::store::{now_micros, Store, SubscriptionState};
use crate::{Error, Result};

/// The path of the websocket endpoint, under the FHIR base.
pub const WS_PATH: &str = "/$subscription-ws";

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The websocket endpoint's URL: the FHIR base with `ws`/`wss` for `http`/`https`.
fn websocket_url(fhir_base: &str) -> String {
    let url = match fhir_base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => fhir_base.to_string(),
    };
    format!("{url}{WS_PATH}")
}

/// `$get-ws-binding-token` on subscription `id`, which `access` must see (its owner
/// or an administrator) and which must be a websocket one; valid `valid_secs`.
pub async fn binding_token(
    store: &Store,
    access: &Access,
    fhir_base: &str,
    id: &str,
    valid_secs: u64,
) -> Result<Value> {
    let s = visible(store, access, id).await?;
    if s.channel != "websocket" {
        return Err(Error::Unprocessable(vec![Issue::error(
            "business-rule",
            Some("Subscription.channel.type".into()),
            format!("Subscription/{id} is a {} subscription: binding tokens are for websocket ones", s.channel),
        )]));
    }
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Internal(anyhow::anyhow!("no randomness for a binding token")))?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let (now, valid_us) = (now_micros(), i64::try_from(valid_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX));
    let expires_us = now.saturating_add(valid_us);
    store.add_binding_token(&hash(&token), id, now, expires_us).await?;
    let parameter = vec![
        json!({"name": "token", "valueString": token}),
        json!({"name": "expiration", "valueDateTime": instant(expires_us)}),
        json!({"name": "subscription", "valueString": format!("{fhir_base}/Subscription/{id}")}),
        json!({"name": "websocket-url", "valueUrl": websocket_url(fhir_base)}),
    ];
    Ok(json!({"resourceType": "Parameters", "parameter": parameter}))
}

fn refused(text: &str) -> Error {
    Error::Unauthorized("invalid_token", format!("{text}: ask $get-ws-binding-token for another"))
}

/// A socket's `bind-with-token <token>`: the subscription's handshake Bundle and
/// the socket's binding. The dispatcher is woken: events that waited go out now.
pub async fn bind(store: &Store, sockets: &Sockets, fhir_base: &str, token: &str) -> Result<(Value, Binding)> {
    let Some((id, expires_us)) = store.take_binding_token(&hash(token.trim())).await? else {
        return Err(refused("this binding token is unknown or was used"));
    };
    if expires_us < now_micros() {
        return Err(refused("this binding token has expired"));
    }
    let s: SubscriptionState = match store.subscription_state(&id).await? {
        Some(s) if s.channel == "websocket" && s.status != "off" => s,
        _ => return Err(Error::NotFound(format!("Subscription/{id} is no longer a live websocket subscription"))),
    };
    let handshake = events_bundle(fhir_base, &s, "handshake", &[]);
    let binding = sockets.bind(&id);
    store.notify_wake().notify_one();
    Ok((handshake, binding))
}
