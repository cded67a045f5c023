//! Searches run for real on SQLite (and PostgreSQL when available).

use serde_json::json;

use super::db::{fill, Db};
use super::{pairs, registry};
use crate::{snapshot_sql, Bind, ExtraCondition};

type Case = ((&'static str, &'static [(&'static str, &'static str)]), Vec<i64>);

#[tokio::test]
async fn searches() {
    for mut db in Db::all().await {
        fill(&mut db).await;
        check_searches(&db).await;
        db.finish().await;
    }
}

async fn check_searches(db: &Db) {
    let s = |t: &'static str, q: &'static [(&'static str, &'static str)]| (t, q);
    let cases: Vec<Case> = vec![
        (s("Patient", &[]), vec![1, 2, 3]),
        (s("Patient", &[("birthdate", "1974-12-25")]), vec![1]),
        (s("Patient", &[("birthdate", "1974")]), vec![1]),
        (s("Patient", &[("birthdate", "eq1980-05-01")]), vec![]),
        (s("Patient", &[("birthdate", "lt1980")]), vec![1]),
        (s("Patient", &[("birthdate", "ge1980-05-01")]), vec![2, 3]),
        (s("Patient", &[("birthdate", "gt1980")]), vec![3]),
        (s("Patient", &[("birthdate", "le1980-05")]), vec![1, 2]),
        (s("Patient", &[("birthdate", "sa1975")]), vec![2, 3]),
        (s("Patient", &[("birthdate", "eb1975")]), vec![1]),
        (s("Patient", &[("birthdate", "ne1974-12-25")]), vec![2, 3]),
        (s("Patient", &[("birthdate", "ap1980-05")]), vec![2]),
        (s("Patient", &[("birthdate", "ge1970"), ("birthdate", "lt1990")]), vec![1, 2]),
        (s("Patient", &[("birthdate", "1974-12-25,2000-01-01")]), vec![1, 3]),
        (s("Patient", &[("birthdate:missing", "true")]), vec![]),
        (s("Patient", &[("gender:missing", "true")]), vec![2]),
        (s("Patient", &[("identifier", "urn:oid:1.2.36.146.595.217.0.1|12345")]), vec![1]),
        (s("Patient", &[("identifier", "12345")]), vec![1]),
        (s("Patient", &[("identifier", "sys|123")]), vec![2]),
        (s("Patient", &[("identifier", "|123")]), vec![]),
        (s("Patient", &[("identifier", "sys|")]), vec![2]),
        (s("Patient", &[("gender:not", "male")]), vec![2, 3]),
        (s("Patient", &[("name", "chal")]), vec![1]),
        (s("Patient", &[("name", "ELO")]), vec![2]),
        (s("Patient", &[("name:exact", "Chalmers")]), vec![1]),
        (s("Patient", &[("name:exact", "chalmers")]), vec![]),
        (s("Patient", &[("name:contains", "ULL")]), vec![2]),
        (s("Patient", &[("family:contains", "alm")]), vec![1]),
        (s("Patient", &[("name:contains", "%")]), vec![]),
        (s("Patient", &[("name", "x'; DROP TABLE resources;--")]), vec![]),
        (s("Patient", &[("_id", "p2,p3")]), vec![2, 3]),
        (s("Patient", &[("_lastUpdated", "ge2021")]), vec![2, 3]),
        (s("Patient", &[("_lastUpdated", "lt2021-01-01T00:00:00Z")]), vec![1]),
        (s("Patient", &[("_profile:below", "http://example.org/fhir")]), vec![3]),
        (s("Patient", &[("_profile:above", "http://example.org/fhir/StructureDefinition/p/x")]), vec![3]),
        (s("Patient", &[("_profile", "http://example.org/fhir/StructureDefinition/p")]), vec![3]),
        (s("Patient", &[("organization", "Organization/1")]), vec![1]),
        (s("Patient", &[("organization", "1")]), vec![1]),
        (s("Patient", &[("organization:missing", "true")]), vec![2, 3]),
        (s("Appointment", &[("actor:Patient.name", "peter")]), vec![5]),
        (s("Appointment", &[("patient.identifier", "sys|123")]), vec![6]),
        (s("Appointment", &[("patient", "p2")]), vec![6]),
        (s("Appointment", &[("actor", "Practitioner/example")]), vec![5]),
        (s("Appointment", &[("date", "ge2014")]), vec![6]),
        (s("Appointment", &[("status", "booked,proposed")]), vec![5, 6]),
        (s("Appointment", &[("service-type:text", "general")]), vec![5]),
        (s("ChargeItem", &[("factor-override", "0.8")]), vec![8]),
        (s("ChargeItem", &[("factor-override", "gt0.5")]), vec![8]),
        (s("ChargeItem", &[("factor-override", "lt0.5")]), vec![]),
        (s("ChargeItem", &[("quantity", "1")]), vec![8]),
        (s("ChargeItem", &[("price-override", "40|urn:iso:std:iso:4217|EUR")]), vec![8]),
        (s("ChargeItem", &[("price-override", "40||EUR")]), vec![8]),
        (s("ChargeItem", &[("price-override", "40|urn:iso:std:iso:4217|USD")]), vec![]),
        (s("ChargeItem", &[("price-override", "ap42")]), vec![8]),
        (s("ChargeItem", &[("price-override", "41")]), vec![]),
        (
            s(
                "ChargeItem",
                &[(
                    "performing-organization:identifier",
                    "http://myhospital/NamingSystem/departments|CARD_INTERMEDIATE_CARE",
                )],
            ),
            vec![8],
        ),
        (s("ChargeItem", &[("occurrence", "2017-01-25")]), vec![8]),
        (s("ChargeItem", &[("occurrence", "2017-01-26")]), vec![]),
        (s("ActivityDefinition", &[("context-type-value", "focus$http://snomed.info/sct|123")]), vec![9]),
        (s("ActivityDefinition", &[("context-type-value", "age$http://snomed.info/sct|123")]), vec![]),
        (s("ActivityDefinition", &[("context-type-quantity", "age$gt30")]), vec![9]),
        (s("ActivityDefinition", &[("context-type-quantity", "focus$gt30")]), vec![]),
        (s("Patient", &[("_sort", "-birthdate")]), vec![3, 2, 1]),
        (s("Patient", &[("_sort", "birthdate")]), vec![1, 2, 3]),
        (s("Patient", &[("_sort", "-family")]), vec![3, 1, 2]),
        (s("Patient", &[("_sort", "family")]), vec![1, 2, 3]),
        (s("Patient", &[("_sort", "gender,_id")]), vec![3, 1, 2]),
        (s("Patient", &[("_sort", "-_lastUpdated")]), vec![3, 2, 1]),
    ];
    for ((t, q), expected) in cases {
        assert_eq!(db.search(t, q).await, expected, "{:?} {t}?{q:?}", db.dialect);
    }
    assert_eq!(db.count("Patient", &[("birthdate", "ge1980")]).await, 2);
}

