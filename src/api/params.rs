//! An operation's parameters, read through its declaration (`crate::fhir::operations`):
//! the query pairs, then a POSTed `Parameters` (or, for an operation whose one input
//! is a resource, that resource as the body). Each value is taken as the declared
//! type, or as another type that means the same (a token as `valueIdentifier`,
//! `valueCoding`, `valueCodeableConcept` or text; a date as `valueDateTime`; a
//! reference as `Type/id` text); anything else is a 400 naming the parameter and the
//! type it takes, never a parameter taken as absent.

use serde_json::Value;

use super::Ctx;
use crate::fhir::codec;
use crate::fhir::operations::{Kind, Operation, Param, MANY};
use crate::{Error, Result};

/// A code and, when given, its system.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub system: Option<String>,
    pub code: String,
}

impl Token {
    /// `system|code`, or the code alone.
    pub fn text(&self) -> String {
        match &self.system {
            Some(s) => format!("{s}|{}", self.code),
            None => self.code.clone(),
        }
    }

    fn parse(s: &str) -> Option<Token> {
        let (system, code) = match s.split_once('|') {
            Some((sys, code)) => ((!sys.is_empty()).then(|| sys.to_string()), code),
            None => (None, s),
        };
        (!code.is_empty()).then(|| Token { system, code: code.to_string() })
    }
}

/// One value of a parameter, of its declared kind.
#[derive(Debug, Clone)]
enum Arg {
    /// string, code, uri, date, dateTime (checked), reference (`Type/id` or a URL).
    Text(String),
    Integer(i64),
    Boolean(bool),
    Token(Token),
    Resource(Value),
}

/// The parameters of one call of `op`.
pub struct Args {
    op: &'static Operation,
    values: Vec<(&'static str, Arg)>,
}

impl Args {
    /// Reads and checks the parameters of `op` (query, then body); unknown ones are
    /// refused unless `Prefer: handling=lenient`.
    pub fn read(op: &'static Operation, ctx: &Ctx, body: &[u8]) -> Result<Args> {
        let mut args = Args { op, values: Vec::new() };
        for (name, text) in &ctx.query {
            let Some(p) = args.declared(name, ctx.lenient())? else { continue };
            let arg = from_text(p.kind, text).ok_or_else(|| wrong_type(op, p, &format!("{text:?}")))?;
            args.values.push((p.name, arg));
        }
        for (i, parameter) in args.body(ctx, body)?.iter().enumerate() {
            let Some(name) = parameter.get("name").and_then(Value::as_str) else {
                let at = format!("Parameters.parameter[{i}].name");
                return Err(Error::invalid("required", Some(at), "each parameter needs a name"));
            };
            let Some(p) = args.declared(name, ctx.lenient())? else { continue };
            let mut found = from_value(p.kind, parameter).map_err(|given| wrong_type(op, p, &given))?;
            // A CodeableConcept gives each of its codings; a single-valued parameter its first.
            found.truncate(if p.max == 1 { 1 } else { found.len() });
            args.values.extend(found.into_iter().map(|a| (p.name, a)));
        }
        args.check_cardinality()?;
        Ok(args)
    }

    /// The declaration of `name`; an unknown parameter is refused, naming it.
    fn declared(&self, name: &str, lenient: bool) -> Result<Option<&'static Param>> {
        match self.op.input(name) {
            Some(p) => Ok(Some(p)),
            None if lenient => Ok(None),
            None => {
                let known: Vec<&str> = self.op.inputs().map(|p| p.name).collect();
                let takes = if known.is_empty() { "no parameters".to_string() } else { known.join(", ") };
                Err(Error::invalid(
                    "not-supported",
                    Some(name.to_string()),
                    format!("{} has no parameter {name:?}; it takes {takes}", self.op.label()),
                ))
            }
        }
    }

