//! A small FHIRPath evaluator over `serde_json::Value`, enough for the expressions of
//! the R4 search parameters (see [`parse`] for the supported syntax).

mod parse;

pub use parse::parse;
use serde_json::Value;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A leading type name (`Patient` in `Patient.name`): the resource itself when
    /// it has that type (or the name is `Resource`/`DomainResource`), else nothing.
    TypeRoot(String),
    /// The current item (`$this`; the implicit start of a relative path).
    This,
    Member(Box<Expr>, String),
    Func(Box<Expr>, String, Vec<Expr>),
    Index(Box<Expr>, usize),
    As(Box<Expr>, String),
    Is(Box<Expr>, String),
    Union(Vec<Expr>),
    /// `a = b` (`false`) or `a != b` (`true`).
    Eq(Box<Expr>, Box<Expr>, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Str(String),
    Bool(bool),
}

/// One item of a result collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// A JSON node; `ty` is the type suffix when it was reached through a choice
    /// element (`valueQuantity` → `Quantity`).
    Node {
        v: &'a Value,
        ty: Option<&'a str>,
    },
    Bool(bool),
    Str(String),
    /// The result of `resolve()`: the referenced resource type, when known.
    Resolved(Option<String>),
}

/// FHIR data types that can be the suffix of a choice element.
const CHOICE_TYPES: &[&str] = &[
    "Boolean",
    "Integer",
    "String",
    "Decimal",
    "Uri",
    "Url",
    "Canonical",
    "Base64Binary",
    "Instant",
    "Date",
    "DateTime",
    "Time",
    "Code",
    "Oid",
    "Id",
    "Markdown",
    "UnsignedInt",
    "PositiveInt",
    "Uuid",
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactPoint",
    "Count",
    "Distance",
    "Duration",
    "HumanName",
    "Identifier",
    "Money",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "SampledData",
    "Signature",
    "Timing",
    "ContactDetail",
    "Contributor",
    "DataRequirement",
    "Expression",
    "ParameterDefinition",
    "RelatedArtifact",
    "TriggerDefinition",
    "UsageContext",
    "Dosage",
    "Meta",
];

/// Evaluation context: the resource and its type.
pub struct Ctx<'a> {
    pub root: &'a Value,
    pub rtype: &'a str,
}

