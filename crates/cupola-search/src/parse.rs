//! `parse_search`: decoded query pairs → [`SearchQuery`].

use crate::parse_result::{parse_include, parse_sort};
use crate::query::{Cond, Filter, ParamRows, SearchQuery, SummaryMode, TotalMode, MAX_COUNT};
use crate::registry::{Defs, ParamDef, ParamKind, RESOURCE_TYPES, TABLE_PARAMS};
use crate::schema::Table;
use crate::text::split_unescaped;
use crate::values;
use crate::SearchError;

pub(crate) fn err(param: &str, message: impl Into<String>) -> SearchError {
    SearchError { param: param.to_string(), message: message.into() }
}

/// Special parameters this crate does not implement.
const UNSUPPORTED: &[&str] =
    &["_text", "_content", "_list", "_query", "_filter", "_type", "_contained", "_containedType", "_graph"];

pub(crate) fn parse_search(
    defs: &Defs,
    rtype: &str,
    params: &[(String, String)],
    lenient: bool,
) -> Result<SearchQuery, SearchError> {
    if !RESOURCE_TYPES.contains(&rtype) {
        return Err(err(rtype, format!("resource type '{rtype}' is not searchable")));
    }
    let mut q = SearchQuery::new(rtype);
    for (key, value) in params {
        if key.contains('\0') || value.contains('\0') {
            return Err(err(key, "NUL characters are not allowed"));
        }
        if apply(defs, rtype, &mut q, key, value, lenient)? {
            q.link_params.push((key.clone(), value.clone()));
        }
    }
    Ok(q)
}

/// Applies one query pair to `q`; whether the pair belongs in the page links (paging
/// and format parameters, and ignored ones, do not).
fn apply(
    defs: &Defs,
    rtype: &str,
    q: &mut SearchQuery,
    key: &str,
    value: &str,
    lenient: bool,
) -> Result<bool, SearchError> {
    match key {
        "_format" | "_pretty" => Ok(false),
        "_count" | "_offset" | "_snapshot" => paging(q, key, value).map(|()| false),
        "_sort" => {
            q.sort = parse_sort(defs, rtype, key, value)?;
            Ok(true)
        }
        "_total" | "_summary" | "_elements" => result_shape(q, key, value).map(|()| true),
        "_include" | "_include:iterate" | "_revinclude" | "_revinclude:iterate" => {
            let rev = key.starts_with("_revinclude");
            if key.ends_with(":iterate") {
                q.warnings.push(format!("{key}: iteration is not supported, applied once"));
            }
            q.includes.push(parse_include(defs, rtype, key, value, rev)?);
            Ok(true)
        }
        _ if value.is_empty() => {
            q.warnings.push(format!("parameter '{key}' has no value and was ignored"));
            Ok(false)
        }
        _ => match parse_param(defs, rtype, key, value, true) {
            Ok(f) => {
                q.filters.push(f);
                Ok(true)
            }
            Err(e) if lenient && e.message.starts_with(UNKNOWN) => {
                q.warnings.push(format!("{}: {}", e.param, e.message));
                Ok(false)
            }
            Err(e) => Err(e),
        },
    }
}

/// `_count`, `_offset`, `_snapshot`: which page.
fn paging(q: &mut SearchQuery, key: &str, value: &str) -> Result<(), SearchError> {
    match key {
        "_count" => {
            let n: u64 =
                value.trim().parse().map_err(|_| err(key, format!("'{value}' is not a non-negative integer")))?;
            q.count = match usize::try_from(n) {
                Ok(n) if n <= MAX_COUNT => n,
                _ => {
                    q.warnings.push(format!("_count={value} reduced to {MAX_COUNT}"));
                    MAX_COUNT
                }
            };
        }
        "_offset" => {
            let n: i64 =
                value.trim().parse().map_err(|_| err(key, format!("'{value}' is not a non-negative integer")))?;
            q.offset = usize::try_from(n).map_err(|_| err(key, "offset must not be negative"))?;
        }
        _ => {
            let s: i64 = value.trim().parse().map_err(|_| err(key, format!("'{value}' is not a valid snapshot")))?;
            if s < 0 {
                return Err(err(key, "snapshot must not be negative"));
            }
            q.snapshot = Some(s);
        }
    }
    Ok(())
}

/// `_total`, `_summary`, `_elements`: what a page holds.
fn result_shape(q: &mut SearchQuery, key: &str, value: &str) -> Result<(), SearchError> {
    match key {
        "_total" => {
            q.total = Some(match value {
                "none" => TotalMode::None,
                "estimate" => TotalMode::Estimate,
                "accurate" => TotalMode::Accurate,
                _ => return Err(err(key, format!("'{value}' is not one of none, estimate, accurate"))),
            })
        }
        "_summary" => {
            q.summary = Some(match value {
                "true" => SummaryMode::True,
                "text" => SummaryMode::Text,
                "data" => SummaryMode::Data,
                "count" => SummaryMode::Count,
                "false" => SummaryMode::False,
                _ => return Err(err(key, format!("'{value}' is not one of true, text, data, count, false"))),
            })
        }
        _ => {
            for e in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                if !e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                    return Err(err(key, format!("'{e}' is not an element name")));
                }
                q.elements.push(e.to_string());
            }
        }
    }
    Ok(())
}

