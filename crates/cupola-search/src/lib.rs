//! FHIR R4 search for cupola: which search parameters exist (the official R4
//! SearchParameter definitions in `profiles/r4/search-parameters.json`), extraction of
//! index rows from a resource at write time, parsing of a search query, and the SQL
//! that runs it against the index tables. Shared by the SQLite and PostgreSQL stores.
//!
//! Flow for a search:
//! 1. [`Registry::parse_search`] → [`SearchQuery`] (or a [`SearchError`] naming the
//!    parameter);
//! 2. on a first page (`snapshot()` is `None`) run [`snapshot_sql`] and
//!    [`SearchQuery::set_snapshot`];
//! 3. run [`SearchQuery::page_sql`] (and [`SearchQuery::count_sql`] if a total is
//!    wanted, [`SearchQuery::include_sql`] with the page's pks);
//! 4. build links with [`SearchQuery::link_query`].
//!
//! On every write, in the same transaction: [`Registry::index_deletes`] then
//! [`Registry::index_inserts`] with the rows of [`Registry::extract`].

// Functions stay under clippy.toml's threshold (80 lines); CI denies warnings.
#![warn(clippy::too_many_lines)]

mod convert;
mod extract;
mod fhirpath;
pub mod grid;
mod group;
mod long;
mod near;
mod numbers;
mod parse;
mod parse_result;
mod query;
mod registry;
mod schema;
mod sql;
mod statements;
mod text;
mod values;

// The size rule is for the code, not for tests, which read as one scenario each.
#[cfg(test)]
#[allow(clippy::too_many_lines)]
mod tests;

use serde_json::Value;

pub use extract::{IndexRow, IndexValue};
pub use grid::{agenda_pk, grid_key, grid_pk, grid_schema, slot_id, split_slot_id, GRID_KEY};
pub use group::{group_create_binds, group_create_sql, GroupItem};
pub use long::{cut, exact_match, long_values_schema, INDEXED_CHARS};
pub use query::{Prefix, SearchQuery, TotalMode, DEFAULT_COUNT, MAX_COUNT};
pub use registry::{ParamKind, RESOURCE_TYPES};
pub use schema::{index_schema, RAW_INDEXED};
pub use sql::ExtraCondition;
pub use statements::snapshot_sql;
pub use text::{like_escape, normalize};

/// The SQL dialect a statement is generated for. Placeholders are `$1`, `$2`… on both
/// (SQLite accepts `$N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One bind parameter of a generated statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Int(i64),
    Text(String),
    /// A stored body (the store's compressed JSON).
    Bytes(Vec<u8>),
    Bool(bool),
    NullText,
    NullInt,
}

impl Bind {
    /// A text, or a text-typed NULL.
    pub fn text_or_null(v: Option<String>) -> Bind {
        v.map_or(Bind::NullText, Bind::Text)
    }

    /// An integer, or an integer-typed NULL.
    pub fn int_or_null(v: Option<i64>) -> Bind {
        v.map_or(Bind::NullInt, Bind::Int)
    }
}

/// A statement and its binds, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

/// A client error in a search request: names the parameter at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchError {
    /// The query parameter as the client wrote it (e.g. `birthdate`, `_sort`).
    pub param: String,
    pub message: String,
}

impl std::fmt::Display for SearchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "search parameter '{}': {}", self.param, self.message)
    }
}

impl std::error::Error for SearchError {}

/// A search parameter as advertised in the CapabilityStatement.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    pub code: String,
    /// The FHIR search parameter type (`token`, `string`, `date`…).
    pub kind: String,
    /// The SearchParameter canonical URL.
    pub definition: String,
    pub documentation: String,
}

/// The R4 search parameters of the served resource types. Build once with
/// [`Registry::r4`] and share.
pub struct Registry {
    defs: registry::Defs,
}

impl Registry {
    /// Parses the embedded R4 SearchParameter bundle.
    pub fn r4() -> Registry {
        Registry { defs: registry::load(&[]) }
    }

    /// The R4 parameters plus a server's own `SearchParameter` resources (their
    /// `code`, `base`, `type`, `expression`, `target`); one whose expression does not
    /// parse is left out, like an R4 one.
    pub fn with_extra(extra: &[Value]) -> Registry {
        Registry { defs: registry::load(extra) }
    }