#[tokio::test]
async fn includes_conditional_extra() {
    for mut db in Db::all().await {
        fill(&mut db).await;
        check_includes(&db).await;
        db.finish().await;
    }
}

async fn check_includes(db: &Db) {
    let q = registry()
        .parse_search(
            "Patient",
            &pairs(&[("_id", "example"), ("_include", "Patient:organization"), ("_revinclude", "Appointment:patient")]),
            false,
        )
        .expect("q");
    let page = db.pks(&q.page_sql(db.dialect, i64::MAX)).await;
    assert_eq!(page, vec![1]);
    let inc = q.include_sql(db.dialect, &page, &[]).pop().expect("includes");
    assert_eq!(db.pks(&inc).await, vec![4, 5]);
    let q =
        registry().parse_search("Appointment", &pairs(&[("_include", "*"), ("_revinclude", "*")]), false).expect("q");
    let inc = q.include_sql(db.dialect, &[5, 6], &[]).pop().expect("includes");
    assert_eq!(db.pks(&inc).await, vec![1, 2, 7]);
    let q = registry().parse_search("Patient", &pairs(&[("identifier", "sys|123")]), false).expect("q");
    assert_eq!(db.pks(&q.conditional_sql(db.dialect)).await, vec![2]);
    let ids = super::db::run(&db.pool, &q.ids_sql(db.dialect, 2)).await;
    assert_eq!(ids.len(), 1);
    let extra = ExtraCondition { sql: "{pk} <> $1".into(), binds: vec![Bind::Int(1)] };
    let mut q = registry().parse_search("Patient", &pairs(&[("birthdate", "gt1900")]), false).expect("q");
    q.restrict(extra.clone());
    assert_eq!(db.pks(&q.page_sql(db.dialect, i64::MAX)).await, vec![2, 3]);
    assert_eq!(db.scalar(&q.count_sql(db.dialect, i64::MAX)).await, 2);
    let mut q = registry()
        .parse_search("Appointment", &pairs(&[("patient.name", "peter"), ("_include", "*")]), false)
        .expect("q");
    assert_eq!(db.pks(&q.page_sql(db.dialect, i64::MAX)).await, vec![5]);
    q.restrict(extra.clone());
    assert_eq!(db.pks(&q.page_sql(db.dialect, i64::MAX)).await, Vec::<i64>::new());
    let inc = q.include_sql(db.dialect, &[5], &[]).pop().expect("includes");
    assert_eq!(db.pks(&inc).await, vec![7]);
}

#[tokio::test]
async fn stable_paging() {
    for mut db in Db::all().await {
        fill(&mut db).await;
        check_paging(&mut db).await;
        db.finish().await;
    }
}

async fn check_paging(db: &mut Db) {
    let q = registry().parse_search("Patient", &pairs(&[("_count", "2")]), false).expect("q");
    assert_eq!(q.snapshot(), None);
    let snap = db.scalar(&q.snapshot_sql(db.dialect)).await;
    assert_eq!(snap, db.scalar(&snapshot_sql()).await);
    let first = db.pks(&q.page_sql(db.dialect, snap)).await;
    assert_eq!(first, vec![1, 2]);
    let next = q.link_query(q.next_offset(), snap);
    db.put(&json!({"resourceType": "Patient", "id": "late", "birthDate": "1999"}), "2023-01-01T00:00:00Z").await;
    let q2 = registry().parse_search("Patient", &pairs(&super::parsing::decode(&next)), false).expect("next");
    let snap2 = q2.snapshot().expect("snapshot carried");
    assert_eq!(db.pks(&q2.page_sql(db.dialect, snap2)).await, vec![3]);
    assert_eq!(db.scalar(&q2.count_sql(db.dialect, snap2)).await, 3);
    let now = db.scalar(&snapshot_sql()).await;
    assert_eq!(db.scalar(&q2.count_sql(db.dialect, now)).await, 4);
    let fresh = registry().parse_search("Patient", &pairs(&[("_count", "2"), ("_offset", "2")]), false).expect("fresh");
    assert_eq!(db.pks(&fresh.page_sql(db.dialect, i64::MAX)).await.len(), 2);
}
