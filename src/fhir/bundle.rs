//! Bundles the server writes: searchset, history, transaction-response and
//! batch-response. Stored resources are spliced in as the JSON text they are kept
//! as, so plain-JSON responses never re-parse them.

use serde_json::{json, Map, Value};

use super::codec::{render, Output};
use crate::Result;

/// A resource inside an entry: stored JSON text, or a value built here.
#[derive(Debug, Clone)]
pub enum Res {
    Raw(String),
    Value(Value),
}

/// One entry; absent parts are left out.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub full_url: Option<String>,
    pub resource: Option<Res>,
    /// `match`, `include` or `outcome`.
    pub search_mode: Option<&'static str>,
    pub request: Option<Value>,
    pub response: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub kind: &'static str,
    pub total: Option<i64>,
    /// (relation, url)
    pub links: Vec<(&'static str, String)>,
    pub entries: Vec<Entry>,
}

impl Bundle {
    pub fn new(kind: &'static str) -> Bundle {
        Bundle { kind, total: None, links: Vec::new(), entries: Vec::new() }
    }

    /// The Bundle's frame (everything but the entries).
    fn frame(&self) -> Map<String, Value> {
        let mut b = Map::new();
        b.insert("resourceType".into(), json!("Bundle"));
        b.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
        b.insert("meta".into(), json!({"lastUpdated": super::meta::instant(super::meta::now_micros())}));
        b.insert("type".into(), json!(self.kind));
        if let Some(t) = self.total {
            b.insert("total".into(), json!(t));
        }
        if !self.links.is_empty() {
            let links: Vec<Value> = self.links.iter().map(|(r, u)| json!({"relation": r, "url": u})).collect();
            b.insert("link".into(), Value::Array(links));
        }
        b
    }

    fn entry_frame(e: &Entry) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(u) = &e.full_url {
            m.insert("fullUrl".into(), json!(u));
        }
        if let Some(mode) = e.search_mode {
            m.insert("search".into(), json!({"mode": mode}));
        }
        if let Some(r) = &e.request {
            m.insert("request".into(), r.clone());
        }
        if let Some(r) = &e.response {
            m.insert("response".into(), r.clone());
        }
        m
    }

    /// The Bundle as a JSON value (stored bodies parsed).
    pub fn to_value(&self) -> Result<Value> {
        let mut b = self.frame();
        if !self.entries.is_empty() {
            let mut entries = Vec::with_capacity(self.entries.len());
            for e in &self.entries {
                let mut m = Self::entry_frame(e);
                match &e.resource {
                    Some(Res::Raw(s)) => {
                        m.insert("resource".into(), serde_json::from_str(s).map_err(anyhow::Error::from)?);
                    }
                    Some(Res::Value(v)) => {
                        m.insert("resource".into(), v.clone());
                    }
                    None => {}
                }
                entries.push(Value::Object(m));
            }
            b.insert("entry".into(), Value::Array(entries));
        }
        Ok(Value::Object(b))
    }

    /// Compact JSON text, splicing stored bodies in without parsing them.
    pub fn to_json_text(&self) -> Result<String> {
        let frame = serde_json::to_string(&Value::Object(self.frame())).map_err(anyhow::Error::from)?;
        if self.entries.is_empty() {
            return Ok(frame);
        }
        let mut out = String::with_capacity(frame.len() + self.entries.len() * 1200);
        out.push_str(&frame[..frame.len() - 1]);
        out.push_str(",\"entry\":[");
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let m = serde_json::to_string(&Value::Object(Self::entry_frame(e))).map_err(anyhow::Error::from)?;
            match &e.resource {
                None => out.push_str(&m),
                Some(r) => {
                    let text = match r {
                        Res::Raw(s) => checked_raw(s)?,
                        Res::Value(v) => serde_json::to_string(v).map_err(anyhow::Error::from)?,
                    };
                    out.push_str(&m[..m.len() - 1]);
                    if m.len() > 2 {
                        out.push(',');
                    }
                    out.push_str("\"resource\":");
                    out.push_str(&text);
                    out.push('}');
                }
            }
        }
        out.push_str("]}");
        Ok(out)
    }

    /// Writes the Bundle in the chosen format.
    pub fn render(&self, out: Output) -> Result<Vec<u8>> {
        if out == Output::default() {
            return Ok(self.to_json_text()?.into_bytes());
        }
        render(&self.to_value()?, out)
    }
}

/// A stored body spliced into a Bundle, once checked to be JSON: a version that
/// does not parse fails the request (500) instead of breaking the Bundle's text.
/// Stored bodies begin with their type, id and `meta.versionId`, which the log shows.
fn checked_raw(s: &str) -> Result<String> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(s) {
        let head: String = s.chars().take(120).collect();
        tracing::error!(error = %e, stored = %head, "a stored version does not parse as JSON");
        return Err(anyhow::anyhow!("a stored version does not parse ({e}): {head}").into());
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_text_equals_the_built_value() {
        let mut b = Bundle::new("searchset");
        b.total = Some(2);
        b.links.push(("self", "http://x/fhir/Patient".into()));
        b.entries.push(Entry {
            full_url: Some("http://x/fhir/Patient/1".into()),
            resource: Some(Res::Raw(r#"{"resourceType":"Patient","id":"1"}"#.into())),
            search_mode: Some("match"),
            ..Default::default()
        });
        b.entries.push(Entry {
            resource: Some(Res::Value(json!({"resourceType": "Patient", "id": "2"}))),
            ..Default::default()
        });
        let text: Value = serde_json::from_str(&b.to_json_text().unwrap()).unwrap();
        let mut value = b.to_value().unwrap();
        value["id"] = text["id"].clone();
        value["meta"] = text["meta"].clone();
        assert_eq!(text, value);
    }
}
