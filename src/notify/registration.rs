//! A `Subscription` written by a client: checked (a topic of cupola's or a criteria
//! search on a topic's resource type, filters the topic takes, a channel cupola
//! delivers on, an endpoint it may call), made `active`, its `channel.header` kept
//! out of the resource (never returned), and recorded for matching.

use serde_json::Value;

use super::topics::{self, Topic};
use crate::access::Access;
use crate::error::Issue;
use crate::store::{Filter, FilterValue, Hooked, Owner, Pending, Registration, Store, Tx, Verdict, WriteHook};
use crate::{Error, Result};

const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition";

/// The hook on `Subscription` writes.
pub(super) struct Subscriptions {
    pub allow_insecure: bool,
}

impl WriteHook for Subscriptions {
    fn before<'a>(&'a self, store: &'a Store, tx: &'a mut Tx, w: Pending<'a>) -> Hooked<'a> {
        Box::pin(async move {
            match w.new {
                Some(new) => {
                    let owner = owner(store, w.access, w.id, w.creating).await?;
                    // The dispatcher (the gateway) records `error` and `active`.
                    let r = self.read(store, w.id, owner, new, w.access.is_unrestricted())?;
                    store.register_subscription(tx, &r).await?;
                }
                None => store.end_subscription(tx, w.id).await?,
            }
            Ok(Verdict::Proceed)
        })
    }
}

fn bad(element: &str, text: impl Into<String>) -> Error {
    Error::Unprocessable(vec![Issue::error("value", Some(format!("Subscription.{element}")), text)])
}

/// Who the subscription belongs to: its creator (an administrator changing one
/// does not take it over).
async fn owner(store: &Store, access: &Access, id: &str, creating: bool) -> Result<Owner> {
    if !creating {
        if let Some(s) = store.subscription_state(id).await? {
            return Ok(s.owner);
        }
    }
    let actor = access.actor();
    Ok(Owner {
        sub: actor.map_or_else(|| "gateway".to_string(), |a| a.sub.clone()),
        role: actor.map_or("admin", |a| a.role.as_str()).to_string(),
        org: actor.and_then(|a| a.org.clone()),
        patient: access.patient().map(str::to_string),
        channel: actor.and_then(|a| a.channel.clone()),
        scopes: access.scopes_text().unwrap_or_else(|| "system/*.cruds".into()),
    })
}

impl Subscriptions {
    /// `s` checked and recorded as `id`'s registration; `s` loses its headers and
    /// is `active` (or stays `off`).
    fn read(&self, store: &Store, id: &str, owner: Owner, s: &mut Value, gateway: bool) -> Result<Registration> {
        let base = store.settings().base.clone();
        let criteria = s.get("criteria").and_then(Value::as_str).unwrap_or_default().to_string();
        let (topic, res_type, mut queries) = match topics::by_url(&base, &criteria) {
            Some(t) => (criteria.clone(), t.res_type.to_string(), filter_criteria(s, t.res_type)?),
            None => criteria_search(&criteria)?,
        };
        let topic_def = topics::by_url(&base, &topic);
        let mut filters = Vec::new();
        for q in queries.drain(..) {
            filters.extend(parse_filters(store, &res_type, topic_def, &q)?);
        }
        let channel = s.get("channel").cloned().unwrap_or(Value::Null);
        let kind = channel.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
        let endpoint = self.endpoint(&kind, &channel)?;
        let headers = headers(&channel)?;
        let status = match s.get("status").and_then(Value::as_str) {
            Some("off") => "off",
            Some("error") if gateway => "error",
            _ => "active",
        };
        strip(s, status);
        Ok(Registration {
            id: id.to_string(),
            owner,
            topic: topic_def.map_or_else(|| "criteria".to_string(), |_| topic),
            res_type,
            status: status.into(),
            channel: kind,
            endpoint,
            payload: payload(&channel)?,
            headers,
            heartbeat_secs: heartbeat(&channel),
            filters,
        })
    }

