//! The search parameter definitions: the official R4 SearchParameter bundle,
//! trimmed to the served resource types, parsed once.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::fhirpath::{self, Expr};

/// The resource types this crate knows search parameters for: the served ones,
/// listed once in `cupola-types`.
pub use cupola_types::RESOURCE_TYPES;

const BUNDLE: &str = include_str!("../../../profiles/r4/search-parameters.json");

/// A search parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamKind {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl ParamKind {
    fn parse(s: &str) -> Option<ParamKind> {
        Some(match s {
            "number" => ParamKind::Number,
            "date" => ParamKind::Date,
            "string" => ParamKind::String,
            "token" => ParamKind::Token,
            "reference" => ParamKind::Reference,
            "composite" => ParamKind::Composite,
            "quantity" => ParamKind::Quantity,
            "uri" => ParamKind::Uri,
            "special" => ParamKind::Special,
            _ => return None,
        })
    }

    /// The FHIR code of the type (`token`, `date`…).
    pub fn as_str(self) -> &'static str {
        match self {
            ParamKind::Number => "number",
            ParamKind::Date => "date",
            ParamKind::String => "string",
            ParamKind::Token => "token",
            ParamKind::Reference => "reference",
            ParamKind::Composite => "composite",
            ParamKind::Quantity => "quantity",
            ParamKind::Uri => "uri",
            ParamKind::Special => "special",
        }
    }
}

/// One component of a composite parameter.
#[derive(Debug, Clone)]
pub(crate) struct Component {
    pub kind: ParamKind,
    pub expr: Expr,
}

/// One search parameter definition.
#[derive(Debug, Clone)]
pub(crate) struct ParamDef {
    pub code: String,
    pub kind: ParamKind,
    pub url: String,
    pub description: String,
    /// `None` for parameters without an expression (`_text`, `_content`, `_query`).
    pub expr: Option<Expr>,
    pub targets: Vec<String>,
    pub components: Vec<Component>,
}

/// Parameters whose values come from the `resources` table, not from extraction.
pub(crate) const TABLE_PARAMS: &[&str] = &["_id", "_lastUpdated"];

pub(crate) struct Defs {
    pub defs: Vec<ParamDef>,
    /// resource type → code → index in `defs`.
    pub by_type: HashMap<String, BTreeMap<String, usize>>,
    /// resource type → code → how a narrowing parameter's rows are found.
    narrowed: HashMap<String, BTreeMap<String, Narrowed>>,
    /// The priority classes cupola's `open-to` takes, given by the caller
    /// ([`crate::Registry::with_open_to_classes`]); none until then.
    pub open_to_classes: Vec<String>,
}

/// A reference parameter that only narrows other reference parameters of the same
/// resource to one target type: `Appointment.patient` is
/// `Appointment.participant.actor.where(resolve() is Patient)`, exactly the `actor`
/// references to a Patient. It has no index rows of its own; it is searched in the
/// rows of `from` whose target type is `target_type` (as HAPI FHIR searches its
/// resource links by path), which saves an index row per such reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Narrowed {
    pub from: Vec<String>,
    pub target_type: String,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// The R4 definitions plus `extra` SearchParameter resources (a server's own).
pub(crate) fn load(extra: &[Value]) -> Defs {
    let bundle: Value = serde_json::from_str(BUNDLE).unwrap_or(Value::Null);
    let mut entries: Vec<&Value> = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| e.get("resource")).collect())
        .unwrap_or_default();
    entries.extend(extra.iter());
    let kinds = kinds_by_url(&entries);
    let mut defs = Vec::new();
    let mut by_type: HashMap<String, BTreeMap<String, usize>> = HashMap::new();
    for r in entries {
        let Some(def) = param_def(r, &kinds) else { continue };
        let idx = defs.len();
        let bases = strings(r.get("base"));
        for t in RESOURCE_TYPES {
            if bases.iter().any(|b| b == t || b == "Resource" || b == "DomainResource") {
                by_type.entry(t.to_string()).or_default().entry(def.code.clone()).or_insert(idx);
            }
        }
        defs.push(def);
    }
    let mut out = Defs { defs, by_type, narrowed: HashMap::new(), open_to_classes: Vec::new() };
    out.narrowed = narrowing(&out);
    out
}

/// Each SearchParameter's type and expression by its canonical URL: what the
/// components of a composite name.
type Kinds<'a> = HashMap<&'a str, (ParamKind, Option<&'a str>)>;

fn kinds_by_url<'a>(entries: &[&'a Value]) -> Kinds<'a> {
    entries
        .iter()
        .filter_map(|r| {
            let url = r.get("url")?.as_str()?;
            let kind = ParamKind::parse(r.get("type")?.as_str()?)?;
            Some((url, (kind, r.get("expression").and_then(Value::as_str))))
        })
        .collect()
}

/// One SearchParameter resource as a definition; `None` (left out) without a code
/// or a known type, with an expression that does not parse, or for a composite
/// with fewer than two usable components.
fn param_def(r: &Value, kinds: &Kinds) -> Option<ParamDef> {
    let code = r.get("code").and_then(Value::as_str)?;
    let kind = r.get("type").and_then(Value::as_str).and_then(ParamKind::parse)?;
    let expr = match r.get("expression").and_then(Value::as_str) {
        Some(e) => Some(fhirpath::parse(e).ok()?),
        None => None,
    };
    let components = components(r, kinds);
    if kind == ParamKind::Composite && components.len() < 2 {
        return None;
    }
    Some(ParamDef {
        code: code.to_string(),
        kind,
        url: r.get("url").and_then(Value::as_str).unwrap_or_default().to_string(),
        description: r.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
        expr,
        targets: strings(r.get("target")),
        components,
    })
}

