//! `id` and `meta` as the server sets them, and FHIR instants.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// The resource with `id`, `meta.versionId` and `meta.lastUpdated` set by the server;
/// the client's other `meta` elements (profile, tag, security, source) are kept.
/// `resourceType`, `id` and `meta` come first, the rest in the client's order.
pub fn stamp(resource: Value, id: &str, version: i64, last_updated: i64) -> Value {
    let Value::Object(mut fields) = resource else {
        return resource;
    };
    let mut out = Map::with_capacity(fields.len() + 2);
    if let Some(rt) = fields.remove("resourceType") {
        out.insert("resourceType".into(), rt);
    }
    fields.remove("id");
    out.insert("id".into(), Value::String(id.to_string()));
    let mut meta = match fields.remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut m = Map::with_capacity(meta.len() + 2);
    meta.remove("versionId");
    meta.remove("lastUpdated");
    m.insert("versionId".into(), Value::String(version.to_string()));
    m.insert("lastUpdated".into(), Value::String(instant(last_updated)));
    m.extend(meta);
    out.insert("meta".into(), Value::Object(m));
    out.extend(fields);
    Value::Object(out)
}

/// A FHIR instant for µs since the epoch, in UTC.
pub fn instant(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// HTTP-date for `Last-Modified`.
pub fn http_date(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Weak ETag of a version, as FHIR uses it: `W/"3"`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The version in an `If-Match` header (`W/"3"`, `"3"` or `3`).
pub fn parse_etag(header: &str) -> Option<i64> {
    header.trim().trim_start_matches("W/").trim_matches('"').parse().ok()
}

/// Parses a FHIR instant/dateTime (with offset; a date alone means its midnight UTC)
/// into µs, for `_since`.
pub fn parse_instant(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

/// Current time in µs since the Unix epoch (UTC): `meta.lastUpdated`'s clock, and
/// the store's time unit.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_sets_server_meta_and_keeps_client_meta() {
        let r = serde_json::json!({"resourceType": "Patient", "id": "x", "meta": {"versionId": "9", "profile": ["p"]}, "active": true});
        let s = stamp(r, "a1", 2, 0);
        assert_eq!(s["id"], "a1");
        assert_eq!(s["meta"]["versionId"], "2");
        assert_eq!(s["meta"]["profile"][0], "p");
        assert_eq!(s["meta"]["lastUpdated"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(s["active"], true);
    }

    #[test]
    fn etags_parse_in_every_spelling() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"4\""), Some(4));
        assert_eq!(parse_etag("5"), Some(5));
        assert_eq!(parse_etag("W/\"x\""), None);
    }
}
