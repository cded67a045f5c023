//! The mutations: each takes a valid resource and a seeded random source and
//! returns the body to send and whether R4 forbids it (then it must be refused
//! with a 4xx) or may allow it (then it is refused with a 4xx or stored in
//! valid R4 shape). Mutations pick an element of the resource at random.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

/// What a mutated body is to R4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Must be refused (4xx).
    Forbidden,
    /// Refused (4xx) or stored valid.
    Either,
}

/// The kinds, each tried on a sample of resources over HTTP.
pub const KINDS: &[&str] = &["shape", "type", "length", "control", "encoding", "depth", "number", "date"];

/// A JSON pointer to every value under `v` (the root excluded), with the key it is under.
fn paths(v: &Value, at: String, out: &mut Vec<(String, Option<String>)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push((p.clone(), Some(k.clone())));
                paths(x, p, out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push((p.clone(), None));
                paths(x, p, out);
            }
        }
        _ => {}
    }
}

fn pick(r: &Value, rng: &mut StdRng, keep: impl Fn(&str, Option<&str>, &Value) -> bool) -> Option<String> {
    let mut all = Vec::new();
    paths(r, String::new(), &mut all);
    let fits: Vec<&(String, Option<String>)> =
        all.iter().filter(|(p, k)| r.pointer(p).is_some_and(|v| keep(p, k.as_deref(), v))).collect();
    fits.choose(rng).map(|(p, _)| p.clone())
}

fn set(r: &mut Value, p: &str, v: Value) {
    if let Some(slot) = r.pointer_mut(p) {
        *slot = v;
    }
}

/// One mutation of `kind`: the body to send and what R4 says of it; `None` when the
/// resource has no element this kind applies to.
pub fn mutate(kind: &str, r: &Value, rng: &mut StdRng) -> Option<(Vec<u8>, Verdict)> {
    let mut r = r.clone();
    let json_body = |r: &Value, verdict| Some((r.to_string().into_bytes(), verdict));
    match kind {
        // An element (not a primitive's `_name`) as an array where it is one value, or
        // its one value where it is an array: never valid FHIR JSON.
        "shape" => {
            let p = pick(&r, rng, |_, k, _| k.is_some_and(|k| !k.starts_with('_') && k != "resourceType"))?;
            let v = r.pointer(&p)?.clone();
            let flipped = match v {
                Value::Array(mut items) if items.len() == 1 => items.remove(0),
                Value::Array(_) => return None,
                other => json!([other]),
            };
            set(&mut r, &p, flipped);
            json_body(&r, Verdict::Forbidden)
        }
        // A primitive of another JSON type, or an object where a primitive is.
        "type" => {
            let p = pick(&r, rng, |_, k, v| {
                k != Some("resourceType") && (v.is_string() || v.is_number() || v.is_boolean())
            })?;
            let other = match r.pointer(&p)? {
                Value::String(_) => json!(12),
                Value::Number(_) => json!("12"),
                _ => json!({"value": true}),
            };
            set(&mut r, &p, other);
            json_body(&r, Verdict::Forbidden)
        }
        "length" => {
            let p = pick(&r, rng, |_, k, v| v.is_string() && k != Some("resourceType"))?;
            let n = *[1_000usize, 70_000, 300_000, 2_000_000].choose(rng)?;
            let c = *['a', 'é', '語', '😀'].choose(rng)?;
            set(&mut r, &p, Value::String(std::iter::repeat_n(c, n).collect()));
            json_body(&r, Verdict::Either)
        }
        "control" => {
            let p = pick(&r, rng, |_, k, v| v.is_string() && k != Some("resourceType"))?;
            let c =
                *['\u{0}', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}', '\u{feff}', '\t', '\r'].choose(rng)?;
            let s = r.pointer(&p)?.as_str()?.to_string();
            let at = rng.gen_range(0..=s.chars().count());
            let mut mutated: String = s.chars().take(at).collect();
            mutated.push(c);
            mutated.extend(s.chars().skip(at));
            set(&mut r, &p, Value::String(mutated));
            json_body(&r, Verdict::Either)
        }
        "encoding" => encoding(&r, rng),
        "depth" => depth(&mut r, rng),
        "number" => {
            let p = pick(&r, rng, |_, _, v| v.is_number())?;
            let edges = [
                "2147483647",
                "2147483648",
                "-2147483649",
                "9223372036854775808",
                "1e400",
                "1E-400",
                "-0",
                "0.000000000000000000000000000001",
                "123456789012345678901234567890.123456789",
            ];
            let n: Value = serde_json::from_str(edges.choose(rng)?).ok()?;
            set(&mut r, &p, n);
            json_body(&r, Verdict::Either)
        }
        "date" => {
            let p = pick(&r, rng, |_, k, v| k.is_some_and(date_typed) && v.as_str().is_some_and(looks_dated))?;
            let (value, verdict) = *[
                ("2026-02-29", Verdict::Forbidden),
                ("2026-04-31", Verdict::Forbidden),
                ("2026-13-01", Verdict::Forbidden),
                ("2026-10-25T02:30:00", Verdict::Forbidden),
                ("2026-03-29T24:00:00+01:00", Verdict::Forbidden),
                ("2024-02-29", Verdict::Either),
                ("2026-03-29T02:30:00+01:00", Verdict::Either),
                ("2026-10-25T02:30:00+02:00", Verdict::Either),
                ("2026-10-25T02:30:00+01:00", Verdict::Either),
                ("2026-12-31T23:59:59.999999Z", Verdict::Either),
                ("0001-01-01", Verdict::Either),
                ("9999-12-31T23:59:59+14:00", Verdict::Either),
            ]
            .choose(rng)?;
            set(&mut r, &p, json!(value));
            json_body(&r, verdict)
        }
        _ => None,
    }
}

