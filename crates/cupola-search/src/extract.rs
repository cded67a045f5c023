//! Extraction of typed index values from a resource: each parameter's FHIRPath
//! expression is evaluated and its items are converted according to the parameter
//! type (see [`IndexValue`]).

use std::collections::HashSet;

use serde_json::Value;

use crate::convert::{decimal_of, values};
use crate::fhirpath::{Ctx, Item};
use crate::numbers::{scaled_ceil, scaled_floor};
use crate::registry::{Defs, ParamKind, TABLE_PARAMS};

/// One index entry of a resource: the parameter code, a group number (components of
/// a composite parameter extracted from the same element share it; 0 otherwise) and
/// the typed value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexRow {
    /// The parameter code; composite components are stored as `code$0`, `code$1`…,
    /// `Location.position` as `near$lat` / `near$long` numbers.
    pub param: String,
    pub group: i64,
    pub value: IndexValue,
}

/// A typed index value. Dates are inclusive ranges of µs since the epoch (UTC);
/// numbers and quantities are `i64` scaled by 10^6 (`lo = hi` for a single value,
/// the bounds for a Range, `i64::MIN`/`i64::MAX` when open).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexValue {
    /// `norm`: lower case, accents stripped; `exact`: as written.
    String {
        norm: String,
        exact: String,
    },
    /// `text` is normalised display / text, for `:text`.
    Token {
        system: Option<String>,
        code: Option<String>,
        text: Option<String>,
    },
    Date {
        lo: i64,
        hi: i64,
    },
    Number {
        lo: i64,
        hi: i64,
    },
    Quantity {
        lo: i64,
        hi: i64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    /// `raw`: the reference / canonical as written; `target_type`/`target_id` when it
    /// has the form `[base/]Type/id[/_history/v]` (canonicals: `…/Type/id[|version]`).
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        raw: Option<String>,
        ident_system: Option<String>,
        ident_value: Option<String>,
    },
    Uri {
        uri: String,
    },
}

pub(crate) fn extract(defs: &Defs, rtype: &str, res: &Value) -> Vec<IndexRow> {
    let ctx = Ctx { root: res, rtype };
    let this = [Item::Node { v: res, ty: None }];
    let mut rows = Rows::default();
    for def in defs.of_type(rtype) {
        rows.next_param();
        // A narrowing parameter is searched in the rows of the ones it narrows.
        if TABLE_PARAMS.contains(&def.code.as_str()) || defs.narrowed(rtype, &def.code).is_some() {
            continue;
        }
        let Some(expr) = &def.expr else { continue };
        let items = ctx.eval(expr, &this);
        match def.kind {
            ParamKind::Composite => {
                // Only elements where every component has a value can match.
                for (g, item) in items.iter().enumerate() {
                    let parts: Vec<Vec<IndexValue>> = def
                        .components
                        .iter()
                        .map(|c| {
                            ctx.eval(&c.expr, std::slice::from_ref(item))
                                .iter()
                                .flat_map(|sub| values(c.kind, sub))
                                .collect()
                        })
                        .collect();
                    if parts.iter().any(Vec::is_empty) {
                        continue;
                    }
                    for (ci, vals) in parts.into_iter().enumerate() {
                        for value in vals {
                            rows.push(IndexRow { param: format!("{}${ci}", def.code), group: g as i64 + 1, value });
                        }
                    }
                }
            }
            ParamKind::Special => {
                for (g, item) in items.iter().enumerate() {
                    let Item::Node { v, .. } = item else { continue };
                    for (key, name) in [("latitude", "near$lat"), ("longitude", "near$long")] {
                        if let Some(d) = v.get(key).and_then(decimal_of) {
                            let value = IndexValue::Number { lo: scaled_floor(d), hi: scaled_ceil(d) };
                            rows.push(IndexRow { param: name.to_string(), group: g as i64 + 1, value });
                        }
                    }
                }
            }
            kind => {
                for item in &items {
                    for value in values(kind, item) {
                        rows.push(IndexRow { param: def.code.clone(), group: 0, value });
                    }
                }
            }
        }
    }
    rows.out
}

/// Rows at most this many for one parameter are looked through for a repeat; past
/// it (a CodeSystem's `code` has thousands) a set is built.
const SCAN_MAX: usize = 32;

/// A resource's index rows, each once. Rows of different parameters never repeat one
/// another, so a row is looked for among its own parameter's only, without hashing
/// and copying every row into a set as a set of all the rows would.
#[derive(Default)]
struct Rows {
    out: Vec<IndexRow>,
    /// Where the current parameter's rows start in `out`.
    from: usize,
    /// The current parameter's rows, once they are more than `SCAN_MAX`.
    seen: HashSet<IndexRow>,
}

impl Rows {
    fn next_param(&mut self) {
        self.from = self.out.len();
        self.seen.clear();
    }

    fn push(&mut self, row: IndexRow) {
        let own = &self.out[self.from..];
        if own.len() < SCAN_MAX {
            if !own.contains(&row) {
                self.out.push(row);
            }
            return;
        }
        if self.seen.is_empty() {
            self.seen.extend(own.iter().cloned());
        }
        if self.seen.insert(row.clone()) {
            self.out.push(row);
        }
    }
}
