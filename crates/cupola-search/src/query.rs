//! A parsed search: filters, sort, paging and result parameters, with the accessors
//! the caller needs and the canonical query string for `self`/`next`/`previous`.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::numbers::SearchNumber;
use crate::registry::{Defs, Narrowed};
use crate::schema::Table;
use crate::sql::ExtraCondition;

/// A search prefix (`eq`, `ne`, `gt`, `lt`, `ge`, `le`, `sa`, `eb`, `ap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

/// `_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalMode {
    None,
    Estimate,
    Accurate,
}

/// `_summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SummaryMode {
    True,
    Text,
    Data,
    Count,
    False,
}

impl SummaryMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SummaryMode::True => "true",
            SummaryMode::Text => "text",
            SummaryMode::Data => "data",
            SummaryMode::Count => "count",
            SummaryMode::False => "false",
        }
    }
}

/// How a token search constrains the system.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SystemMatch {
    Any,
    Null,
    Is(String),
}

/// One OR-ed value condition on an index row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    StrPrefix(String),
    StrExact(String),
    StrContains(String),
    Token {
        system: SystemMatch,
        code: Option<String>,
    },
    TokenText(String),
    /// `lo`/`hi`: the search range (already widened for `ap`).
    Date {
        prefix: Prefix,
        lo: i64,
        hi: i64,
    },
    Number {
        prefix: Prefix,
        n: SearchNumber,
    },
    Quantity {
        prefix: Prefix,
        n: SearchNumber,
        system: Option<String>,
        code: Option<String>,
    },
    Ref {
        target_type: Option<String>,
        id: String,
    },
    RefUrl {
        url: String,
        target: Option<(String, String)>,
    },
    RefIdentifier {
        system: Option<String>,
        value: Option<String>,
    },
    Uri(String),
    UriBelow(String),
    UriAbove(Vec<String>),
}

/// Where a parameter's values are in the index: its own rows (`param = code`), or,
/// for a parameter that narrows others to one target type, their rows of that type
/// (see [`crate::registry::Narrowed`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParamRows {
    pub code: String,
    pub narrowed: Option<Narrowed>,
}

impl ParamRows {
    /// A parameter with rows of its own.
    pub fn own(code: &str) -> ParamRows {
        ParamRows { code: code.to_string(), narrowed: None }
    }

    /// Parameter `code` of `rtype`.
    pub fn of(defs: &Defs, rtype: &str, code: &str) -> ParamRows {
        ParamRows { code: code.to_string(), narrowed: defs.narrowed(rtype, code).cloned() }
    }
}

/// One AND-ed filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    Id(Vec<String>),
    LastUpdated(Vec<Cond>),
    Missing {
        table: Table,
        param: ParamRows,
        missing: bool,
    },
    Values {
        table: Table,
        param: ParamRows,
        ors: Vec<Cond>,
        not: bool,
    },
    /// Components are stored as `param$0`, `param$1`… sharing a group number.
    Composite {
        param: String,
        tables: Vec<Table>,
        ors: Vec<Vec<Cond>>,
    },
    Chain {
        param: ParamRows,
        target_type: String,
        inner: Box<Filter>,
    },
    /// `near` (Location), OR-ed values.
    Near(Vec<crate::near::Near>),
    /// Any of these (cupola's `Slot?open-to=`, see `parse`).
    AnyOf(Vec<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SortExpr {
    Id,
    LastUpdated,
    Param { table: Table, param: ParamRows },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SortKey {
    pub expr: SortExpr,
    pub desc: bool,
}

/// An `_include` (`rev = false`) or `_revinclude`: resources of `source_type` whose
/// reference parameter `param` (all reference parameters when `None`) points to…
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Include {
    pub rev: bool,
    pub source_type: String,
    pub param: Option<ParamRows>,
    pub target_type: Option<String>,
}

/// A parsed search request. Build it with [`crate::Registry::parse_search`]; get its
/// SQL with [`SearchQuery::page_sql`], [`SearchQuery::count_sql`],
/// [`SearchQuery::include_sql`] and [`SearchQuery::conditional_sql`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub(crate) resource_type: String,
    pub(crate) filters: Vec<Filter>,
    pub(crate) sort: Vec<SortKey>,
    pub(crate) count: usize,
    pub(crate) offset: usize,
    pub(crate) snapshot: Option<i64>,
    pub(crate) total: Option<TotalMode>,
    pub(crate) summary: Option<SummaryMode>,
    pub(crate) elements: Vec<String>,
    pub(crate) includes: Vec<Include>,
    pub(crate) warnings: Vec<String>,
    /// The request's own parameters, as given, in order, for links (without the
    /// paging ones, `_format` and `_pretty`, or ignored ones).
    pub(crate) link_params: Vec<(String, String)>,
    /// Caller conditions AND-ed into every statement (see [`SearchQuery::restrict`]).
    pub(crate) restrictions: Vec<ExtraCondition>,
}

/// Default page size.
pub const DEFAULT_COUNT: usize = 20;
/// Largest page size; larger `_count` values are clamped (with a warning).
pub const MAX_COUNT: usize = 1000;

const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b':');

