//! The checks every incoming resource passes before it is stored: resourceType and
//! id agree with the URL, the official R4 definitions (JSON Schema, cardinality,
//! required bindings, real dates), fhirbolt's typed model, then cupola's own
//! profiles (422).

use serde_json::Value;

use crate::error::Issue;
use crate::{Error, Result};

/// Holds the compiled definitions; build once and share.
pub struct Checker {
    validator: cupola_validate::Validator,
    profiles: cupola_validate::Profiles,
}

/// Where a resource sits in the request: the start of every `expression`.
#[derive(Clone, Copy)]
pub enum At<'a> {
    /// The request body is the resource.
    Body,
    /// The resource of `Bundle.entry[i]`.
    Entry(usize),
    /// Anything else, as a FHIRPath prefix ending with the resource element.
    Path(&'a str),
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    /// The process-wide checker: the definitions are compiled once, however many
    /// gateways a process runs (tests run dozens).
    pub fn shared() -> std::sync::Arc<Checker> {
        static SHARED: std::sync::OnceLock<std::sync::Arc<Checker>> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| std::sync::Arc::new(Checker::new())).clone()
    }

    pub fn new() -> Checker {
        let validator = cupola_validate::Validator::r4();
        // Compile every served type's schema now, not on the first request of each type.
        validator.warm_up();
        Checker { validator, profiles: cupola_validate::Profiles::load() }
    }

    /// The top-level elements `_summary=true` keeps for a type (choice elements as `x[x]`).
    pub fn summary_elements(&self, res_type: &str) -> Vec<String> {
        self.validator.summary_elements(res_type)
    }

    /// Checks `resource` sent for `res_type` (and, on update, for `id`).
    pub fn check(&self, resource: &Value, res_type: &str, id: Option<&str>, at: At) -> Result<()> {
        let actual = resource.get("resourceType").and_then(Value::as_str);
        match actual {
            None => return Err(invalid(at, res_type, "required", "resourceType", "resourceType is missing".into())),
            Some(t) if t != res_type => {
                return Err(invalid(
                    at,
                    res_type,
                    "invalid",
                    "resourceType",
                    format!("resourceType is {t}, but the URL is for {res_type}"),
                ))
            }
            _ => {}
        }
        if let Some(id) = id {
            match resource.get("id").and_then(Value::as_str) {
                Some(body_id) if body_id == id => {}
                Some(body_id) => {
                    return Err(invalid(
                        at,
                        res_type,
                        "invalid",
                        "id",
                        format!("the id in the body ({body_id}) differs from the id in the URL ({id})"),
                    ))
                }
                None => {
                    return Err(invalid(
                        at,
                        res_type,
                        "required",
                        "id",
                        format!("an update needs the id in the body, equal to the URL's ({id})"),
                    ))
                }
            }
        }
        let issues = self.validator.validate(resource);
        if issues.iter().any(|i| matches!(i.severity, cupola_validate::Severity::Error)) {
            return Err(Error::Invalid(issues.into_iter().map(|i| convert(i, at, res_type)).collect()));
        }
        if let Err(e) = cupola_model::check_typed_after_schema(resource) {
            return Err(Error::Invalid(vec![Issue::error("structure", Some(locate(at, res_type, res_type)), e)]));
        }
        let violations = self.profiles.check(resource);
        if !violations.is_empty() {
            return Err(Error::Unprocessable(violations.into_iter().map(|i| convert(i, at, res_type)).collect()));
        }
        Ok(())
    }
}

fn invalid(at: At, res_type: &str, code: &'static str, element: &str, text: String) -> Error {
    Error::Invalid(vec![Issue::error(code, Some(locate(at, res_type, &format!("{res_type}.{element}"))), text)])
}

fn convert(i: cupola_validate::Issue, at: At, res_type: &str) -> Issue {
    let severity = match i.severity {
        cupola_validate::Severity::Error => "error",
        cupola_validate::Severity::Warning => "warning",
    };
    Issue { severity, code: i.code, expression: Some(locate(at, res_type, &i.expression)), diagnostics: i.diagnostics }
}

/// Rewrites `Type.path` for where the resource sits: `Bundle.entry[2].resource.path`.
fn locate(at: At, res_type: &str, expression: &str) -> String {
    let prefix = match at {
        At::Body => return expression.to_string(),
        At::Entry(i) => format!("Bundle.entry[{i}].resource"),
        At::Path(p) => p.to_string(),
    };
    match expression.strip_prefix(res_type) {
        Some(rest) if rest.is_empty() || rest.starts_with('.') => format!("{prefix}{rest}"),
        _ => format!("{prefix}.{expression}"),
    }
}