/// Message prefix of errors that lenient mode turns into warnings.
const UNKNOWN: &str = "unknown or unsupported parameter";

fn unknown(key: &str, rtype: &str) -> SearchError {
    err(key, format!("{UNKNOWN} '{key}' for {rtype}"))
}

/// `code[:modifier][.chain]` → its code, modifier and chain.
fn split_key(key: &str) -> (&str, Option<&str>, Option<&str>) {
    let (head, chain) = match key.split_once('.') {
        Some((h, c)) => (h, Some(c)),
        None => (key, None),
    };
    match head.split_once(':') {
        Some((c, m)) => (c, Some(m), chain),
        None => (head, None, chain),
    }
}

/// One search parameter (`code[:modifier][.chain]=value`) → a filter.
fn parse_param(defs: &Defs, rtype: &str, key: &str, value: &str, allow_chain: bool) -> Result<Filter, SearchError> {
    let (code, modifier, chain) = split_key(key);
    if UNSUPPORTED.contains(&code) || code.starts_with("_has") {
        return Err(unknown(key, rtype));
    }
    // Empty alternatives (`a,,b`) are ignored; a value of only commas is an error.
    let ors: Vec<String> = split_unescaped(value, ',').into_iter().filter(|v| !v.is_empty()).collect();
    let known = TABLE_PARAMS.contains(&code) || defs.get(rtype, code).is_some();
    if known && ors.is_empty() {
        return Err(err(key, "no value"));
    }
    if code == "_id" || code == "_lastUpdated" {
        return table_param(key, code, modifier.is_some() || chain.is_some(), &ors);
    }
    let def = defs.get(rtype, code).filter(|d| Defs::searchable(d)).ok_or_else(|| unknown(key, rtype))?;
    if let Some(chained) = chain {
        if !allow_chain {
            return Err(err(key, "only one level of chaining is supported"));
        }
        return parse_chain(defs, rtype, def, key, modifier, chained, value);
    }
    if def.kind == ParamKind::Special && def.code == "open-to" {
        return open_to(defs, key, modifier, value);
    }
    if def.kind == ParamKind::Special {
        return crate::near::filter(key, &def.code, modifier, value, &ors);
    }
    if modifier == Some("missing") {
        return missing(defs, rtype, def, key, value);
    }
    if def.kind == ParamKind::Composite {
        return composite(def, key, modifier, &ors);
    }
    let table = Table::for_kind(def.kind).ok_or_else(|| unknown(key, rtype))?;
    let not = def.kind == ParamKind::Token && modifier == Some("not");
    let conds = ors.iter().map(|v| value_cond(def, modifier, v)).collect::<Result<Vec<_>, _>>();
    Ok(Filter::Values {
        table,
        param: ParamRows::of(defs, rtype, &def.code),
        ors: conds.map_err(|m| err(key, m))?,
        not,
    })
}

/// `_id` or `_lastUpdated`, which live in the resource table and take no modifier.
fn table_param(key: &str, code: &str, modified: bool, ors: &[String]) -> Result<Filter, SearchError> {
    if modified {
        return Err(err(key, format!("modifiers are not supported on {code}")));
    }
    if code == "_id" {
        return Ok(Filter::Id(ors.iter().map(|v| crate::text::unescape(v)).collect()));
    }
    let conds = ors.iter().map(|v| values::date(v)).collect::<Result<Vec<_>, _>>().map_err(|m| err(key, m))?;
    Ok(Filter::LastUpdated(conds))
}

/// `code:missing=true|false`.
fn missing(defs: &Defs, rtype: &str, def: &ParamDef, key: &str, value: &str) -> Result<Filter, SearchError> {
    let missing = match value {
        "true" => true,
        "false" => false,
        _ => return Err(err(key, format!("':missing' takes true or false, not '{value}'"))),
    };
    let (table, param) = match def.kind {
        ParamKind::Composite => {
            (def.components.first().and_then(|c| Table::for_kind(c.kind)), format!("{}$0", def.code))
        }
        k => (Table::for_kind(k), def.code.clone()),
    };
    let param = ParamRows::of(defs, rtype, &param);
    let table = table.ok_or_else(|| unknown(key, rtype))?;
    Ok(Filter::Missing { table, param, missing })
}

