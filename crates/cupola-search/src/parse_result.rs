//! Result parameters with a structure: `_sort`, `_include`, `_revinclude`.

use crate::parse::err;
use crate::query::{Include, ParamRows, SortExpr, SortKey};
use crate::registry::{Defs, ParamKind, RESOURCE_TYPES};
use crate::schema::Table;
use crate::SearchError;

pub(crate) fn parse_sort(defs: &Defs, rtype: &str, key: &str, value: &str) -> Result<Vec<SortKey>, SearchError> {
    let mut keys = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (desc, code) = match item.strip_prefix('-') {
            Some(c) => (true, c),
            None => (false, item),
        };
        let expr = match code {
            "_id" => SortExpr::Id,
            "_lastUpdated" => SortExpr::LastUpdated,
            _ => {
                let def = defs
                    .get(rtype, code)
                    .filter(|d| Defs::searchable(d))
                    .ok_or_else(|| err(key, format!("cannot sort on unknown parameter '{code}'")))?;
                let table = match def.kind {
                    ParamKind::Composite | ParamKind::Special => None,
                    k => Table::for_kind(k),
                }
                .ok_or_else(|| err(key, format!("cannot sort on {} parameter '{code}'", def.kind.as_str())))?;
                SortExpr::Param { table, param: ParamRows::of(defs, rtype, &def.code) }
            }
        };
        keys.push(SortKey { expr, desc });
    }
    Ok(keys)
}

/// `Type:param[:Target]` or `*` (`Type:*` also accepted).
pub(crate) fn parse_include(
    defs: &Defs,
    rtype: &str,
    key: &str,
    value: &str,
    rev: bool,
) -> Result<Include, SearchError> {
    if value == "*" {
        let source_type = if rev { "*".to_string() } else { rtype.to_string() };
        return Ok(Include { rev, source_type, param: None, target_type: None });
    }
    let parts: Vec<&str> = value.split(':').collect();
    let (source, param, target) = match parts.as_slice() {
        [s, p] => (*s, *p, None),
        [s, p, t] => (*s, *p, Some(*t)),
        _ => return Err(err(key, format!("'{value}' is not Type:param[:TargetType]"))),
    };
    if !RESOURCE_TYPES.contains(&source) {
        return Err(err(key, format!("'{source}' is not a supported resource type")));
    }
    if !rev && source != rtype && !key.ends_with(":iterate") {
        return Err(err(key, format!("'{source}' is not the searched type {rtype}")));
    }
    if let Some(t) = target {
        if !RESOURCE_TYPES.contains(&t) {
            return Err(err(key, format!("'{t}' is not a supported resource type")));
        }
    }
    let param = if param == "*" {
        None
    } else {
        let def = defs.get(source, param).filter(|d| d.kind == ParamKind::Reference && d.expr.is_some());
        let def = def.ok_or_else(|| err(key, format!("'{param}' is not a reference parameter of {source}")))?;
        Some(ParamRows::of(defs, source, &def.code))
    };
    Ok(Include { rev, source_type: source.to_string(), param, target_type: target.map(str::to_string) })
}
