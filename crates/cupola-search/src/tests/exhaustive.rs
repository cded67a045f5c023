//! Every parameter of every type: no panic on hostile input, and valid SQL on
//! both engines for a representative value of each.

use super::db::Db;
use super::{pairs, registry};
use crate::registry::ParamKind;
use crate::RESOURCE_TYPES;

const MODIFIERS: &[&str] = &[
    "",
    ":missing",
    ":exact",
    ":contains",
    ":text",
    ":not",
    ":above",
    ":below",
    ":identifier",
    ":Patient",
    ":Nope",
    ":",
];
const VALUES: &[&str] = &[
    "",
    ",",
    "\\",
    "|",
    "||",
    "$",
    "a$b$c",
    "x'; DROP TABLE resources;--",
    "%_\\%",
    "ge",
    "ap",
    "eq-1",
    "2023-02-31",
    "9999-12-31T23:59:59.9999999+14:00",
    "0001",
    "1e999999",
    "0.00000000000000000000000000000001",
    "-99999999999999999999",
    "Patient/",
    "/1",
    "http://",
    "urn:uuid:x",
    "Patient/1/_history/",
    "é\u{10FFFF}\u{0}",
    "true",
    "a|b|c",
    "gt5|s|c",
    "90|180|1e30|km",
    "-90|-180|0|m",
    "1e-30|179.9999999|1e-30|[mi_i]",
];

fn representative(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::String => "a",
        ParamKind::Token => "s|c",
        ParamKind::Date => "ge2020",
        ParamKind::Number => "gt1",
        ParamKind::Quantity => "1|s|c",
        ParamKind::Reference => "Patient/1",
        ParamKind::Uri => "http://x",
        ParamKind::Special => "44.41|8.93|5|km",
        ParamKind::Composite => "",
    }
}

#[test]
fn hostile_input_never_panics() {
    let r = registry();
    for t in RESOURCE_TYPES {
        let mut codes: Vec<String> = r.params_of(t).into_iter().map(|p| p.code).collect();
        codes.extend(
            [
                "_sort",
                "_count",
                "_offset",
                "_snapshot",
                "_include",
                "_revinclude",
                "_elements",
                "nope",
                "patient.name",
                "subject.nope.x",
            ]
            .map(String::from),
        );
        for code in &codes {
            for m in MODIFIERS {
                for v in VALUES {
                    let key = format!("{code}{m}");
                    for lenient in [false, true] {
                        if let Ok(q) = r.parse_search(t, &pairs(&[(&key, v)]), lenient) {
                            let _ = q.page_sql(crate::Dialect::Sqlite, 1);
                            let _ = q.count_sql(crate::Dialect::Postgres, 1);
                            let _ = q.include_sql(crate::Dialect::Sqlite, &[1, 2], &[]);
                            let _ = q.link_query(q.next_offset(), 1);
                        }
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn every_parameter_runs() {
    let r = registry();
    for db in Db::all().await {
        for t in RESOURCE_TYPES {
            for p in r.params_of(t) {
                let Some(def) = r.defs.get(t, &p.code) else {
                    continue;
                };
                let value = match def.kind {
                    ParamKind::Composite => {
                        def.components.iter().map(|c| representative(c.kind)).collect::<Vec<_>>().join("$")
                    }
                    ParamKind::Date if p.code == "_lastUpdated" => "ge2020".into(),
                    _ if p.code == "_id" => "x".into(),
                    k => representative(k).into(),
                };
                let mut q = vec![(p.code.clone(), value), (format!("{}:missing", p.code), "false".into())];
                if !matches!(def.kind, ParamKind::Composite | ParamKind::Special) {
                    q.push(("_sort".into(), format!("-{}", p.code)));
                }
                if def.kind == ParamKind::Reference {
                    q.push(("_include".into(), format!("{t}:{}", p.code)));
                    q.push(("_revinclude".into(), format!("{t}:{}", p.code)));
                }
                if p.code == "_id" || p.code == "_lastUpdated" {
                    q.retain(|(k, _)| !k.ends_with(":missing"));
                }
                let query = r.parse_search(t, &q, false).unwrap_or_else(|e| panic!("{t}?{q:?}: {e}"));
                assert!(db.pks(&query.page_sql(db.dialect, i64::MAX)).await.is_empty(), "{t} {q:?}");
                assert_eq!(db.scalar(&query.count_sql(db.dialect, i64::MAX)).await, 0);
                for inc in query.include_sql(db.dialect, &[1], &[]) {
                    assert!(db.pks(&inc).await.is_empty());
                }
            }
        }
        db.finish().await;
    }
}
