//! A payment point's remittance of the day, read by whoever took the payments: a
//! counter that takes tickets reads its own (as the console's payment desk does),
//! never another point's.

use reqwest::Method;
use serde_json::Value;

use crate::billing::{agenda, amount, book, catalog_and_tariffs, patient, pay, pharmacy, today};
use crate::booking::{counter, BASE};
use crate::helpers::{As, Backend, TestApp};

async fn a_counter_reads_its_own_remittance_and_no_other(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    catalog_and_tariffs(&app).await;
    let ecg = agenda(&app, "prov-y", "89.52", 3).await;
    for p in ["a", "b"] {
        patient(&app, p, None).await;
    }
    let (_, at_counter) = book(&app, &counter(), &ecg[4], "a", None).await;
    let (_, at_pharmacy) = book(&app, &counter(), &ecg[5], "b", None).await;
    let point = counter().org.unwrap();
    let (status, out) =
        pay(&app, &counter(), at_counter["id"].as_str().unwrap(), "C-1", &amount(&at_counter["totalNet"])).await;
    assert_eq!(status, 201, "{out}");
    let pharmacy = pharmacy("farmacia-1");
    let (status, out) =
        pay(&app, &pharmacy, at_pharmacy["id"].as_str().unwrap(), "F-1", &amount(&at_pharmacy["totalNet"])).await;
    assert_eq!(status, 201, "{out}");

    let own = format!("PaymentReconciliation/remittance-{point}-{}", today());
    let (status, r) = get(&app, &counter(), &own).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(amount(&r["paymentAmount"]), amount(&at_counter["totalNet"]), "{r}");
    // The pharmacy's remittance is not the counter's to read: as if it did not exist.
    let other = format!("PaymentReconciliation/remittance-farmacia-1-{}", today());
    let (status, _) = get(&app, &counter(), &other).await;
    assert_eq!(status, 404);
    // A search finds its own only; another counter finds none.
    let search = format!("PaymentReconciliation?identifier={BASE}/sid/remittance|&_count=50");
    let (status, found) = get(&app, &counter(), &search).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["entry"][0]["resource"]["id"], own.trim_start_matches("PaymentReconciliation/"));
    let (_, none) = get(&app, &As::booking_point("bp-savona"), &search).await;
    assert_eq!(none["total"], 0, "{none}");
    // The payment point still reads every remittance it needs for its own desk.
    let (status, _) = get(&app, &pharmacy, &other).await;
    assert_eq!(status, 200);
}

async fn get(app: &TestApp, who: &As, path: &str) -> (u16, Value) {
    let r = app.req_as(who, Method::GET, path).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

crate::on_both!(a_counter_reads_its_own_remittance_and_no_other);
