//! What every FHIR handler needs from the request besides its path: the query pairs,
//! the headers it reads, the negotiated output format; and how it answers.

use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use std::sync::Arc;

use crate::access::Access;
use crate::auth::{Caller, Interaction};
use crate::fhir::codec::{self, Output};
use crate::{Error, Result};

/// The SMART permission letter's meaning, for messages.
fn interaction_name(i: Interaction) -> &'static str {
    match i {
        Interaction::Create => "create (c)",
        Interaction::Read => "read (r)",
        Interaction::Update => "update (u)",
        Interaction::Delete => "delete (d)",
        Interaction::Search => "search (s)",
    }
}

/// The resources a request touched, for its AuditEvent (set on the response by
/// handlers whose path does not say it: search, history, transaction).
#[derive(Debug, Clone, Default)]
pub struct Touched {
    /// `Type/id` of each resource read or written.
    pub entities: Vec<String>,
    /// `transaction` or `batch` for a Bundle POSTed to the base.
    pub interaction: Option<&'static str>,
    /// Recorded even when it names no patient data: the integration desk's
    /// operations, which read and replay what the providers' systems exchange.
    pub always: bool,
}

/// Request context: query, headers, output format, who is calling.
pub struct Ctx {
    /// Decoded query pairs in order, `_format` and `_pretty` removed.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub out: Output,
    /// The verified caller (set by the guard on every protected route).
    pub caller: Option<Arc<Caller>>,
    /// What the caller may see and change, for the store.
    pub access: Access,
    /// A bad `_format` is reported when the handler answers (unless the handler
    /// answers in a format of its own, see [`Ctx::wants`]).
    format_error: Option<String>,
    /// `_format` as sent.
    format: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let mut query = Vec::new();
        let (mut format, mut pretty) = (None, None);
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            match k.as_ref() {
                "_format" => format = Some(v.into_owned()),
                "_pretty" => pretty = Some(v.into_owned()),
                _ => query.push((k.into_owned(), v.into_owned())),
            }
        }
        let accept = parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let (out, format_error) = match codec::negotiate(format.as_deref(), pretty.as_deref(), accept) {
            Ok(o) => (o, None),
            Err(e) => (Output::default(), Some(e.to_string())),
        };
        let caller = parts.extensions.get::<Arc<Caller>>().cloned();
        let access = caller.as_deref().map_or_else(Access::nobody, Access::of);
        Ok(Ctx { query, headers: parts.headers.clone(), out, caller, access, format_error, format })
    }
}

impl Ctx {
    /// 403 unless the token's scopes allow `interaction` on `res_type`.
    pub fn allow(&self, res_type: &str, interaction: Interaction) -> Result<()> {
        match &self.caller {
            Some(c) if c.scopes.allows(res_type, interaction) => Ok(()),
            Some(c) => Err(Error::Forbidden(format!(
                "the token's scopes ({}) do not allow {} on {res_type}; ask for a token with that scope",
                c.scopes.as_text(),
                interaction_name(interaction)
            ))),
            None => Err(Error::Unauthorized("invalid_token", "a bearer token is required".into())),
        }
    }

