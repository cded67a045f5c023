//! `Location?near=…`: parsing, and searches on SQLite and PostgreSQL.

use serde_json::{json, Value};

use super::db::Db;
use super::{pairs, registry};
use crate::near::{parse, Near};
use crate::query::Filter;
use crate::SearchError;

fn location(id: &str, position: Option<(f64, f64)>) -> Value {
    let mut l = json!({"resourceType": "Location", "id": id, "name": id, "status": "active"});
    if let Some((lat, long)) = position {
        l["position"] = json!({"latitude": lat, "longitude": long});
    }
    l
}

fn error(q: &[(&str, &str)]) -> SearchError {
    match registry().parse_search("Location", &pairs(q), false) {
        Err(e) => e,
        Ok(q) => panic!("expected an error for {q:?}"),
    }
}

#[test]
fn parses_values() {
    let n = parse("44.41|8.93|5|km").expect("km");
    assert_eq!((n.lat, n.long), (44_410_000, 8_930_000));
    // 5 km / 111.195 km per degree.
    assert_eq!(n.radius, 44_967);
    assert_eq!(n.cos, 714_351);
    let default = parse("44.41|8.93").expect("default");
    assert_eq!(default.radius, parse("44.41|8.93|10|km").expect("10").radius);
    assert_eq!(parse("44.41|8.93|10").ok(), parse("44.41|8.93|10|km").ok());
    assert_eq!(parse("44.41|8.93||km").ok(), Some(default));
    let m = |s: &str| parse(s).map(|n: Near| n.radius).expect(s);
    assert_eq!(m("44.41|8.93|5000|m"), m("44.41|8.93|5|km"));
    assert_eq!(m("0|0|1|[mi_i]"), m("0|0|1|mi"));
    assert_eq!(m("0|0|1.609344|km"), m("0|0|1|mi"));
    assert_eq!(parse("44.41|8.93|5|http://unitsofmeasure.org|km").ok(), parse("44.41|8.93|5|km").ok());
    assert_eq!(m("0|0|99999|km"), m("0|0|20100|km"));
    assert!(parse("-90|-180|0|m").is_ok());
    for bad in [
        "x|8.93",
        "44.41",
        "91|8",
        "-90.5|8",
        "44|181",
        "44|8|five|km",
        "44|8|-1|km",
        "44|8|5|furlong",
        "44|8|5|http://x|km",
        "44|8|5|km|x|y",
        "1e400|8",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn parameter_errors_name_near() {
    for q in [
        ("near", "91|8|5|km"),
        ("near", "44|8|5|parsec"),
        ("near", "abc"),
        ("near", "44|8,x"),
        ("near:exact", "44|8"),
        ("near:missing", "maybe"),
    ] {
        assert_eq!(error(&[q]).param, q.0, "{q:?}");
    }
    assert_eq!(error(&[("_sort", "near")]).param, "_sort");
    let near = registry().params_of("Location").into_iter().find(|p| p.code == "near").expect("near listed");
    assert_eq!(near.kind, "special");
    assert!(registry().params_of("Patient").iter().all(|p| p.code != "near"));
    let q = registry().parse_search("Location", &pairs(&[("near", "1|2,3|4|5|m")]), false).expect("ors");
    assert!(matches!(&q.filters[0], Filter::Near(v) if v.len() == 2));
    assert_eq!(q.link_query(0, 9), "near=1%7C2%2C3%7C4%7C5%7Cm&_count=20&_snapshot=9&_offset=0");
}

type Case = (&'static [(&'static str, &'static str)], &'static [i64]);

#[tokio::test]
async fn near_searches() {
    for mut db in Db::all().await {
        let positions = [
            ("genova", Some((44.4056, 8.9463))),
            ("savona", Some((44.3091, 8.4772))),
            ("spezia", Some((44.1025, 9.8241))),
            ("nowhere", None),
            ("suva", Some((-18.1416, 178.4419))),
            ("longyearbyen", Some((78.2232, 15.6267))),
            // Out-of-range data (not validated here): must neither match nor overflow.
            ("bogus-long", Some((44.41, 9.0e7))),
            ("bogus-both", Some((1.0e15, -1.0e15))),
        ];
        for (id, pos) in positions {
            db.put(&location(id, pos), "2020-01-01T00:00:00Z").await;
        }
        let role = json!({"resourceType": "PractitionerRole", "id": "r",
            "location": [{"reference": "Location/genova"}]});
        db.put(&role, "2020-01-01T00:00:00Z").await;
        check(&db).await;
        db.finish().await;
    }
}

async fn check(db: &Db) {
    let cases: Vec<Case> = vec![
        (&[("near", "44.41|8.93|10|km")], &[1]),
        (&[("near", "44.41|8.93|60|km")], &[1, 2]),
        (&[("near", "44.41|8.93|100|km")], &[1, 2, 3]),
        (&[("near", "44.41|8.93|37|km")], &[1]),
        (&[("near", "44.41|8.93|39|km")], &[1, 2]),
        (&[("near", "44.41|8.93|78|km")], &[1, 2]),
        (&[("near", "44.41|8.93|80|km")], &[1, 2, 3]),
        (&[("near", "44.41|8.93")], &[1]),
        (&[("near", "44.41|8.93|1|km")], &[]),
        (&[("near", "44.41|8.93|1500|m")], &[1]),
        (&[("near", "44.41|8.93|30|mi")], &[1, 2]),
        (&[("near", "44.41|8.93|50|[mi_i]")], &[1, 2, 3]),
        (&[("near", "44.41|8.93|100|http://unitsofmeasure.org|km")], &[1, 2, 3]),
        (&[("near", "44.10|9.82|5|km,44.31|8.48|5|km")], &[2, 3]),
        (&[("near:missing", "true")], &[4]),
        (&[("near:missing", "false")], &[1, 2, 3, 5, 6, 7, 8]),
        (&[("near", "44.41|8.93|100|km"), ("name", "savona")], &[2]),
        (&[("near", "44.41|8.93|100|km"), ("_sort", "-name")], &[3, 2, 1]),
        (&[("near", "44.41|8.93|100|km"), ("_count", "2")], &[1, 2]),
        (&[("near", "44.41|8.93|100|km"), ("_count", "1"), ("_offset", "1"), ("_total", "accurate")], &[2]),
        // Across the antimeridian (≈ 175 km), and not from the other side of the world.
        (&[("near", "-18.14|-179.9|200|km")], &[5]),
        (&[("near", "-18.14|-179.9|150|km")], &[]),
        (&[("near", "-18.14|1.6|200|km")], &[]),
        // A circle reaching the pole: latitude band.
        (&[("near", "89.9|-170|1400|km")], &[6]),
        (&[("near", "89.9|-170|1000|km")], &[]),
        (&[("near", "0|0|20000|km")], &[1, 2, 3, 5, 6]),
        (&[("near", "90|180|1e30|km")], &[1, 2, 3, 5, 6]),
        (&[("near", "-90|-180|0|m")], &[]),
        (&[("near", "44.4056|8.9463|0|m")], &[1]),
        (&[("near", "-18.1416|179.99|1e-30|[mi_i]")], &[]),
    ];
    for (q, expected) in cases {
        assert_eq!(db.search("Location", q).await, expected, "{:?} {q:?}", db.dialect);
    }
    assert_eq!(db.count("Location", &[("near", "44.41|8.93|100|km"), ("_count", "1")]).await, 3);
    assert_eq!(db.count("Location", &[("near", "44.41|8.93|60|km")]).await, 2);
    for (v, expected) in [("44.41|8.93|5|km", vec![9]), ("44.31|8.48|5|km", vec![])] {
        let got = db.search("PractitionerRole", &[("location.near", v)]).await;
        assert_eq!(got, expected, "{:?} {v}", db.dialect);
    }
}
