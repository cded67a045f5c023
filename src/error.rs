//! The one error type a client can cause, and the only place an error becomes an
//! `OperationOutcome`.
//!
//! | variant              | HTTP | FHIR issue code      |
//! |----------------------|------|----------------------|
//! | `Invalid`            | 400  | from each issue      |
//! | `Unprocessable`      | 422  | from each issue      |
//! | `Unauthorized`       | 401  | login (+ `WWW-Authenticate`) |
//! | `Forbidden`          | 403  | forbidden            |
//! | `NotFound`           | 404  | not-found            |
//! | `Gone`               | 410  | deleted              |
//! | `MethodNotAllowed`   | 405  | not-supported        |
//! | `Conflict`           | 409  | conflict             |
//! | `PreconditionFailed` | 412  | conflict             |
//! | `PayloadTooLarge`    | 413  | too-costly           |
//! | `UnsupportedMedia`   | 415  | not-supported        |
//! | `NotAcceptable`      | 406  | not-supported        |
//! | `TooManyRequests`    | 429  | throttled (+ `Retry-After`) |
//! | `Busy`               | 503  | transient (+ `Retry-After`) |
//! | `Timeout`            | 503  | timeout              |
//! | `Internal`           | 500  | exception (details only in the log) |

use axum::http::StatusCode;
use serde_json::{json, Value};

/// One problem found in a request, located by a FHIRPath-style `expression`.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// `error`, `warning` or `information`.
    pub severity: &'static str,
    /// A code from the FHIR `issue-type` value set (`structure`, `required`, `value` …).
    pub code: &'static str,
    /// Where the problem is, e.g. `Appointment.start`; `None` when it is the whole request.
    pub expression: Option<String>,
    pub diagnostics: String,
}