    /// The endpoint cupola calls: a rest-hook's, checked; none for a websocket
    /// (the client connects, with a binding token: see `binding`).
    fn endpoint(&self, kind: &str, channel: &Value) -> Result<Option<String>> {
        match kind {
            "rest-hook" => {
                let endpoint = channel.get("endpoint").and_then(Value::as_str).map(str::to_string);
                super::dispatch::check_endpoint(endpoint.as_deref(), self.allow_insecure)
                    .map_err(|e| bad("channel.endpoint", e))?;
                Ok(endpoint)
            }
            "websocket" => Ok(None),
            other => Err(bad("channel.type", format!("channel {other:?}: cupola delivers on rest-hook and websocket"))),
        }
    }
}

/// The backport's filter criteria (`Appointment?patient=…`), each a query on the
/// topic's resource type `res_type`.
fn filter_criteria(s: &Value, res_type: &str) -> Result<Vec<String>> {
    let exts = s.pointer("/_criteria/extension").and_then(Value::as_array).cloned().unwrap_or_default();
    let url = format!("{BACKPORT}/backport-filter-criteria");
    let mut out = Vec::new();
    for q in exts.iter().filter(|e| e.get("url").and_then(Value::as_str) == Some(&url)) {
        let q = q.get("valueString").and_then(Value::as_str).unwrap_or_default();
        match q.split_once('?') {
            Some((t, query)) if t == res_type || t.is_empty() => out.push(query.to_string()),
            Some((t, _)) => {
                return Err(bad("criteria", format!("the topic is about {res_type}: a filter on {t} matches nothing")))
            }
            None => out.push(q.to_string()),
        }
    }
    Ok(out)
}

/// An R4 criteria subscription: `Type?query` on a topic's resource type.
fn criteria_search(criteria: &str) -> Result<(String, String, Vec<String>)> {
    let (res_type, query) = criteria.split_once('?').unwrap_or((criteria, ""));
    if !topics::TOPICS.iter().any(|t| t.res_type == res_type) {
        let types: Vec<&str> = topics::TOPICS.iter().map(|t| t.res_type).collect();
        return Err(bad(
            "criteria",
            format!(
                "criteria {criteria:?}: a topic's canonical URL (…/SubscriptionTopic/…, see the CapabilityStatement) \
                 or a search on {}",
                types.join(", ")
            ),
        ));
    }
    Ok(("criteria".into(), res_type.to_string(), vec![query.to_string()]))
}

/// A query's filters, each a parameter `topic` takes (any token, reference or
/// string parameter of the type for a criteria subscription).
fn parse_filters(store: &Store, res_type: &str, topic: Option<&Topic>, query: &str) -> Result<Vec<Filter>> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, values) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent(name);
        if let Some(t) = topic {
            if !t.filters.iter().any(|(n, _)| *n == name) {
                let names: Vec<&str> = t.filters.iter().map(|(n, _)| *n).collect();
                return Err(bad("criteria", format!("topic {} filters by {}, not {name}", t.code, names.join(", "))));
            }
        }
        for value in values.split(',').map(percent).filter(|v| !v.is_empty()) {
            out.extend(filter(store, res_type, &name, &value)?);
        }
    }
    Ok(out)
}