    /// The `parameter`s of the body: a `Parameters`, or the resource itself for an
    /// operation whose only input is one (FHIR's shortcut, e.g. `$process-message`).
    fn body(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<Value>> {
        if body.is_empty() {
            return Ok(Vec::new());
        }
        let v = codec::parse_body(body, ctx.header("content-type"))?;
        let res_type = v.get("resourceType").and_then(Value::as_str).unwrap_or_default();
        if res_type == "Parameters" {
            return Ok(v.get("parameter").and_then(Value::as_array).cloned().unwrap_or_default());
        }
        let inputs: Vec<&'static Param> = self.op.inputs().collect();
        match inputs.as_slice() {
            [p] if matches!(p.kind, Kind::Resource(t) if t == res_type || t == "Resource") => {
                self.values.push((p.name, Arg::Resource(v)));
                Ok(Vec::new())
            }
            _ => Err(Error::invalid(
                "invalid",
                Some("resourceType".into()),
                format!("{} takes a Parameters resource", self.op.label()),
            )),
        }
    }

    fn check_cardinality(&self) -> Result<()> {
        for p in self.op.inputs() {
            let n = self.values.iter().filter(|(k, _)| *k == p.name).count() as u32;
            if n < p.min {
                let text = format!("{} needs {} ({})", self.op.label(), p.name, p.kind.describe());
                return Err(Error::invalid("required", Some(p.name.into()), text));
            }
            if p.max != MANY && n > p.max {
                let text = format!("{} takes {} at most {} time(s), not {n}", self.op.label(), p.name, p.max);
                return Err(Error::invalid("invalid", Some(p.name.into()), text));
            }
        }
        Ok(())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Arg> + 'a {
        debug_assert!(self.op.input(name).is_some(), "{} declares no {name}", self.op.label());
        self.values.iter().filter(move |(k, _)| *k == name).map(|(_, a)| a)
    }

    /// A string, code, uri, date, dateTime or reference parameter; a token as `system|code`.
    pub fn text(&self, name: &str) -> Option<String> {
        self.all(name).next().map(|a| match a {
            Arg::Text(s) => s.clone(),
            Arg::Token(t) => t.text(),
            Arg::Integer(n) => n.to_string(),
            Arg::Boolean(b) => b.to_string(),
            Arg::Resource(r) => r.to_string(),
        })
    }

    /// Each value of a repeating string, code, uri or reference parameter.
    pub fn texts(&self, name: &str) -> Vec<String> {
        self.all(name).filter_map(|a| if let Arg::Text(s) = a { Some(s.clone()) } else { None }).collect()
    }

    /// Each value of a token or Coding parameter.
    pub fn tokens(&self, name: &str) -> Vec<Token> {
        self.all(name).filter_map(|a| if let Arg::Token(t) = a { Some(t.clone()) } else { None }).collect()
    }

    pub fn token(&self, name: &str) -> Option<Token> {
        self.tokens(name).into_iter().next()
    }

    pub fn integer(&self, name: &str) -> Option<i64> {
        self.all(name).find_map(|a| if let Arg::Integer(n) = a { Some(*n) } else { None })
    }

    pub fn boolean(&self, name: &str) -> Option<bool> {
        self.all(name).find_map(|a| if let Arg::Boolean(b) = a { Some(*b) } else { None })
    }

    pub fn resource<'a>(&'a self, name: &'a str) -> Option<&'a Value> {
        self.all(name).find_map(|a| if let Arg::Resource(r) = a { Some(r) } else { None })
    }
}

fn wrong_type(op: &Operation, p: &Param, given: &str) -> Error {
    Error::invalid(
        "invalid",
        Some(p.name.into()),
        format!("{} takes {} as {}; {given} is not one", op.label(), p.name, p.kind.describe()),
    )
}

fn is_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// A value given as text (the query, or a string-like `value[x]`) taken as `kind`.
fn from_text(kind: Kind, s: &str) -> Option<Arg> {
    let text = || (!s.is_empty()).then(|| Arg::Text(s.to_string()));
    match kind {
        Kind::Token | Kind::Coding => Token::parse(s).map(Arg::Token),
        Kind::Date => is_date(s).then(|| Arg::Text(s.to_string())),
        Kind::DateTime | Kind::Instant => {
            (is_date(s) || chrono::DateTime::parse_from_rfc3339(s).is_ok()).then(|| Arg::Text(s.to_string()))
        }
        Kind::Integer => s.parse().ok().map(Arg::Integer),
        Kind::Boolean => s.parse().ok().map(Arg::Boolean),
        Kind::Decimal => s.parse::<f64>().is_ok().then(|| Arg::Text(s.to_string())),
        Kind::String | Kind::Code | Kind::Uri | Kind::Url | Kind::Reference => text(),
        Kind::Money | Kind::Duration | Kind::Period | Kind::Resource(_) | Kind::Parts => None,
    }
}

/// A coding-like value (`system` and `code`, or an Identifier's `system` and `value`).
fn coded(v: &Value, code_key: &str) -> Option<Token> {
    let code = v.get(code_key).and_then(Value::as_str).filter(|c| !c.is_empty())?;
    Some(Token { system: v.get("system").and_then(Value::as_str).map(str::to_string), code: code.to_string() })
}

/// The values of one `Parameters.parameter` taken as `kind`; `Err` says what was given.
fn from_value(kind: Kind, p: &Value) -> std::result::Result<Vec<Arg>, String> {
    if let Kind::Resource(t) = kind {
        let r = p.get("resource").filter(|r| r.is_object());
        let rt = r.and_then(|r| r.get("resourceType")).and_then(Value::as_str);
        return match (r, rt) {
            (Some(r), Some(rt)) if t == "Resource" || rt == t => Ok(vec![Arg::Resource(r.clone())]),
            (_, Some(rt)) => Err(format!("a {rt}")),
            _ => Err("a parameter without its resource".into()),
        };
    }
    let Some((key, v)) = p.as_object().and_then(|o| o.iter().find(|(k, _)| k.starts_with("value"))) else {
        return Err("a parameter without a value[x]".into());
    };
    let given = || format!("{key} {v}");
    let one = |a: Option<Arg>| a.map(|a| vec![a]).ok_or_else(given);
    match (kind, key.as_str()) {
        (Kind::Token | Kind::Coding, "valueIdentifier") => one(coded(v, "value").map(Arg::Token)),
        (Kind::Token | Kind::Coding, "valueCoding") => one(coded(v, "code").map(Arg::Token)),
        (Kind::Token | Kind::Coding, "valueCodeableConcept") => {
            let codings = v.get("coding").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let all: Vec<Arg> = codings.iter().filter_map(|c| coded(c, "code")).map(Arg::Token).collect();
            if all.is_empty() {
                Err(given())
            } else {
                Ok(all)
            }
        }
        (Kind::Code, "valueCoding") => one(coded(v, "code").map(|t| Arg::Text(t.code))),
        (Kind::Code, "valueCodeableConcept") => one(coded(&v["coding"][0], "code").map(|t| Arg::Text(t.code))),
        (Kind::Reference, "valueReference") => {
            one(v.get("reference").and_then(Value::as_str).and_then(|r| from_text(kind, r)))
        }
        (Kind::Integer, "valueInteger" | "valuePositiveInt" | "valueUnsignedInt") => one(v.as_i64().map(Arg::Integer)),
        (Kind::Boolean, "valueBoolean") => one(v.as_bool().map(Arg::Boolean)),
        // A date-time or instant where a date is taken: its day, as written.
        (Kind::Date, "valueDateTime" | "valueInstant") => {
            one(v.as_str().and_then(|s| s.get(..10)).and_then(|d| from_text(kind, d)))
        }
        (
            Kind::Token | Kind::Coding | Kind::Code | Kind::Uri | Kind::Url | Kind::Reference,
            "valueString" | "valueCode" | "valueUri" | "valueId" | "valueCanonical" | "valueUrl",
        )
        | (Kind::Date | Kind::DateTime, "valueDate" | "valueDateTime" | "valueInstant" | "valueString")
        | (Kind::Integer | Kind::Boolean, "valueString" | "valueCode")
        | (Kind::String, _) => one(v.as_str().and_then(|s| from_text(kind, s))),
        _ => Err(given()),
    }
}
