//! The entries of a transaction or batch Bundle, parsed into the operations they ask
//! for, before anything is written.

use serde_json::Value;

use crate::fhir::{meta, types};
use crate::{Error, Result};

pub type Query = Vec<(String, String)>;

/// What one entry asks for.
#[derive(Debug, Clone)]
pub enum Op {
    Create { if_none_exist: Option<Query> },
    Update { id: String, if_match: Option<i64> },
    CondUpdate { query: Query },
    Delete { id: String },
    CondDelete { query: Query },
    Read { id: String, version: Option<i64> },
    Search { query: Query },
}

#[derive(Debug, Clone)]
pub struct EntryOp {
    pub index: usize,
    pub res_type: String,
    pub full_url: Option<String>,
    pub op: Op,
    pub resource: Option<Value>,
}

impl EntryOp {
    /// The SMART interaction the entry needs in the token's scopes.
    pub fn interaction(&self) -> crate::auth::Interaction {
        use crate::auth::Interaction;
        match self.op {
            Op::Create { .. } => Interaction::Create,
            Op::Update { .. } | Op::CondUpdate { .. } => Interaction::Update,
            Op::Delete { .. } | Op::CondDelete { .. } => Interaction::Delete,
            Op::Read { .. } => Interaction::Read,
            Op::Search { .. } => Interaction::Search,
        }
    }

    /// Processing order of a transaction: DELETE, POST, PUT, GET.
    pub fn order(&self) -> u8 {
        match self.op {
            Op::Delete { .. } | Op::CondDelete { .. } => 0,
            Op::Create { .. } => 1,
            Op::Update { .. } | Op::CondUpdate { .. } => 2,
            Op::Read { .. } | Op::Search { .. } => 3,
        }
    }
}

/// Parses `Bundle.entry[i]`.
pub fn parse_entry(i: usize, entry: &Value, base: &str) -> Result<EntryOp> {
    let at = |el: &str| Some(format!("Bundle.entry[{i}]{el}"));
    let request = entry
        .get("request")
        .ok_or_else(|| Error::invalid("required", at(".request"), "each entry needs a request (method and url)"))?;
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("required", at(".request.method"), "request.method is missing"))?;
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("required", at(".request.url"), "request.url is missing"))?;
    let url = url.strip_prefix(base).map(|u| u.trim_start_matches('/')).unwrap_or(url);
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(parse_query(q))),
        None => (url, None),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let res_type = segments.first().copied().unwrap_or("").to_string();
    if !types::is_served(&res_type) {
        return Err(Error::invalid(
            "not-supported",
            at(".request.url"),
            format!("{url:?} does not name a resource type served here"),
        ));
    }
    let resource = entry.get("resource").cloned();
    let op = entry_op(i, request, method, url, &segments, query)?;
    let needs_resource = matches!(op, Op::Create { .. } | Op::Update { .. } | Op::CondUpdate { .. });
    if needs_resource && resource.is_none() {
        return Err(Error::invalid("required", at(".resource"), format!("{method} needs a resource")));
    }
    let full_url = entry.get("fullUrl").and_then(Value::as_str).map(str::to_string);
    Ok(EntryOp { index: i, res_type, full_url, op, resource: if needs_resource { resource } else { None } })
}

/// What `method` on `segments` (the url's path, `url` in full, with its `query`)
/// asks for; `request` gives its `ifNoneExist` or `ifMatch`.
fn entry_op(i: usize, request: &Value, method: &str, url: &str, segments: &[&str], query: Option<Query>) -> Result<Op> {
    let at = |el: &str| Some(format!("Bundle.entry[{i}]{el}"));
    let bad_url =
        || Error::invalid("value", at(".request.url"), format!("{method} {url} is not a supported entry request"));
    Ok(match (method, segments, query) {
        ("POST", [_], None) => {
            Op::Create { if_none_exist: request.get("ifNoneExist").and_then(Value::as_str).map(parse_query) }
        }
        ("PUT", [_, id], None) => {
            let if_match = match request.get("ifMatch").and_then(Value::as_str) {
                Some(h) => Some(meta::parse_etag(h).ok_or_else(|| {
                    Error::invalid("value", at(".request.ifMatch"), format!("{h:?} is not a version ETag"))
                })?),
                None => None,
            };
            Op::Update { id: id.to_string(), if_match }
        }
        ("PUT", [_], Some(q)) => Op::CondUpdate { query: q },
        ("DELETE", [_, id], None) => Op::Delete { id: id.to_string() },
        ("DELETE", [_], Some(q)) => Op::CondDelete { query: q },
        ("GET", [_, id], None) => Op::Read { id: id.to_string(), version: None },
        ("GET", [_, id, "_history", v], None) => {
            Op::Read { id: id.to_string(), version: Some(v.parse().map_err(|_| bad_url())?) }
        }
        ("GET", [_], q) => Op::Search { query: q.unwrap_or_default() },
        _ => return Err(bad_url()),
    })
}

fn parse_query(q: &str) -> Query {
    url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The entries of a Bundle of type transaction or batch, and that type.
pub fn parse_bundle(value: &Value) -> Result<(String, Vec<Value>)> {
    if value.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(Error::invalid(
            "invalid",
            Some("resourceType".into()),
            "POST /fhir takes a Bundle of type transaction or batch",
        ));
    }
    let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "transaction" && kind != "batch" {
        return Err(Error::invalid(
            "value",
            Some("Bundle.type".into()),
            format!("Bundle.type is {kind:?}; POST /fhir takes transaction or batch"),
        ));
    }
    let entries = match value.get("entry") {
        None => Vec::new(),
        Some(Value::Array(e)) => e.clone(),
        Some(_) => {
            return Err(Error::invalid("structure", Some("Bundle.entry".into()), "Bundle.entry must be an array"))
        }
    };
    Ok((kind.to_string(), entries))
}

pub use crate::fhir::references::local_target;
