//! SQL fragments for filters and value conditions. Every client value is bound;
//! only table / column names from this crate are written into the text.

use crate::numbers::SearchNumber;
use crate::query::{Cond, Filter, ParamRows, Prefix, SystemMatch};
use crate::schema::Table;
use crate::text::prefix_upper;
use crate::Bind;

/// An extra condition the caller adds to every statement of a search (e.g.
/// visibility), with [`crate::SearchQuery::restrict`]. `sql` is a boolean SQL
/// expression where `{pk}` and `{type}` stand for the candidate resource's
/// `resources.pk` and `resources.res_type` columns, and `$1`, `$2`… number its own
/// `binds` (renumbered when embedded). It is applied
/// to the searched resources, to chained targets and to included resources.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraCondition {
    pub sql: String,
    pub binds: Vec<Bind>,
}

impl ExtraCondition {
    /// The condition on the `resources` row aliased `alias`, parenthesised, its
    /// placeholders numbered after the `offset` binds that come before its own.
    pub fn render(&self, alias: &str, offset: usize) -> String {
        self.render_on(&format!("{alias}.pk"), &format!("{alias}.res_type"), offset)
    }

    /// The same with `{pk}` / `{type}` standing for the SQL expressions `pk` / `ty`.
    pub fn render_on(&self, pk: &str, ty: &str, offset: usize) -> String {
        let text = self.sql.replace("{pk}", pk).replace("{type}", ty);
        let mut out = String::with_capacity(text.len() + 8);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '$' {
                let mut num = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    num.push(*d);
                    chars.next();
                }
                match num.parse::<usize>() {
                    Ok(n) => out.push_str(&(n + offset).to_string()),
                    Err(_) => out.push_str(&num),
                }
            }
        }
        format!("({out})")
    }
}

/// Accumulates binds; fragments refer to them by number.
#[derive(Default)]
pub(crate) struct Builder {
    pub binds: Vec<Bind>,
}