impl SearchQuery {
    pub(crate) fn new(resource_type: &str) -> SearchQuery {
        SearchQuery {
            resource_type: resource_type.to_string(),
            filters: Vec::new(),
            sort: Vec::new(),
            count: DEFAULT_COUNT,
            offset: 0,
            snapshot: None,
            total: None,
            summary: None,
            elements: Vec::new(),
            includes: Vec::new(),
            warnings: Vec::new(),
            link_params: Vec::new(),
            restrictions: Vec::new(),
        }
    }

    /// The searched resource type.
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// Page size (`_count`, default 20, at most 1000; may be 0).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Index of the first result of this page (`_offset`, default 0).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The snapshot bound carried by a later page's links (`_snapshot`); `None` on a
    /// first page: then run [`SearchQuery::snapshot_sql`] and pass its value to the
    /// statements and links of this search.
    pub fn snapshot(&self) -> Option<i64> {
        self.snapshot
    }

    /// `_total`, when given.
    pub fn total(&self) -> Option<TotalMode> {
        self.total
    }

    /// Whether to run [`SearchQuery::count_sql`]: unless `_total=none` (always for
    /// `_summary=count`).
    pub fn wants_total(&self) -> bool {
        self.total != Some(TotalMode::None) || self.count_only()
    }

    /// Only the count is wanted (`_summary=count` or `_count=0`): no page query.
    pub fn count_only(&self) -> bool {
        self.summary == Some(SummaryMode::Count) || self.count == 0
    }

    /// `_summary` (`true`, `text`, `data`, `count` or `false`), when given.
    pub fn summary(&self) -> Option<&'static str> {
        self.summary.map(SummaryMode::as_str)
    }

    /// `_elements` (empty when not given).
    pub fn elements(&self) -> &[String] {
        &self.elements
    }

    /// Parameters ignored (lenient mode, empty values) and values adjusted
    /// (`_count` clamped, `:iterate` treated once), for an OperationOutcome.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether `_include` / `_revinclude` were asked for.
    pub fn has_includes(&self) -> bool {
        !self.includes.is_empty()
    }

    /// Adds a condition (e.g. visibility) to every statement of this search: the
    /// searched resources, chained targets and included resources must satisfy it.
    pub fn restrict(&mut self, extra: ExtraCondition) {
        self.restrictions.push(extra);
    }

    /// The conditions added with [`SearchQuery::restrict`].
    pub fn restrictions(&self) -> &[ExtraCondition] {
        &self.restrictions
    }

    /// The offset of the previous page, `None` on the first page.
    pub fn previous_offset(&self) -> Option<usize> {
        (self.offset > 0).then(|| self.offset.saturating_sub(self.count.max(1)))
    }

    /// The offset of the next page.
    pub fn next_offset(&self) -> usize {
        self.offset.saturating_add(self.count.max(1))
    }

    /// The canonical, percent-encoded query string (no leading `?`) of the page of
    /// this search starting at `offset`, within `snapshot`: the request's parameters
    /// in their order, then `_count`, `_snapshot` and `_offset`. Use it for `self`
    /// (`offset()`), `next` (`next_offset()`) and `previous` (`previous_offset()`).
    pub fn link_query(&self, offset: usize, snapshot: i64) -> String {
        let mut pairs: Vec<(String, String)> = self.link_params.clone();
        pairs.push(("_count".into(), self.count.to_string()));
        pairs.push(("_snapshot".into(), snapshot.to_string()));
        pairs.push(("_offset".into(), offset.to_string()));
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, QUERY), utf8_percent_encode(v, QUERY)))
            .collect::<Vec<_>>()
            .join("&")
    }
}