/// Keys that hold a date, dateTime or instant in the served types (a string element
/// whose text merely looks like a date may hold any text).
fn date_typed(key: &str) -> bool {
    key.ends_with("Date")
        || key.ends_with("DateTime")
        || key.ends_with("Instant")
        || key.ends_with("Period")
        || matches!(
            key,
            "date"
                | "start"
                | "end"
                | "created"
                | "issued"
                | "authoredOn"
                | "recorded"
                | "lastUpdated"
                | "sent"
                | "received"
                | "timestamp"
                | "paymentDate"
                | "birthDate"
        )
}

fn looks_dated(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-'
}

/// Bytes that are not the UTF-8 JSON FHIR takes, or that are but only barely.
fn encoding(r: &Value, rng: &mut StdRng) -> Option<(Vec<u8>, Verdict)> {
    let text = r.to_string();
    let quote = text.find(":\"")? + 2;
    let (head, tail) = text.split_at(quote);
    let case = rng.gen_range(0..6);
    let splice = |bytes: &[u8]| [head.as_bytes(), bytes, tail.as_bytes()].concat();
    Some(match case {
        0 => (splice(&[0xff, 0xfe]), Verdict::Forbidden),
        1 => (splice(&[0xc0, 0xaf]), Verdict::Forbidden),
        2 => (splice(b"\\ud800"), Verdict::Forbidden),
        3 => (splice(&[0xed, 0xa0, 0x80]), Verdict::Forbidden),
        4 => (text.encode_utf16().flat_map(u16::to_le_bytes).collect(), Verdict::Forbidden),
        _ => ([&[0xef, 0xbb, 0xbf][..], text.as_bytes()].concat(), Verdict::Either),
    })
}

/// Extensions nested `n` deep (valid FHIR, however deep), or arrays nested past any
/// parser's limit under an unknown key (never valid).
fn depth(r: &mut Value, rng: &mut StdRng) -> Option<(Vec<u8>, Verdict)> {
    let n = *[20usize, 60, 120, 250, 1000].choose(rng)?;
    if rng.gen_bool(0.5) {
        let mut ext = json!({"url": "http://example.org/leaf", "valueString": "x"});
        for i in 0..n {
            ext = json!({"url": format!("http://example.org/level{i}"), "extension": [ext]});
        }
        r.as_object_mut()?.insert("extension".into(), json!([ext]));
        return Some((r.to_string().into_bytes(), Verdict::Either));
    }
    let text = r.to_string();
    let nested = format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let body = format!("{{\"deep\":{nested},{}", text.strip_prefix('{')?);
    Some((body.into_bytes(), Verdict::Forbidden))
}