impl Builder {
    pub fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }

    pub fn text(&mut self, s: &str) -> String {
        self.bind(Bind::Text(s.to_string()))
    }

    pub fn int(&mut self, i: i64) -> String {
        self.bind(Bind::Int(i))
    }

    /// The caller's extra condition on `pk_col`, its placeholders renumbered.
    pub fn extra(&mut self, extra: &ExtraCondition, pk_col: &str) -> String {
        let offset = self.binds.len();
        self.binds.extend(extra.binds.iter().cloned());
        extra.render(pk_col.trim_end_matches(".pk"), offset)
    }

    /// ` AND (extra)` for each extra condition, on `pk_col`.
    pub fn extras(&mut self, extras: &[ExtraCondition], pk_col: &str) -> String {
        extras.iter().map(|e| format!(" AND {}", self.extra(e, pk_col))).collect()
    }

    /// The condition on index alias `a` that selects the rows of parameter `p`: its
    /// own, or those of the parameters it narrows whose target has its type.
    pub fn rows(&mut self, a: &str, p: &ParamRows) -> String {
        match &p.narrowed {
            None => format!("{a}.param = {}", self.text(&p.code)),
            Some(n) => {
                let from: Vec<String> = n.from.iter().map(|c| self.text(c)).collect();
                format!("{a}.param IN ({}) AND {a}.target_type = {}", from.join(", "), self.text(&n.target_type))
            }
        }
    }

    /// `col` starts with `prefix`, as a binary range (index friendly on both engines).
    pub(crate) fn prefix(&mut self, col: &str, prefix: &str) -> String {
        if prefix.is_empty() {
            return format!("{col} IS NOT NULL");
        }
        let lo = self.text(prefix);
        match prefix_upper(prefix) {
            Some(up) => format!("({col} >= {lo} AND {col} < {})", self.text(&up)),
            None => format!("{col} >= {lo}"),
        }
    }

    /// One AND-ed filter on resources aliased `a` (index tables aliased `ix…`).
    pub fn filter(&mut self, f: &Filter, rtype: &str, a: &str, ix: &str, extra: &[ExtraCondition]) -> String {
        self.filter_on(f, rtype, &format!("{a}.pk"), a, ix, extra)
    }

    /// The same, with `pk` the expression whose index rows are searched (a generated
    /// slot's are its agenda's: see [`crate::grid`]).
    pub fn filter_on(
        &mut self,
        f: &Filter,
        rtype: &str,
        pk: &str,
        a: &str,
        ix: &str,
        extra: &[ExtraCondition],
    ) -> String {
        match f {
            Filter::Id(ids) => {
                let ph: Vec<String> = ids.iter().map(|i| self.text(i)).collect();
                format!("{a}.res_id IN ({})", ph.join(", "))
            }
            Filter::LastUpdated(conds) => {
                let col = format!("{a}.last_updated");
                let parts: Vec<String> = conds.iter().map(|c| self.cond(c, &col, &col, ix)).collect();
                format!("({})", parts.join(" OR "))
            }
            Filter::Missing { table, param, missing } => self.missing(*table, param, *missing, rtype, pk, ix),
            Filter::Values { table, param, ors, not } => {
                let (t, p) = (self.text(rtype), self.rows(ix, param));
                let (lo, hi) = (format!("{ix}.lo"), format!("{ix}.hi"));
                let parts: Vec<String> = ors.iter().map(|c| self.cond(c, &lo, &hi, ix)).collect();
                let not = if *not { "NOT " } else { "" };
                format!(
                    "{pk} {not}IN (SELECT {ix}.res_pk FROM {} {ix} WHERE {ix}.res_type = {t} AND {p} AND ({}))",
                    table.name(),
                    parts.join(" OR ")
                )
            }
            Filter::Composite { param, tables, ors } => self.composite(param, tables, ors, rtype, pk, ix),
            // A Slot is near a point when its facility is (cupola's `Slot-near`).
            Filter::Near(ors) if rtype == "Slot" => {
                let near = Filter::Near(ors.clone());
                let chain = Filter::Chain {
                    param: ParamRows::own("location"),
                    target_type: "Location".into(),
                    inner: Box::new(near),
                };
                self.filter_on(&chain, rtype, pk, a, ix, extra)
            }
            Filter::Near(ors) => self.near(ors, rtype, pk, ix),
            Filter::AnyOf(alternatives) => {
                let parts: Vec<String> =
                    alternatives.iter().map(|f| self.filter_on(f, rtype, pk, a, ix, extra)).collect();
                format!("({})", parts.join(" OR "))
            }
            Filter::Chain { param, target_type, inner } => self.chain(param, target_type, inner, rtype, pk, extra),
        }
    }

    /// `code:missing`: resources with no (or with some) index rows of the parameter.
    fn missing(&mut self, table: Table, param: &ParamRows, missing: bool, rtype: &str, pk: &str, ix: &str) -> String {
        let (t, p) = (self.text(rtype), self.rows(ix, param));
        let not = if missing { "NOT " } else { "" };
        format!("{pk} {not}IN (SELECT {ix}.res_pk FROM {} {ix} WHERE {ix}.res_type = {t} AND {p})", table.name())
    }

    /// `ref.chained=value`: resources whose reference `param` names a `target_type`
    /// resource matching `inner` (and, for a Slot, a generated slot that does).
    fn chain(
        &mut self,
        param: &ParamRows,
        target_type: &str,
        inner: &Filter,
        rtype: &str,
        pk: &str,
        extra: &[ExtraCondition],
    ) -> String {
        let (t, p, tt, f) =
            (self.text(rtype), self.rows("x", param), self.text(target_type), self.bind(Bind::Bool(false)));
        let inner_sql = self.filter(inner, target_type, "t", "j", extra);
        let extra_sql = self.extras(extra, "t.pk");
        let stored = format!(
            "{pk} IN (SELECT x.res_pk FROM idx_reference x JOIN resources t ON t.res_type = x.target_type AND t.res_id = x.target_id \
             WHERE x.res_type = {t} AND {p} AND x.target_type = {tt} AND t.deleted = {f} AND {inner_sql}{extra_sql})"
        );
        if target_type != "Slot" {
            return stored;
        }
        // A generated slot is referred to by its id only.
        let ids = self.grid_chain_ids(inner, extra);
        let (t2, p2) = (self.text(rtype), self.rows("x", param));
        format!(
            "({stored} OR {pk} IN (SELECT x.res_pk FROM idx_reference x WHERE x.res_type = {t2} AND {p2} \
             AND x.target_type = 'Slot' AND x.target_id IN ({ids})))"
        )
    }

    fn composite(
        &mut self,
        param: &str,
        tables: &[Table],
        ors: &[Vec<Cond>],
        rtype: &str,
        pk: &str,
        ix: &str,
    ) -> String {
        let t = self.text(rtype);
        let mut from = String::new();
        let mut wheres = Vec::new();
        for (i, table) in tables.iter().enumerate() {
            let p = self.text(&format!("{param}${i}"));
            let alias = format!("{ix}{i}");
            if i == 0 {
                from.push_str(&format!("{} {alias}", table.name()));
                wheres.push(format!("{alias}.res_type = {t} AND {alias}.param = {p}"));
            } else {
                from.push_str(&format!(
                    " JOIN {} {alias} ON {alias}.res_pk = {ix}0.res_pk AND {alias}.grp = {ix}0.grp AND {alias}.param = {p}",
                    table.name()
                ));
            }
        }
        let alts: Vec<String> = ors
            .iter()
            .map(|conds| {
                let parts: Vec<String> = conds
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let alias = format!("{ix}{i}");
                        self.cond(c, &format!("{alias}.lo"), &format!("{alias}.hi"), &alias)
                    })
                    .collect();
                format!("({})", parts.join(" AND "))
            })
            .collect();
        format!("{pk} IN (SELECT {ix}0.res_pk FROM {from} WHERE {} AND ({}))", wheres.join(" AND "), alts.join(" OR "))
    }

    /// One value condition on index alias `ix` (`lo`/`hi`: the range columns).
    pub(crate) fn cond(&mut self, c: &Cond, lo: &str, hi: &str, ix: &str) -> String {
        match c {
            Cond::StrPrefix(p) => self.long_prefix(&format!("{ix}.value_norm"), p),
            Cond::StrExact(s) => self.long_eq(&format!("{ix}.value_exact"), s),
            Cond::StrContains(s) => self.long_contains(&format!("{ix}.value_norm"), s),
            Cond::Token { system, code } => self.token(system, code.as_deref(), ix),
            Cond::TokenText(t) => self.prefix(&format!("{ix}.text_norm"), t),
            Cond::Date { prefix, lo: slo, hi: shi } => self.date(*prefix, (*slo, *shi), lo, hi),
            Cond::Number { prefix, n } => self.number(*prefix, n, lo, hi),
            Cond::Quantity { prefix, n, system, code } => {
                let mut parts = vec![self.number(*prefix, n, lo, hi)];
                parts.extend(self.unit(system.as_deref(), code.as_deref(), ix));
                format!("({})", parts.join(" AND "))
            }
            Cond::Ref { target_type, id } => {
                let mut s = format!("{ix}.target_id = {}", self.text(id));
                if let Some(t) = target_type {
                    s = format!("({s} AND {ix}.target_type = {})", self.text(t));
                }
                s
            }
            Cond::RefUrl { url, target } => self.ref_url(url, target.as_ref(), ix),
            Cond::RefIdentifier { system, value } => {
                let mut parts = Vec::new();
                if let Some(v) = value {
                    parts.push(self.long_eq(&format!("{ix}.ident_value"), v));
                }
                if let Some(s) = system {
                    parts.push(format!("{ix}.ident_system = {}", self.text(s)));
                }
                if parts.is_empty() {
                    parts.push(format!("{ix}.ident_value IS NOT NULL"));
                }
                format!("({})", parts.join(" AND "))
            }
            Cond::Uri(u) => self.long_eq(&format!("{ix}.uri"), u),
            Cond::UriBelow(p) => self.long_prefix(&format!("{ix}.uri"), p),
            Cond::UriAbove(list) => self.long_in(&format!("{ix}.uri"), list),
        }
    }

    /// `system|code`, either part possibly absent.
    fn token(&mut self, system: &SystemMatch, code: Option<&str>, ix: &str) -> String {
        let mut parts = Vec::new();
        if let Some(code) = code {
            parts.push(self.long_eq(&format!("{ix}.code"), code));
        }
        match system {
            SystemMatch::Any => {}
            SystemMatch::Null => parts.push(format!("{ix}.system IS NULL")),
            SystemMatch::Is(s) => parts.push(self.long_eq(&format!("{ix}.system"), s)),
        }
        if parts.is_empty() {
            parts.push(format!("{ix}.code IS NOT NULL"));
        }
        format!("({})", parts.join(" AND "))
    }

    /// The stored range `[lo, hi]` against the search range `(l, h)` under `prefix`.
    fn date(&mut self, prefix: Prefix, (slo, shi): (i64, i64), lo: &str, hi: &str) -> String {
        let (l, h) = (self.int(slo), self.int(shi));
        match prefix {
            Prefix::Eq => format!("({lo} >= {l} AND {hi} <= {h})"),
            Prefix::Ne => format!("({lo} < {l} OR {hi} > {h})"),
            Prefix::Gt => format!("{hi} > {h}"),
            Prefix::Lt => format!("{lo} < {l}"),
            Prefix::Ge => format!("({hi} > {h} OR ({lo} >= {l} AND {hi} <= {h}))"),
            Prefix::Le => format!("({lo} < {l} OR ({lo} >= {l} AND {hi} <= {h}))"),
            Prefix::Sa => format!("{lo} > {h}"),
            Prefix::Eb => format!("{hi} < {l}"),
            Prefix::Ap => format!("({lo} <= {h} AND {hi} >= {l})"),
        }
    }

    /// A quantity's `system|code` (the code may be the unit), if given.
    fn unit(&mut self, system: Option<&str>, code: Option<&str>, ix: &str) -> Option<String> {
        match (system, code) {
            (Some(s), Some(c)) => Some(format!("{ix}.system = {} AND {ix}.code = {}", self.text(s), self.text(c))),
            (Some(s), None) => Some(format!("{ix}.system = {}", self.text(s))),
            (None, Some(c)) => {
                let c = self.text(c);
                Some(format!("({ix}.code = {c} OR {ix}.unit = {c})"))
            }
            (None, None) => None,
        }
    }

    /// A reference by absolute url (or `urn:`), maybe versioned, maybe local.
    fn ref_url(&mut self, url: &str, target: Option<&(String, String)>, ix: &str) -> String {
        // The url is absolute or a `urn:` (it has a colon), so only rows the
        // partial index on `raw` holds can match; each alternative repeats the
        // index's predicate word for word so that both planners use the index.
        // Unless the colon is past what `raw` holds of a long value.
        let head = crate::long::cut(url).unwrap_or(url);
        let indexed =
            if head.contains(':') { format!("{ix}.{} AND ", crate::schema::RAW_INDEXED) } else { String::new() };
        let raw = format!("{ix}.raw");
        let mut alts = vec![
            format!("({indexed}{})", self.long_eq(&raw, url)),
            format!("({indexed}{})", self.long_prefix(&raw, &format!("{url}|"))),
        ];
        if let Some((t, i)) = target {
            alts.push(format!("({ix}.target_type = {} AND {ix}.target_id = {})", self.text(t), self.text(i)));
        }
        format!("({})", alts.join(" OR "))
    }

    /// Number / quantity comparison: the stored range `[lo, hi]` against the search
    /// value (exact for ordering prefixes, its implicit precision range for eq/ne).
    fn number(&mut self, prefix: Prefix, n: &SearchNumber, lo: &str, hi: &str) -> String {
        match prefix {
            Prefix::Eq => format!("({lo} >= {} AND {hi} < {})", self.int(n.lo), self.int(n.hi)),
            Prefix::Ne => format!("({lo} < {} OR {hi} >= {})", self.int(n.lo), self.int(n.hi)),
            Prefix::Gt => format!("{hi} > {}", self.int(n.floor)),
            Prefix::Lt => format!("{lo} < {}", self.int(n.ceil)),
            Prefix::Ge => format!("{hi} >= {}", self.int(n.ceil)),
            Prefix::Le => format!("{lo} <= {}", self.int(n.floor)),
            Prefix::Sa => format!("{lo} > {}", self.int(n.floor)),
            Prefix::Eb => format!("{hi} < {}", self.int(n.ceil)),
            Prefix::Ap => {
                let (l, h) = (n.floor.saturating_sub(n.tenth), n.ceil.saturating_add(n.tenth));
                format!("({lo} <= {} AND {hi} >= {})", self.int(h), self.int(l))
            }
        }
    }
}