    /// 403 unless the caller is one of the CUP's administrators.
    pub fn administrators_only(&self, op: &str) -> Result<()> {
        if self.access.is_privileged() {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("{op} is run by the CUP's administrators (role admin)")))
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the client asks for a non-FHIR rendering (`_format=text` or
    /// `text/plain`, `_format=csv` or `text/csv`), which some answers offer.
    pub fn wants(&self, short: &str, mime: &str) -> bool {
        match &self.format {
            Some(f) => f == short || f == mime,
            None => self.header("accept").is_some_and(|a| a.split(',').any(|m| m.trim().starts_with(mime))),
        }
    }

    /// `Prefer: return=…` (`minimal`, `representation`, `OperationOutcome`).
    pub fn prefer_return(&self) -> &str {
        self.prefer("return").unwrap_or("representation")
    }

    /// `Prefer: handling=lenient` makes unknown search parameters warnings.
    pub fn lenient(&self) -> bool {
        self.prefer("handling") == Some("lenient")
    }

    fn prefer(&self, key: &str) -> Option<&str> {
        self.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([',', ';']))
            .find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"'))
            })
    }

    /// Turns a handler's result into the HTTP answer, errors as OperationOutcome.
    pub fn respond(&self, result: Result<Reply>) -> Response {
        if let Some(e) = &self.format_error {
            if !matches!(&result, Ok(r) if r.raw.is_some()) {
                return self.error(Error::NotAcceptable(e.clone()));
            }
        }
        match result {
            Ok(reply) => reply.into_http(),
            Err(e) => self.error(e),
        }
    }

    pub fn error(&self, e: Error) -> Response {
        error_response(e, self.out)
    }

    /// A reply with a resource value as body.
    pub fn resource(&self, status: StatusCode, value: &Value) -> Result<Reply> {
        Ok(Reply::new(status).body(codec::render(value, self.out)?, self.out))
    }
}

/// The HTTP answer to an error: status, OperationOutcome, `Retry-After` when busy.
/// Internal errors are logged with their cause chain and answered without it.
pub fn error_response(e: Error, out: Output) -> Response {
    let status = e.status();
    if let Error::Internal(_) = &e {
        let (error, code) = crate::error::log_fields(&e);
        tracing::error!(error, db_code = code.as_deref().unwrap_or("-"), "request failed");
    }
    let body = codec::render(&e.outcome(), out).unwrap_or_else(|_| e.outcome().to_string().into_bytes());
    let mut r = Reply::new(status).body(body, out);
    match &e {
        Error::Busy(_) => r = r.header(header::RETRY_AFTER, "1".into()),
        Error::TooManyRequests(secs, _) => r = r.header(header::RETRY_AFTER, secs.to_string()),
        // RFC 6750: a request without a token gets the challenge alone.
        Error::Unauthorized("", _) => r = r.header(header::WWW_AUTHENTICATE, "Bearer realm=\"cupola\"".into()),
        Error::Unauthorized(code, text) => {
            let text = text.replace(['"', '\\'], "'");
            r = r.header(
                header::WWW_AUTHENTICATE,
                format!("Bearer realm=\"cupola\", error=\"{code}\", error_description=\"{text}\""),
            )
        }
        _ => {}
    }
    r.into_http()
}

/// A successful answer being built.
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, String)>,
    body: Option<(Vec<u8>, Output)>,
    /// A body that is not FHIR (a printed receipt, CSV), with its media type.
    raw: Option<(Vec<u8>, &'static str)>,
    touched: Option<Touched>,
}

impl Reply {
    pub fn new(status: StatusCode) -> Reply {
        Reply { status, headers: Vec::new(), body: None, raw: None, touched: None }
    }

    /// Says which resources the request touched (for the audit trail).
    pub fn touched(mut self, touched: Touched) -> Reply {
        self.touched = Some(touched);
        self
    }

    pub fn header(mut self, name: HeaderName, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    pub fn body(mut self, bytes: Vec<u8>, out: Output) -> Reply {
        self.body = Some((bytes, out));
        self
    }

    /// A body in a media type of its own (`text/plain; charset=utf-8`, `text/csv`).
    pub fn raw(mut self, bytes: Vec<u8>, content_type: &'static str) -> Reply {
        self.raw = Some((bytes, content_type));
        self
    }

    fn into_http(self) -> Response {
        let mut resp = match (self.raw, self.body) {
            (Some((bytes, t)), _) => ([(header::CONTENT_TYPE, t)], bytes).into_response(),
            (None, Some((bytes, out))) => ([(header::CONTENT_TYPE, out.format.content_type())], bytes).into_response(),
            (None, None) => ().into_response(),
        };
        *resp.status_mut() = self.status;
        if let Some(t) = self.touched {
            resp.extensions_mut().insert(t);
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().append(name, v);
            }
        }
        resp
    }
}