fn percent(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// The filter rows of `name=value` on `res_type`.
fn filter(store: &Store, res_type: &str, name: &str, value: &str) -> Result<Vec<Filter>> {
    let one = |param: &str, value: FilterValue| Filter { name: name.into(), param: param.into(), value };
    match name {
        "_id" => return Ok(vec![one("_id", FilterValue::Id(value.into()))]),
        "open-to" if res_type == "Slot" => return Ok(vec![one("open-to", FilterValue::OpenTo(value.into()))]),
        _ => {}
    }
    let kind = store.registry().params_of(res_type).into_iter().find(|p| p.code == name).map(|p| p.kind);
    match kind.as_deref() {
        Some("token") => {
            let (system, code) = match value.split_once('|') {
                Some((s, c)) => ((!s.is_empty()).then(|| s.to_string()), c.to_string()),
                None => (None, value.to_string()),
            };
            Ok(vec![one(name, FilterValue::Token { system, code })])
        }
        Some("string") => Ok(vec![one(name, FilterValue::Text(value.into()))]),
        Some("reference") => reference(store, res_type, name, value),
        Some(other) => {
            Err(bad("criteria", format!("{name} is a {other} parameter: filter by token, reference or string")))
        }
        None => Err(bad("criteria", format!("{res_type} has no search parameter {name}"))),
    }
}

/// A reference filter: `Type/id` (or a URL ending so); a narrowing parameter
/// (`patient`: `actor` to a Patient) is matched in the rows it narrows.
fn reference(store: &Store, res_type: &str, name: &str, value: &str) -> Result<Vec<Filter>> {
    let parts: Vec<&str> = value.trim_end_matches('/').rsplitn(2, '/').collect();
    let (id, typed) = match parts.as_slice() {
        [id, rest] => (id.to_string(), rest.rsplit('/').next().map(str::to_string)),
        [id] => (id.to_string(), None),
        _ => (String::new(), None),
    };
    let narrowing = store.registry().narrowing(res_type, name);
    let (params, target_type) = match (narrowing, typed) {
        (Some((from, target)), _) => (from, target),
        (None, Some(t)) => (vec![name.to_string()], t),
        (None, None) => return Err(bad("criteria", format!("{name}={value}: write the reference as Type/id"))),
    };
    Ok(params
        .into_iter()
        .map(|param| Filter {
            name: name.into(),
            param,
            value: FilterValue::Reference { target_type: target_type.clone(), target_id: id.clone() },
        })
        .collect())
}

fn headers(channel: &Value) -> Result<Vec<String>> {
    let list = channel.get("header").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for h in list.iter().filter_map(Value::as_str) {
        match h.split_once(':') {
            Some((name, _)) if !name.trim().is_empty() && !name.contains(char::is_whitespace) => {
                out.push(h.to_string())
            }
            _ => return Err(bad("channel.header", format!("{h:?}: a header is `Name: value`"))),
        }
    }
    Ok(out)
}

/// `full-resource`, `id-only` or `empty`: the backport's payload content, else
/// R4's rule (a payload type given: the resource; none: nothing).
fn payload(channel: &Value) -> Result<String> {
    let content = channel.pointer("/_payload/extension").and_then(Value::as_array).and_then(|exts| {
        exts.iter()
            .find(|e| e.get("url").and_then(Value::as_str) == Some(&format!("{BACKPORT}/backport-payload-content")))
            .and_then(|e| e.get("valueCode").and_then(Value::as_str))
    });
    match (content, channel.get("payload")) {
        (Some(c @ ("full-resource" | "id-only" | "empty")), _) => Ok(c.to_string()),
        (Some(other), _) => {
            Err(bad("channel.payload", format!("payload content {other:?}: full-resource, id-only or empty")))
        }
        (None, Some(_)) => Ok("full-resource".into()),
        (None, None) => Ok("empty".into()),
    }
}

fn heartbeat(channel: &Value) -> Option<i64> {
    let exts = channel.get("extension").and_then(Value::as_array)?;
    exts.iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(&format!("{BACKPORT}/backport-heartbeat-period")))
        .and_then(|e| e.get("valueUnsignedInt").and_then(Value::as_i64))
}

/// The resource as stored and served: without its headers, with its status.
fn strip(s: &mut Value, status: &str) {
    if let Some(ch) = s.get_mut("channel").and_then(Value::as_object_mut) {
        ch.remove("header");
    }
    if let Some(o) = s.as_object_mut() {
        o.insert("status".into(), Value::String(status.into()));
        o.remove("error");
    }
}