/// A composite's components whose definition is known and whose expression parses.
fn components(r: &Value, kinds: &Kinds) -> Vec<Component> {
    r.get("component")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    let def = c.get("definition")?.as_str()?;
                    let (kind, _) = kinds.get(def)?;
                    let expr = fhirpath::parse(c.get("expression")?.as_str()?).ok()?;
                    Some(Component { kind: *kind, expr })
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
}

/// The parts of `e` (a union, or one expression) that can yield anything for a
/// resource of type `rtype`; `None` when a part's root is not a type name.
fn parts_for<'e>(e: &'e Expr, rtype: &str) -> Option<Vec<&'e Expr>> {
    let parts: Vec<&Expr> = match e {
        Expr::Union(ps) => ps.iter().collect(),
        e => vec![e],
    };
    let mut out = Vec::new();
    for p in parts {
        let mut root = p;
        loop {
            root = match root {
                Expr::Member(b, _) | Expr::Func(b, _, _) | Expr::Index(b, _) | Expr::As(b, _) | Expr::Is(b, _) => b,
                _ => break,
            };
        }
        match root {
            Expr::TypeRoot(t) if t == rtype || t == "Resource" || t == "DomainResource" => out.push(p),
            Expr::TypeRoot(_) => {}
            _ => return None,
        }
    }
    Some(out)
}

/// `base.where(resolve() is T)` → `(base, T)`.
fn where_resolve_is(e: &Expr) -> Option<(&Expr, &str)> {
    let Expr::Func(base, name, args) = e else { return None };
    match (name.as_str(), args.as_slice()) {
        ("where", [Expr::Is(inner, t)]) if matches!(&**inner, Expr::Func(this, f, a) if **this == Expr::This && f == "resolve" && a.is_empty()) => {
            Some((base, t))
        }
        _ => None,
    }
}

/// The narrowing reference parameters of every type (see [`Narrowed`]): each part of
/// the expression is `E.where(resolve() is T)`, with one `T` for all, and `E` the
/// whole expression (for that type) of another reference parameter.
fn narrowing(defs: &Defs) -> HashMap<String, BTreeMap<String, Narrowed>> {
    let mut out: HashMap<String, BTreeMap<String, Narrowed>> = HashMap::new();
    for rtype in RESOURCE_TYPES {
        let refs: Vec<(&str, Vec<&Expr>)> = defs
            .of_type(rtype)
            .filter(|d| d.kind == ParamKind::Reference)
            .filter_map(|d| Some((d.code.as_str(), parts_for(d.expr.as_ref()?, rtype)?)))
            .collect();
        for (code, parts) in &refs {
            let narrowed: Option<Vec<(&Expr, &str)>> = parts.iter().map(|p| where_resolve_is(p)).collect();
            let Some(narrowed) = narrowed.filter(|n| !n.is_empty()) else { continue };
            let target_type = narrowed[0].1;
            if narrowed.iter().any(|(_, t)| *t != target_type) {
                continue;
            }
            let from: Option<Vec<String>> = narrowed
                .iter()
                .map(|(base, _)| {
                    refs.iter().find(|(c, ps)| c != code && ps.len() == 1 && ps[0] == *base).map(|(c, _)| c.to_string())
                })
                .collect();
            if let Some(from) = from {
                let n = Narrowed { from, target_type: target_type.to_string() };
                out.entry(rtype.to_string()).or_default().insert(code.to_string(), n);
            }
        }
    }
    out
}

impl Defs {
    /// The definition of `code` for `rtype`.
    pub fn get(&self, rtype: &str, code: &str) -> Option<&ParamDef> {
        self.by_type.get(rtype)?.get(code).and_then(|i| self.defs.get(*i))
    }

    /// How `code` of `rtype` is searched when it narrows other parameters.
    pub fn narrowed(&self, rtype: &str, code: &str) -> Option<&Narrowed> {
        self.narrowed.get(rtype)?.get(code)
    }

    /// `(type, code)` of every narrowing parameter, sorted.
    pub fn narrowing_params(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            self.narrowed.iter().flat_map(|(t, m)| m.keys().map(|c| (t.clone(), c.clone()))).collect();
        out.sort();
        out
    }

    /// Every definition for `rtype`, by code.
    pub fn of_type(&self, rtype: &str) -> impl Iterator<Item = &ParamDef> {
        self.by_type.get(rtype).into_iter().flat_map(|m| m.values().filter_map(|i| self.defs.get(*i)))
    }

    /// Takes the parameters `off` (`(type, code)`) out of their types.
    pub fn remove(&mut self, off: &[(String, String)]) {
        for (rtype, code) in off {
            if let Some(codes) = self.by_type.get_mut(rtype) {
                codes.remove(code);
            }
        }
    }

    /// Whether a parameter can be searched (has an expression or a table column,
    /// and is not `special`, except `near` and cupola's `open-to`).
    pub fn searchable(def: &ParamDef) -> bool {
        (def.kind != ParamKind::Special || def.code == "near" || def.code == "open-to")
            && (def.expr.is_some() || TABLE_PARAMS.contains(&def.code.as_str()))
    }
}