impl Issue {
    pub fn error(code: &'static str, expression: Option<String>, diagnostics: impl Into<String>) -> Issue {
        Issue { severity: "error", code, expression, diagnostics: diagnostics.into() }
    }
    pub fn warning(code: &'static str, expression: Option<String>, diagnostics: impl Into<String>) -> Issue {
        Issue { severity: "warning", code, expression, diagnostics: diagnostics.into() }
    }
    pub fn information(diagnostics: impl Into<String>) -> Issue {
        Issue { severity: "information", code: "informational", expression: None, diagnostics: diagnostics.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request")]
    Invalid(Vec<Issue>),
    #[error("the resource violates a profile")]
    Unprocessable(Vec<Issue>),
    /// No valid bearer token: the RFC 6750 error code and the reason.
    #[error("{1}")]
    Unauthorized(&'static str, String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Busy(String),
    /// Seconds until the client may send again.
    #[error("{1}")]
    TooManyRequests(u64, String),
    #[error("{0}")]
    Timeout(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A 400 with one issue at `expression`.
    pub fn invalid(code: &'static str, expression: impl Into<Option<String>>, diagnostics: impl Into<String>) -> Error {
        Error::Invalid(vec![Issue::error(code, expression.into(), diagnostics)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthorized(..) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Gone(_) => StatusCode::GONE,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Error::Busy(_) | Error::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The issues this error reports to the client. Internal errors say nothing of
    /// their cause: it is logged instead.
    pub fn issues(&self) -> Vec<Issue> {
        let one = |code, text: &String| vec![Issue::error(code, None, text.clone())];
        match self {
            Error::Invalid(issues) | Error::Unprocessable(issues) => issues.clone(),
            Error::Unauthorized(_, t) => one("login", t),
            Error::Forbidden(t) => one("forbidden", t),
            Error::NotFound(t) => one("not-found", t),
            Error::Gone(t) => one("deleted", t),
            Error::MethodNotAllowed(t) | Error::UnsupportedMedia(t) | Error::NotAcceptable(t) => {
                one("not-supported", t)
            }
            Error::Conflict(t) | Error::PreconditionFailed(t) => one("conflict", t),
            Error::PayloadTooLarge(t) => one("too-costly", t),
            Error::Busy(t) => one("transient", t),
            Error::TooManyRequests(_, t) => one("throttled", t),
            Error::Timeout(t) => one("timeout", t),
            Error::Internal(_) => one("exception", &"internal error; the cause is in the server log".to_string()),
        }
    }

    /// The `OperationOutcome` for this error.
    pub fn outcome(&self) -> Value {
        outcome(&self.issues())
    }
}

/// Builds an `OperationOutcome` from issues.
pub fn outcome(issues: &[Issue]) -> Value {
    let issues: Vec<Value> = issues
        .iter()
        .map(|i| {
            let mut v = json!({"severity": i.severity, "code": i.code, "diagnostics": i.diagnostics});
            if let Some(e) = &i.expression {
                v["expression"] = json!([e]);
            }
            v
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        if is_busy(&e) {
            return Error::Busy("the database is busy; retry in a moment".into());
        }
        if is_lost(&e) {
            tracing::warn!(error = %e, "the database connection was lost");
            return Error::Busy("the connection to the database was lost; retry in a moment".into());
        }
        if is_too_long(&e) {
            tracing::warn!(error = %e, "a value too long for an index");
            return Error::Unprocessable(vec![Issue::error(
                "too-long",
                None,
                "a value of the request is too long for the database to index",
            )]);
        }
        Error::Internal(anyhow::Error::new(e).context("database error"))
    }
}

/// A value too long for an index (PostgreSQL 54000: an index row over its size
/// limit). Values a client sends are cut or refused before they get there; this
/// keeps one that was missed a client's error, not a server fault.
fn is_too_long(e: &sqlx::Error) -> bool {
    matches!(code_of(e).as_deref(), Some("54000"))
}

/// The database went away under a request (restarted, failed over, the connection
/// cut): its transaction is rolled back (unless the break came during COMMIT, whose
/// fate is then unknown, as with any database) and the same request may succeed in a
/// moment, so it is a 503, not a server fault.
fn is_lost(e: &sqlx::Error) -> bool {
    // PostgreSQL: 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect
    // now, 08xxx connection exceptions, 53300 too many connections.
    matches!(e, sqlx::Error::Io(_))
        || matches!(code_of(e).as_deref(), Some("57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006" | "53300"))
}

/// The database's own code of a database error: SQLSTATE on PostgreSQL, the
/// (extended) result code on SQLite.
fn code_of(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// A new database connection could not be opened: 503, so that the caller retries;
/// the cause (which names the database and its host) goes to the log only.
pub fn unreachable(e: sqlx::Error) -> Error {
    tracing::warn!(error = %e, "the database cannot be reached");
    Error::Busy("the database cannot be reached; retry in a moment".into())
}

/// SQLite's single writer answers BUSY/LOCKED when its wait runs out, and a pool with
/// no free connection times out: both mean "try again", never a server fault.
fn is_busy(e: &sqlx::Error) -> bool {
    // SQLite: 5 BUSY, 6 LOCKED (+ extended codes); PostgreSQL: 40001 serialization, 40P01 deadlock, 55P03 lock not available
    matches!(e, sqlx::Error::PoolTimedOut)
        || matches!(code_of(e).as_deref(), Some("5" | "6" | "261" | "517" | "262" | "40001" | "40P01" | "55P03"))
}

/// The database's code (SQLSTATE on PostgreSQL, the extended result code on SQLite)
/// of the database error behind `e`, if one is: logged with every internal error,
/// since it tells a constraint or a race from a broken connection.
fn database_code(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| c.downcast_ref::<sqlx::Error>().and_then(code_of))
}

/// What to log of an error: its whole cause chain, and the database's code when a
/// database error is behind it.
pub fn log_fields(e: &Error) -> (String, Option<String>) {
    match e {
        Error::Internal(cause) => (format!("{cause:#}"), database_code(cause)),
        other => (other.to_string(), None),
    }
}

/// Whether a database error is a unique-key violation (another writer got there first).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(code_of(e).as_deref(), Some("23505" | "2067" | "1555"))
}

impl Error {
    /// The same error, located in `Bundle.entry[i]` of a transaction or batch.
    pub fn in_entry(self, i: usize) -> Error {
        let at = format!("Bundle.entry[{i}]");
        let locate = |mut issues: Vec<Issue>| {
            for issue in &mut issues {
                if issue.expression.is_none() {
                    issue.expression = Some(at.clone());
                }
            }
            issues
        };
        let prefix = |t: String| format!("{at}: {t}");
        match self {
            Error::Invalid(i) => Error::Invalid(locate(i)),
            Error::Unprocessable(i) => Error::Unprocessable(locate(i)),
            Error::NotFound(t) => Error::NotFound(prefix(t)),
            Error::Forbidden(t) => Error::Forbidden(prefix(t)),
            Error::Gone(t) => Error::Gone(prefix(t)),
            Error::MethodNotAllowed(t) => Error::MethodNotAllowed(prefix(t)),
            Error::Conflict(t) => Error::Conflict(prefix(t)),
            Error::PreconditionFailed(t) => Error::PreconditionFailed(prefix(t)),
            Error::UnsupportedMedia(t) => Error::UnsupportedMedia(prefix(t)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    /// A database error mapped to 500 keeps its code for the log.
    #[tokio::test]
    async fn an_internal_database_error_keeps_its_code() {
        let mut c = sqlx::SqliteConnection::connect("sqlite::memory:").await.expect("in-memory SQLite");
        sqlx::query("CREATE TABLE t (a INTEGER PRIMARY KEY)").execute(&mut c).await.expect("table");
        sqlx::query("INSERT INTO t VALUES (1)").execute(&mut c).await.expect("first row");
        let twice = sqlx::query("INSERT INTO t VALUES (1)").execute(&mut c).await.expect_err("the key is taken");
        let e = Error::from(twice);
        assert!(matches!(e, Error::Internal(_)), "a unique violation outside a conflict check is internal: {e:?}");
        let (text, code) = log_fields(&e);
        assert_eq!(code.as_deref(), Some("1555"));
        assert!(text.starts_with("database error: ") && text.contains("UNIQUE constraint failed: t.a"), "{text}");
        assert_eq!(database_code(&anyhow::anyhow!("no database here")), None);
        assert_eq!(log_fields(&Error::NotFound("Patient/x is not known".into())).1, None);
    }
}