/// A composite parameter's alternatives, each `a$b…` with one part per component.
fn composite(def: &ParamDef, key: &str, modifier: Option<&str>, ors: &[String]) -> Result<Filter, SearchError> {
    let bad = |m: String| err(key, m);
    if let Some(m) = modifier {
        return Err(bad(format!("unsupported modifier ':{m}' for a composite parameter")));
    }
    let mut all = Vec::new();
    for v in ors {
        let parts = split_unescaped(v, '$');
        if parts.len() != def.components.len() {
            return Err(bad(format!("'{v}' needs {} components separated by '$'", def.components.len())));
        }
        let conds = def
            .components
            .iter()
            .zip(&parts)
            .map(|(c, p)| values::component(c.kind, p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        all.push(conds);
    }
    let tables = def.components.iter().filter_map(|c| Table::for_kind(c.kind)).collect();
    Ok(Filter::Composite { param: def.code.clone(), tables, ors: all })
}

/// One alternative of a plain parameter's value, read by the parameter's type.
fn value_cond(def: &ParamDef, modifier: Option<&str>, v: &str) -> Result<Cond, String> {
    match def.kind {
        ParamKind::String => values::string(v, modifier),
        ParamKind::Token => match modifier {
            None | Some("not") => values::token(v),
            Some("text") => Ok(Cond::TokenText(crate::text::normalize(&crate::text::unescape(v)))),
            Some(m) => Err(format!("unsupported modifier ':{m}' for a token parameter")),
        },
        ParamKind::Date | ParamKind::Number | ParamKind::Quantity if modifier.is_some() => Err(format!(
            "unsupported modifier ':{}' for a {} parameter",
            modifier.unwrap_or_default(),
            def.kind.as_str()
        )),
        ParamKind::Date => values::date(v),
        ParamKind::Number => values::number(v),
        ParamKind::Quantity => values::quantity(v),
        ParamKind::Uri => values::uri(v, modifier),
        ParamKind::Reference => values::reference(v, modifier, &def.targets),
        ParamKind::Composite | ParamKind::Special => Err("unsupported parameter type".into()),
    }
}

/// `ref[:Type].chained=value`.
fn parse_chain(
    defs: &Defs,
    rtype: &str,
    def: &ParamDef,
    key: &str,
    modifier: Option<&str>,
    chained: &str,
    value: &str,
) -> Result<Filter, SearchError> {
    if def.kind != ParamKind::Reference {
        return Err(err(key, format!("'{}' is not a reference parameter and cannot be chained", def.code)));
    }
    let chained_code = chained.split(':').next().unwrap_or(chained);
    let has_param = |t: &str| {
        chained_code == "_id"
            || chained_code == "_lastUpdated"
            || defs.get(t, chained_code).is_some_and(Defs::searchable)
    };
    let target_type = match modifier {
        Some(t) => {
            if !RESOURCE_TYPES.contains(&t) || !(def.targets.iter().any(|x| x == t)) {
                return Err(err(key, format!("'{t}' is not a target type of '{}'", def.code)));
            }
            t.to_string()
        }
        None => {
            let candidates: Vec<&String> =
                def.targets.iter().filter(|t| RESOURCE_TYPES.contains(&t.as_str()) && has_param(t)).collect();
            match candidates.as_slice() {
                [one] => (*one).clone(),
                [] => {
                    return Err(err(key, format!("no target type of '{}' has a parameter '{chained_code}'", def.code)))
                }
                _ => {
                    return Err(err(
                        key,
                        format!(
                            "ambiguous chain: specify the target type, e.g. '{}:{}.{chained}'",
                            def.code, candidates[0]
                        ),
                    ))
                }
            }
        }
    };
    let inner = parse_param(defs, &target_type, chained, value, false).map_err(|e| err(key, e.message))?;
    Ok(Filter::Chain { param: ParamRows::of(defs, rtype, &def.code), target_type, inner: Box::new(inner) })
}

/// cupola's `Slot?open-to=<class>`: the slots a prescription of that priority class
/// may take now — those kept for no class, those whose reserve has been released,
/// and those kept for that very class. The classes are the caller's
/// ([`crate::Registry::with_open_to_classes`]).
fn open_to(defs: &Defs, key: &str, modifier: Option<&str>, value: &str) -> Result<Filter, SearchError> {
    let bad = |m: String| err(key, m);
    if modifier.is_some() {
        return Err(bad("open-to takes no modifier".into()));
    }
    let classes = &defs.open_to_classes;
    if !classes.iter().any(|c| c == value) {
        return Err(bad(format!("open-to takes a priority class ({}), not '{value}'", one_of(classes))));
    }
    let now = chrono::Utc::now().format("le%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let released = values::date(&now).map_err(bad)?;
    let token = values::token(value).map_err(bad)?;
    Ok(Filter::AnyOf(vec![
        Filter::Missing { table: Table::Token, param: ParamRows::own("reserved-for"), missing: true },
        Filter::Values { table: Table::Date, param: ParamRows::own("release"), ors: vec![released], not: false },
        Filter::Values { table: Table::Token, param: ParamRows::own("reserved-for"), ors: vec![token], not: false },
    ]))
}

/// The classes as a choice: `U, B, D or P`.
fn one_of(classes: &[String]) -> String {
    match classes {
        [] => "none is known".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}