    /// The same registry, whose cupola `open-to` parameter (`Slot?open-to=U`) takes
    /// the priority classes `classes`, which the caller reads from its rules: any
    /// other value is refused with a message that names these.
    pub fn with_open_to_classes(mut self, classes: Vec<String>) -> Registry {
        self.defs.open_to_classes = classes;
        self
    }

    /// The same registry without the parameters `off` (`(type, code)`): they are
    /// neither indexed nor searched, a search on one being refused as unknown.
    pub fn without(mut self, off: &[(String, String)]) -> Registry {
        self.defs.remove(off);
        self
    }

    /// Every parameter supported for `resource_type` (including `_id`,
    /// `_lastUpdated`, `_tag`, `_profile`, `_security`, `_source`), by code. Empty for
    /// an unknown type. `_text`, `_content` and `_query` are not listed; `near`
    /// (Location, type `special`) is.
    pub fn params_of(&self, resource_type: &str) -> Vec<ParamInfo> {
        self.defs
            .of_type(resource_type)
            .filter(|d| registry::Defs::searchable(d))
            .map(|d| ParamInfo {
                code: d.code.clone(),
                kind: d.kind.as_str().to_string(),
                definition: d.url.clone(),
                documentation: d.description.clone(),
            })
            .collect()
    }

    /// `(type, code)` of every reference parameter that only narrows others of its
    /// type to one target type (`Appointment.patient`: `actor` to a Patient), sorted.
    /// They have no index rows of their own: they are searched in those parameters'.
    pub fn narrowing_params(&self) -> Vec<(String, String)> {
        self.defs.narrowing_params()
    }

    /// Where `code` of `rtype` is searched when it narrows others: the parameters
    /// whose rows hold it, and the one target type (`patient` of Appointment:
    /// `(["actor"], "Patient")`); `None` for any other parameter.
    pub fn narrowing(&self, rtype: &str, code: &str) -> Option<(Vec<String>, String)> {
        self.defs.narrowed(rtype, code).map(|n| (n.from.clone(), n.target_type.clone()))
    }

    /// The index rows of a resource of type `resource_type` (deduplicated). Values
    /// that do not parse (an invalid date…) are skipped, never an error.
    pub fn extract(&self, resource_type: &str, resource: &Value) -> Vec<IndexRow> {
        extract::extract(&self.defs, resource_type, resource)
    }

    /// One multi-row `INSERT` per index table that has rows (split below the SQLite
    /// bind limit); no statement for an empty table.
    pub fn index_inserts(&self, res_pk: i64, resource_type: &str, rows: &[IndexRow], _d: Dialect) -> Vec<Sql> {
        schema::inserts(res_pk, resource_type, rows)
    }

    /// The index rows of many resources of one type (`(pk, rows)` each) in as few
    /// multi-row `INSERT`s as the bind limit allows.
    pub fn index_inserts_many(&self, resource_type: &str, items: &[(i64, Vec<IndexRow>)]) -> Vec<Sql> {
        schema::inserts_many(resource_type, items)
    }

    /// An update's index writes: the rows of each parameter whose rows changed
    /// between `old` (those of the version replaced, extracted from its body) and
    /// `new` deleted and inserted again; untouched parameters cost nothing.
    pub fn index_changes(&self, res_pk: i64, resource_type: &str, old: &[IndexRow], new: &[IndexRow]) -> Vec<Sql> {
        schema::changes(res_pk, resource_type, old, new)
    }

    /// Deletes every index row of a resource (one `DELETE` per index table).
    pub fn index_deletes(&self, res_pk: i64, _d: Dialect) -> Vec<Sql> {
        schema::deletes(res_pk)
    }

    /// Parses decoded query pairs, in order, for a search on `resource_type`. Unknown
    /// or unsupported parameters are errors, or with `lenient` ignored and listed in
    /// [`SearchQuery::warnings`]; malformed values are always errors.
    pub fn parse_search(
        &self,
        resource_type: &str,
        params: &[(String, String)],
        lenient: bool,
    ) -> Result<SearchQuery, SearchError> {
        parse::parse_search(&self.defs, resource_type, params, lenient)
    }
}