impl<'a> Ctx<'a> {
    /// Evaluates `e` with `this` as the focus.
    pub fn eval(&self, e: &Expr, this: &[Item<'a>]) -> Vec<Item<'a>> {
        match e {
            Expr::TypeRoot(t) => {
                if t == self.rtype || t == "Resource" || t == "DomainResource" {
                    vec![Item::Node { v: self.root, ty: None }]
                } else {
                    Vec::new()
                }
            }
            Expr::This => this.to_vec(),
            Expr::Member(base, name) => self.eval(base, this).iter().flat_map(|i| members(i, name)).collect(),
            Expr::Func(base, name, args) => {
                let input = self.eval(base, this);
                self.func(input, name, args)
            }
            Expr::Index(base, n) => self.eval(base, this).into_iter().nth(*n).into_iter().collect(),
            Expr::As(base, t) => self.eval(base, this).into_iter().filter(|i| is_type(i, t)).collect(),
            Expr::Is(base, t) => {
                let r = self.eval(base, this);
                match r.as_slice() {
                    [one] => vec![Item::Bool(is_type(one, t))],
                    _ => Vec::new(),
                }
            }
            Expr::Union(parts) => parts.iter().flat_map(|p| self.eval(p, this)).collect(),
            Expr::Eq(a, b, negate) => {
                let (a, b) = (self.eval(a, this), self.eval(b, this));
                match (a.as_slice(), b.as_slice()) {
                    ([x], [y]) => match (scalar(x), scalar(y)) {
                        (Some(x), Some(y)) => vec![Item::Bool((x == y) != *negate)],
                        _ => vec![Item::Bool(*negate)],
                    },
                    _ => Vec::new(),
                }
            }
            Expr::And(a, b) => {
                let (a, b) = (truth(&self.eval(a, this)), truth(&self.eval(b, this)));
                match (a, b) {
                    (Some(false), _) | (_, Some(false)) => vec![Item::Bool(false)],
                    (Some(true), Some(true)) => vec![Item::Bool(true)],
                    _ => Vec::new(),
                }
            }
            Expr::Or(a, b) => {
                let (a, b) = (truth(&self.eval(a, this)), truth(&self.eval(b, this)));
                match (a, b) {
                    (Some(true), _) | (_, Some(true)) => vec![Item::Bool(true)],
                    (Some(false), Some(false)) => vec![Item::Bool(false)],
                    _ => Vec::new(),
                }
            }
            Expr::Str(s) => vec![Item::Str(s.clone())],
            Expr::Bool(b) => vec![Item::Bool(*b)],
        }
    }

    fn func(&self, input: Vec<Item<'a>>, name: &str, args: &[Expr]) -> Vec<Item<'a>> {
        let type_arg = || match args.first() {
            Some(Expr::TypeRoot(t)) => Some(t.clone()),
            Some(Expr::Member(b, t)) if **b == Expr::This => Some(t.clone()),
            _ => None,
        };
        match name {
            "where" => {
                let Some(cond) = args.first() else {
                    return Vec::new();
                };
                input.into_iter().filter(|i| truth(&self.eval(cond, std::slice::from_ref(i))) == Some(true)).collect()
            }
            "exists" => vec![Item::Bool(!input.is_empty())],
            "empty" => vec![Item::Bool(input.is_empty())],
            "not" => truth(&input).map(|b| vec![Item::Bool(!b)]).unwrap_or_default(),
            "first" => input.into_iter().take(1).collect(),
            "as" | "ofType" => match type_arg() {
                Some(t) => input.into_iter().filter(|i| is_type(i, &t)).collect(),
                None => Vec::new(),
            },
            "is" => match (type_arg(), input.as_slice()) {
                (Some(t), [one]) => vec![Item::Bool(is_type(one, &t))],
                _ => Vec::new(),
            },
            "resolve" => input.iter().filter_map(resolve).collect(),
            "extension" => {
                let url = match args.first() {
                    Some(Expr::Str(u)) => u.as_str(),
                    _ => return Vec::new(),
                };
                input
                    .iter()
                    .flat_map(|i| members(i, "extension"))
                    .filter(|e| matches!(e, Item::Node { v, .. } if v.get("url").and_then(Value::as_str) == Some(url)))
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The children called `name` of an item, flattening arrays and resolving choice
/// elements (`value` → `valueQuantity`, typed `Quantity`).
fn members<'a>(item: &Item<'a>, name: &str) -> Vec<Item<'a>> {
    let Item::Node { v: Value::Object(map), .. } = item else {
        return Vec::new();
    };
    let expand = |v: &'a Value, ty: Option<&'a str>| -> Vec<Item<'a>> {
        match v {
            Value::Array(a) => a.iter().map(|v| Item::Node { v, ty }).collect(),
            Value::Null => Vec::new(),
            v => vec![Item::Node { v, ty }],
        }
    };
    if let Some(v) = map.get(name) {
        return expand(v, None);
    }
    map.iter()
        .filter_map(|(k, v)| {
            let suffix = k.strip_prefix(name)?;
            CHOICE_TYPES.contains(&suffix).then_some((suffix, v))
        })
        .flat_map(|(suffix, v)| expand(v, Some(suffix)))
        .collect()
}

/// Whether an item is of FHIR type `t` (case-insensitive on the first letter, so
/// `dateTime` matches a `DateTime` choice suffix).
fn is_type(item: &Item<'_>, t: &str) -> bool {
    match item {
        Item::Node { ty: Some(ty), .. } => ty.eq_ignore_ascii_case(t),
        Item::Node { v, ty: None } => match v {
            Value::Bool(_) => t == "boolean",
            Value::Number(_) => matches!(t, "decimal" | "integer" | "unsignedInt" | "positiveInt"),
            Value::String(_) => t.starts_with(|c: char| c.is_ascii_lowercase()) && t != "boolean",
            Value::Object(o) => match o.get("resourceType").and_then(Value::as_str) {
                Some(rt) => rt == t || t == "Resource" || t == "DomainResource",
                None => t.starts_with(|c: char| c.is_ascii_uppercase()),
            },
            _ => false,
        },
        Item::Bool(_) => t == "boolean",
        Item::Str(_) => t == "string",
        Item::Resolved(rt) => rt.as_deref() == Some(t),
    }
}

/// `resolve()` on a Reference: the target type from `reference` or `type`.
fn resolve<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    let Item::Node { v, .. } = item else {
        return None;
    };
    let from_ref = v.get("reference").and_then(Value::as_str).and_then(|r| crate::convert::split_reference(r).0);
    let t = from_ref.or_else(|| v.get("type").and_then(Value::as_str).map(str::to_string));
    Some(Item::Resolved(t))
}

fn scalar(i: &Item<'_>) -> Option<String> {
    match i {
        Item::Node { v: Value::String(s), .. } => Some(s.clone()),
        Item::Node { v: Value::Bool(b), .. } | Item::Bool(b) => Some(b.to_string()),
        Item::Node { v: Value::Number(n), .. } => Some(n.to_string()),
        Item::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// Singleton boolean evaluation: `Some(b)` for a single boolean, `Some(true)` for any
/// other single item, `None` for empty.
fn truth(items: &[Item<'_>]) -> Option<bool> {
    match items {
        [] => None,
        [Item::Bool(b)] | [Item::Node { v: Value::Bool(b), .. }] => Some(*b),
        _ => Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval<'a>(v: &'a Value, e: &str) -> Vec<Item<'a>> {
        let rtype = v.get("resourceType").and_then(Value::as_str).unwrap_or("");
        let ctx = Ctx { root: v, rtype };
        let e = parse(e).expect("parses");
        ctx.eval(&e, &[Item::Node { v, ty: None }])
    }

    #[test]
    fn paths_choices_where() {
        let p = json!({"resourceType": "Patient", "name": [{"family": "A"}, {"family": "B"}],
            "deceasedDateTime": "2015-02-14", "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "e"}],
            "generalPractitioner": [{"reference": "Practitioner/1"}, {"reference": "Organization/2"}]});
        assert_eq!(eval(&p, "Patient.name.family | Practitioner.name.family").len(), 2);
        assert_eq!(eval(&p, "(Patient.deceased as dateTime)").len(), 1);
        assert_eq!(eval(&p, "Patient.deceased.as(boolean)").len(), 0);
        assert_eq!(eval(&p, "Patient.deceased.exists() and Patient.deceased != false"), vec![Item::Bool(true)]);
        assert_eq!(eval(&p, "Patient.telecom.where(system='email')").len(), 1);
        assert_eq!(eval(&p, "Patient.generalPractitioner.where(resolve() is Organization)").len(), 1);
        assert_eq!(eval(&p, "Patient.name[1].family"), vec![Item::Node { v: &json!("B"), ty: None }]);
        let p2 = json!({"resourceType": "Patient"});
        assert_eq!(eval(&p2, "Patient.deceased.exists() and Patient.deceased != false"), vec![Item::Bool(false)]);
        assert!(parse("Patient.name.where(").is_err());
    }
}
