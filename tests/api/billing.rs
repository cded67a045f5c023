//! Tickets, payments, refunds, settlement and credit recovery through the API, with
//! the worked examples of the Italian rules (`mappings/billing/rules.json`).

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{book_params, booked_of, catalog, counter, proposal, send, with, BASE};
use crate::helpers::{expression, match_ids, session, As, Backend, TestApp};

const NRE: &str = "urn:oid:2.16.840.1.113883.2.9.4.3.9";
/// A codice fiscale with a right check character.
const CF: &str = "RSSMRA85T10A562S";

/// An exact FHIR decimal (`36.15`, not a float's approximation).
fn dec(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

pub(crate) fn eur(s: &str) -> Value {
    json!({"value": dec(s), "currency": "EUR"})
}

pub(crate) fn amount(money: &Value) -> String {
    money["value"].to_string()
}

async fn put_ok(app: &TestApp, path: &str, body: Value) {
    let r = app.put(path, &body).await;
    assert!(r.status().is_success(), "PUT {path}: {}", r.text().await.unwrap_or_default());
}

/// The catalog (three codes) and their tariffs from 2020: 89.7 visit 20.66, 88.72.2
/// echocardiography 43.90, 89.52 ECG 11.62.
pub(crate) async fn catalog_and_tariffs(app: &TestApp) {
    // The payor of exemptions and the recipient of payments.
    put_ok(
        app,
        "Organization/ssr-liguria",
        json!({"resourceType": "Organization", "id": "ssr-liguria", "name": "SSR"}),
    )
    .await;
    let concept = |code: &str, display: &str, kind: &str| {
        json!({"code": code, "display": display, "property": [
            {"code": "branch", "valueCode": "cardiology"}, {"code": "kind", "valueCode": kind},
            {"code": "access", "valueCode": "first"}]})
    };
    put_ok(
        app,
        "CodeSystem/catalog",
        json!({"resourceType": "CodeSystem", "id": "catalog", "url": format!("{BASE}/CodeSystem/catalog"),
        "status": "active", "content": "complete",
        "property": [{"code": "branch", "type": "code"}, {"code": "kind", "type": "code"}, {"code": "access", "type": "code"}],
        "concept": [concept("89.7", "Prima visita", "visit"), concept("88.72.2", "Ecocardiografia", "exam"),
                    concept("89.52", "Elettrocardiogramma", "exam")]}),
    )
    .await;
    for (code, price) in [("89.7", "20.66"), ("88.72.2", "43.90"), ("89.52", "11.62")] {
        tariff(app, code, "2020-01-01", None, price).await;
    }
}

pub(crate) async fn tariff(app: &TestApp, code: &str, start: &str, end: Option<&str>, price: &str) {
    let id = format!("tariff-{}-{}", code.replace('.', "-"), start.replace('-', ""));
    let mut period = json!({"start": start});
    if let Some(e) = end {
        period["end"] = json!(e);
    }
    put_ok(
        app,
        &format!("ChargeItemDefinition/{id}"),
        json!({"resourceType": "ChargeItemDefinition", "id": id, "url": format!("{BASE}/ChargeItemDefinition/{id}"),
            "identifier": [{"system": format!("{BASE}/CodeSystem/catalog"), "value": code}],
            "status": "active", "code": catalog(code), "effectivePeriod": period,
            "propertyGroup": [{"priceComponent": [{"type": "base", "amount": eur(price)}]}]}),
    )
    .await;
}

/// An agenda of provider `org` for `code`: 30-minute slots 08:00–10:00 every day
/// from tomorrow for `days` days. Returns the slot ids in start order.
pub(crate) async fn agenda(app: &TestApp, org: &str, code: &str, days: i64) -> Vec<String> {
    let id = format!("{org}-{}", code.replace('.', "-"));
    put_ok(app, &format!("Organization/{org}"), json!({"resourceType": "Organization", "id": org, "name": org})).await;
    put_ok(
        app,
        &format!("HealthcareService/{id}"),
        json!({"resourceType": "HealthcareService", "id": id, "providedBy": {"reference": format!("Organization/{org}")}}),
    )
    .await;
    let mut parts: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| session(d, "08:00:00", "10:00:00", 30))
        .collect();
    parts.push(json!({"url": "horizonDays", "valueInteger": days}));
    put_ok(
        app,
        &format!("Schedule/{id}"),
        json!({"resourceType": "Schedule", "id": id, "active": true,
            "extension": [{"url": format!("{BASE}/StructureDefinition/agenda-template"), "extension": parts}],
            "serviceType": [catalog(code)], "actor": [{"reference": format!("HealthcareService/{id}")}]}),
    )
    .await;
    let tomorrow = crate::helpers::today_rome() + chrono::Duration::days(1);
    let params =
        json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": tomorrow.to_string()}]});
    assert_eq!(app.post(&format!("Schedule/{id}/$generate-slots"), &params).await.status(), 200);
    match_ids(&app.get_json(&format!("Slot?schedule=Schedule/{id}&_sort=start&_count=500"), 200).await)
}

pub(crate) async fn patient(app: &TestApp, id: &str, exemption: Option<&str>) {
    put_ok(app, &format!("Patient/{id}"), json!({"resourceType": "Patient", "id": id, "name": [{"family": id}]})).await;
    if let Some(code) = exemption {
        put_ok(
            app,
            &format!("Coverage/cov-{id}"),
            json!({"resourceType": "Coverage", "id": format!("cov-{id}"), "status": "active",
                "type": {"coding": [{"system": format!("{BASE}/CodeSystem/exemption"), "code": code}]},
                "beneficiary": {"reference": format!("Patient/{id}")},
                "payor": [{"reference": "Organization/ssr-liguria"}]}),
        )
        .await;
    }
}

async fn request(app: &TestApp, id: &str, nre: &str, code: &str, patient: &str) {
    put_ok(
        app,
        &format!("ServiceRequest/{id}"),
        json!({"resourceType": "ServiceRequest", "id": id, "status": "active", "intent": "order",
            "requisition": {"system": NRE, "value": nre},
            "subject": {"reference": format!("Patient/{patient}")}, "code": catalog(code),
            "extension": [{"url": format!("{BASE}/StructureDefinition/priority-class"),
                "valueCoding": {"system": format!("{BASE}/CodeSystem/priority-class"), "code": "P"}}]}),
    )
    .await;
}

/// `$book` at `who`; returns the booked Appointment and the Invoice of the result.
pub(crate) async fn book(app: &TestApp, who: &As, slot: &str, patient: &str, sr: Option<&str>) -> (Value, Value) {
    let (status, out) =
        send(app, who, Method::POST, "Appointment/$book", &book_params(proposal(slot, patient, sr), None)).await;
    assert_eq!(status, 201, "{out}");
    let invoice = out["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .find(|r| r["resourceType"] == "Invoice")
        .unwrap_or(Value::Null);
    (booked_of(&out), invoice)
}

/// `who` cancels `appointment` with `$cancel` (asserting 200).
async fn cancel(app: &TestApp, who: &As, appointment: &Value) {
    let reason =
        json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "patient request"}]});
    let path = format!("Appointment/{}/$cancel", appointment["id"].as_str().unwrap());
    let (status, out) = send(app, who, Method::POST, &path, &reason).await;
    assert_eq!(status, 200, "{out}");
}

/// The provider `org` sets `status` on `appointment` (asserting 200).
async fn provider_sets(app: &TestApp, org: &'static str, appointment: &Value, status: &str) {
    let mut changed = appointment.clone();
    changed["status"] = json!(status);
    let path = format!("Appointment/{}", appointment["id"].as_str().unwrap());
    let (code, out) = send(app, &As::provider(org), Method::PUT, &path, &changed).await;
    assert_eq!(code, 200, "{out}");
}

fn ident(resource: &Value, system_end: &str) -> String {
    resource["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"].as_str().unwrap_or_default().ends_with(system_end))
        .and_then(|i| i["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn today() -> String {
    chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive().to_string()
}

fn pay_body(invoice: &str, point: &str, reference: &str, euros: &str) -> Value {
    json!({"resourceType": "PaymentNotice", "status": "active",
        "identifier": [{"system": format!("urn:x-point:{point}"), "value": reference}],
        "request": {"reference": format!("Invoice/{invoice}")},
        "created": chrono::Utc::now().to_rfc3339(),
        "payment": {"identifier": {"system": format!("{BASE}/sid/remittance"), "value": format!("{point}/{}", today())}},
        "recipient": {"reference": "Organization/ssr-liguria"},
        "amount": eur(euros)})
}

pub(crate) fn pharmacy(org: &'static str) -> As {
    As { role: "payment-point", org: Some(org), channel: Some("pharmacy"), ..Default::default() }
}

pub(crate) async fn pay(app: &TestApp, who: &As, invoice: &str, reference: &str, euros: &str) -> (u16, Value) {
    let point = who.org.unwrap();
    send(app, who, Method::POST, "PaymentNotice", &pay_body(invoice, point, reference, euros)).await
}

pub(crate) async fn owed(app: &TestApp, patient: &str) -> String {
    let p = app.get_json(&format!("Patient/{patient}/$outstanding"), 200).await;
    amount(&with(&p["parameter"], "name", "total")["valueMoney"])
}

async fn three_services_are_capped_shared_by_provider_and_paid_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    catalog_and_tariffs(&app).await;
    let visit = agenda(&app, "prov-x", "89.7", 3).await;
    let echo = agenda(&app, "prov-y", "88.72.2", 3).await;
    let ecg = agenda(&app, "prov-y", "89.52", 3).await;
    patient(&app, "p1", None).await;
    put_ok(
        &app,
        "Patient/p1",
        json!({"resourceType": "Patient", "id": "p1", "identifier": [{"system": "http://hl7.it/sid/codiceFiscale", "value": CF}]}),
    )
    .await;
    let nre = "070A00000000001";
    for (sr, code) in [("sr-1", "89.7"), ("sr-2", "88.72.2"), ("sr-3", "89.52")] {
        request(&app, sr, nre, code, "p1").await;
    }

    // The first booking: the ticket is that service's tariff.
    let (a1, inv) = book(&app, &counter(), &visit[2], "p1", Some("sr-1")).await;
    assert_eq!(inv["resourceType"], "Invoice", "the Invoice joins the $book result");
    assert_eq!((amount(&inv["totalGross"]), amount(&inv["totalNet"])), ("20.66".into(), "20.66".into()));
    assert_eq!(inv["status"], "issued");
    let notice = ident(&inv, "/sid/pagopa-notice");
    assert_eq!(notice.len(), 18, "{inv}");
    let head: u128 = notice[..16].parse().unwrap();
    assert_eq!(notice[16..].parse::<u128>().unwrap(), head % 93, "pagoPA check digits");
    assert_eq!(ident(&inv, "/sid/iuv"), notice[1..]);
    // The others join the same invoice; the sum is capped at 36.15.
    let (_, _) = book(&app, &counter(), &echo[2], "p1", Some("sr-2")).await;
    let (a3, inv) = book(&app, &counter(), &ecg[2], "p1", Some("sr-3")).await;
    let id = inv["id"].as_str().unwrap().to_string();
    assert_eq!((amount(&inv["totalGross"]), amount(&inv["totalNet"])), ("76.18".into(), "36.15".into()));
    assert_eq!(inv["lineItem"].as_array().unwrap().len(), 3);

    // Each service has its ChargeItem, performed by its provider.
    let items = app.get_json("ChargeItem?subject=Patient/p1", 200).await;
    assert_eq!(match_ids(&items).len(), 3);
    let by_provider = |org: &str| {
        items["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["performingOrganization"]["reference"] == format!("Organization/{org}"))
            .count()
    };
    assert_eq!((by_provider("prov-x"), by_provider("prov-y")), (1, 2));
    // The capped ticket shared by tariff: prov-x 20.66 / 76.18 × 36.15 = 9.80, prov-y the rest 26.35.
    let share = |line: &Value| {
        let parts = line["priceComponent"].as_array().unwrap();
        let base: f64 = amount(&parts[0]["amount"]).parse().unwrap();
        let off: f64 = parts.get(1).map(|p| amount(&p["amount"]).parse().unwrap()).unwrap_or(0.0);
        ((base - off) * 100.0).round() as i64
    };
    let first_line = inv["lineItem"].as_array().unwrap().iter().find(|l| {
        let ci = l["chargeItemReference"]["reference"].as_str().unwrap();
        app_item_provider(&items, ci) == "Organization/prov-x"
    });
    assert_eq!(share(first_line.unwrap()), 980);
    assert_eq!(inv["lineItem"].as_array().unwrap().iter().map(share).sum::<i64>(), 3615);

    // Found again by booking code, by NRE, by the patient's identifier chain.
    let code = ident(&a3, "/sid/booking-code");
    let found = app.get_json(&format!("Invoice?booking-code={BASE}/sid/booking-code|{code}"), 200).await;
    assert_eq!(match_ids(&found), std::slice::from_ref(&id));
    let found = app.get_json(&format!("Invoice?booking-code={}", ident(&a1, "/sid/booking-code")), 200).await;
    assert_eq!(match_ids(&found), std::slice::from_ref(&id));
    let found = app.get_json(&format!("Invoice?identifier={NRE}|{nre}"), 200).await;
    assert_eq!(match_ids(&found), std::slice::from_ref(&id));
    let found = app
        .get_json(&format!("Invoice?patient.identifier=http://hl7.it/sid/codiceFiscale|{CF}&status=issued"), 200)
        .await;
    assert_eq!(match_ids(&found), std::slice::from_ref(&id));
    assert_eq!(owed(&app, "p1").await, "36.15");

    // A wrong amount is refused and records nothing.
    let point = pharmacy("farmacia-1");
    let (status, oo) = pay(&app, &point, &id, "R-1", "36.00").await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(expression(&oo), "PaymentNotice.amount");
    assert_eq!(owed(&app, "p1").await, "36.15");
    // The right amount is recorded; the same reference again is the same payment.
    let (status, paid) = pay(&app, &point, &id, "R-1", "36.15").await;
    assert_eq!(status, 201, "{paid}");
    let (status, again) = pay(&app, &point, &id, "R-1", "36.15").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], paid["id"], "recorded once");
    let inv = app.get_json(&format!("Invoice/{id}"), 200).await;
    assert_eq!(inv["status"], "balanced");
    assert_eq!(owed(&app, "p1").await, "0.00");
    // A second payment of a paid invoice: 422.
    let (status, oo) = pay(&app, &pharmacy("farmacia-2"), &id, "X-9", "36.15").await;
    assert_eq!(status, 422, "{oo}");
    // The pharmacy's remittance of the day holds the payment once.
    let remittance = app
        .get_json(&format!("PaymentReconciliation?identifier={BASE}/sid/remittance|farmacia-1/{}", today()), 200)
        .await;
    let r = &remittance["entry"][0]["resource"];
    assert_eq!(amount(&r["paymentAmount"]), "36.15", "{remittance}");
    assert_eq!(r["detail"].as_array().unwrap().len(), 1);
    assert_eq!(paid["payment"]["reference"], format!("PaymentReconciliation/{}", r["id"].as_str().unwrap()));

    // A PaymentNotice about something else is stored as any resource.
    let mut other = pay_body(&id, "farmacia-1", "X-1", "5.00");
    other["request"] = json!({"reference": "Organization/ssr-liguria"});
    let (status, out) = send(&app, &point, Method::POST, "PaymentNotice", &other).await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(owed(&app, "p1").await, "0.00");

    // The counter prints the receipt.
    let receipt = app.req(Method::GET, &format!("Invoice/{id}?_format=text")).send().await.unwrap();
    assert_eq!(receipt.status(), 200);
    assert!(receipt.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = receipt.text().await.unwrap();
    assert!(text.contains("Ecocardiografia") && text.contains("36.15") && text.contains(&notice), "{text}");
    assert!(text.contains("balanced"), "{text}");
}

fn app_item_provider(items: &Value, reference: &str) -> String {
    let id = reference.trim_start_matches("ChargeItem/");
    items["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["id"] == id)
        .and_then(|e| e["resource"]["performingOrganization"]["reference"].as_str())
        .unwrap_or_default()
        .to_string()
}

async fn exemptions_zero_the_ticket_or_the_services_they_cover(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    catalog_and_tariffs(&app).await;
    let ecg = agenda(&app, "prov-y", "89.52", 3).await;
    let echo = agenda(&app, "prov-y", "88.72.2", 3).await;
    patient(&app, "old", Some("E01")).await;
    patient(&app, "hyper", Some("0031")).await;

    // E01 (age and income): nothing owed, the invoice balanced at once.
    let (_, inv) = book(&app, &counter(), &ecg[2], "old", None).await;
    assert_eq!((amount(&inv["totalGross"]), amount(&inv["totalNet"])), ("11.62".into(), "0.00".into()));
    assert_eq!(inv["status"], "balanced");
    let (status, oo) = pay(&app, &pharmacy("farmacia-1"), inv["id"].as_str().unwrap(), "Z-1", "0.00").await;
    assert_eq!(status, 422, "nothing to pay: {oo}");

    // 0031 (hypertension) covers the ECG, not the echocardiography.
    request(&app, "h-1", "070A00000000002", "89.52", "hyper").await;
    request(&app, "h-2", "070A00000000002", "88.72.2", "hyper").await;
    book(&app, &counter(), &ecg[3], "hyper", Some("h-1")).await;
    let (_, inv) = book(&app, &counter(), &echo[3], "hyper", Some("h-2")).await;
    assert_eq!((amount(&inv["totalGross"]), amount(&inv["totalNet"])), ("55.52".into(), "36.15".into()));
    let items = app.get_json("ChargeItem?subject=Patient/hyper&code=89.52", 200).await;
    assert!(items["entry"][0]["resource"].to_string().contains("\"0031\""), "the exemption is on the item: {items}");

    // $apply: the same prices without booking anything.
    let apply = |q: String| {
        let app = &app;
        async move { app.get_json(&format!("ChargeItemDefinition/$apply?{q}"), 200).await }
    };
    let p = apply("code=89.52".into()).await;
    assert_eq!(amount(&with(&p["parameter"], "name", "owed")["valueMoney"]), "11.62");
    let p = apply("code=89.52&patient=Patient/old".into()).await;
    assert_eq!(amount(&with(&p["parameter"], "name", "owed")["valueMoney"]), "0.00");
    let p = apply("code=89.52,88.72.2,89.7&patient=hyper".into()).await;
    assert_eq!(amount(&with(&p["parameter"], "name", "gross")["valueMoney"]), "76.18");
    assert_eq!(amount(&with(&p["parameter"], "name", "owed")["valueMoney"]), "36.15", "64.56 chargeable, capped");
    let p = app.get_json("ChargeItemDefinition/tariff-89-7-20200101/$apply", 200).await;
    assert_eq!(amount(&with(&p["parameter"], "name", "owed")["valueMoney"]), "20.66");
    let r = app.get("ChargeItemDefinition/$apply?code=99.99").await;
    assert_eq!(r.status(), 422, "a code without a tariff");
    let r = app.get("ChargeItemDefinition/$apply?code=89.52&date=2026-02-31").await;
    assert_eq!(r.status(), 400);
    assert_eq!(expression(&r.json().await.unwrap()), "date");
    let r = app.get("ChargeItemDefinition/$apply?code=89.52&bogus=1").await;
    assert_eq!(r.status(), 400);
    // Before the tariffs' date there is no price.
    assert_eq!(app.get("ChargeItemDefinition/$apply?code=89.52&date=2019-06-01").await.status(), 422);
}

async fn a_tariff_change_applies_to_bookings_after_its_date(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    catalog_and_tariffs(&app).await;
    let ecg = agenda(&app, "prov-y", "89.52", 3).await;
    patient(&app, "p1", None).await;
    patient(&app, "p2", None).await;
    let (_, before) = book(&app, &counter(), &ecg[2], "p1", None).await;
    assert_eq!(amount(&before["totalNet"]), "11.62");
    // From today the ECG costs 12.40; the old tariff ends yesterday.
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive();
    let yesterday = (today - chrono::Duration::days(1)).to_string();
    tariff(&app, "89.52", "2020-01-01", Some(&yesterday), "11.62").await;
    tariff(&app, "89.52", &today.to_string(), None, "12.40").await;
    let (_, after) = book(&app, &counter(), &ecg[3], "p2", None).await;
    assert_eq!(amount(&after["totalNet"]), "12.40");
    let kept = app.get_json(&format!("Invoice/{}", before["id"].as_str().unwrap()), 200).await;
    assert_eq!(amount(&kept["totalNet"]), "11.62", "an old invoice keeps its amount");
    let p = app.get_json(&format!("ChargeItemDefinition/$apply?code=89.52&date={yesterday}"), 200).await;
    assert_eq!(amount(&with(&p["parameter"], "name", "owed")["valueMoney"]), "11.62");
}

async fn cancellations_refund_in_time_and_keep_late_ones_and_no_shows_owed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    catalog_and_tariffs(&app).await;
    let ecg = agenda(&app, "prov-y", "89.52", 5).await;
    patient(&app, "p1", None).await;
    patient(&app, "old", Some("E01")).await;
    let point = pharmacy("farmacia-1");

    // In time (the slot is 4 days away, the notice 48 hours): a paid ticket is refunded.
    let far = &ecg[ecg.len() - 1];
    let (a, inv) = book(&app, &counter(), far, "p1", None).await;
    let invoice = inv["id"].as_str().unwrap().to_string();
    let (status, paid) = pay(&app, &point, &invoice, "R-1", "11.62").await;
    assert_eq!(status, 201, "{paid}");
    cancel(&app, &counter(), &a).await;
    let notices = app.get_json(&format!("PaymentNotice?request=Invoice/{invoice}"), 200).await;
    let mut amounts: Vec<String> =
        notices["entry"].as_array().unwrap().iter().map(|e| amount(&e["resource"]["amount"])).collect();
    amounts.sort();
    assert_eq!(amounts, ["-11.62", "11.62"], "a negative PaymentNotice to the same point");
    let refund =
        notices["entry"].as_array().unwrap().iter().find(|e| amount(&e["resource"]["amount"]) == "-11.62").unwrap();
    assert_eq!(refund["resource"]["provider"]["reference"], "Organization/farmacia-1");
    assert_eq!(app.get_json(&format!("Invoice/{invoice}"), 200).await["status"], "cancelled");
    let remittance = app
        .get_json(&format!("PaymentReconciliation?identifier={BASE}/sid/remittance|farmacia-1/{}", today()), 200)
        .await;
    assert_eq!(amount(&remittance["entry"][0]["resource"]["paymentAmount"]), "0.00");
    assert_eq!(owed(&app, "p1").await, "0.00");

    // A channel that knows only the pagoPA notice number pays by it.
    let (again, inv) = book(&app, &counter(), &ecg[ecg.len() - 2], "p1", None).await;
    let mut by_notice = pay_body("x", "farmacia-1", "R-2", "11.62");
    by_notice["request"] = json!({"identifier": {"system": format!("{BASE}/sid/pagopa-notice"), "value": ident(&inv, "/sid/pagopa-notice")}});
    let (status, paid2) = send(&app, &point, Method::POST, "PaymentNotice", &by_notice).await;
    assert_eq!(status, 201, "{paid2}");
    assert_eq!(paid2["request"]["reference"], format!("Invoice/{}", inv["id"].as_str().unwrap()));
    assert_eq!(app.get_json(&format!("Invoice/{}", inv["id"].as_str().unwrap()), 200).await["status"], "balanced");
    by_notice["request"]["identifier"]["value"] = json!("301999999999999999");
    by_notice["identifier"][0]["value"] = json!("R-3");
    let (status, oo) = send(&app, &point, Method::POST, "PaymentNotice", &by_notice).await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(expression(&oo), "PaymentNotice.request.identifier");
    cancel(&app, &counter(), &again).await;
    assert_eq!(owed(&app, "p1").await, "0.00", "refunded in turn");

    // Late (tomorrow's slot): the ticket stays owed.
    let (late, _) = book(&app, &counter(), &ecg[0], "p1", None).await;
    cancel(&app, &counter(), &late).await;
    assert_eq!(owed(&app, "p1").await, "11.62");

    // A no-show is owed even by an exempt patient (the rule says so).
    let (missed, inv) = book(&app, &counter(), &ecg[1], "old", None).await;
    assert_eq!(amount(&inv["totalNet"]), "0.00");
    provider_sets(&app, "prov-y", &missed, "noshow").await;
    assert_eq!(owed(&app, "old").await, "11.62");
    // A cancellation by the provider frees the ticket whatever the time.
    let (by_provider, _) = book(&app, &counter(), &ecg[2], "p1", None).await;
    cancel(&app, &As::provider("prov-y"), &by_provider).await;
    assert_eq!(owed(&app, "p1").await, "11.62", "only the late cancellation is owed");
    // A recorded payment cannot be edited away.
    let mut edited = paid.clone();
    edited["amount"] = eur("1.00");
    let (status, oo) =
        send(&app, &As::admin(), Method::PUT, &format!("PaymentNotice/{}", paid["id"].as_str().unwrap()), &edited)
            .await;
    assert_eq!(status, 422, "{oo}");
}

async fn settlement_of_a_month_reconciles_to_the_cent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    catalog_and_tariffs(&app).await;
    let ecg = agenda(&app, "prov-y", "89.52", 3).await;
    let visit = agenda(&app, "prov-x", "89.7", 3).await;
    let at_pharmacy =
        As { role: "booking-point", org: Some("farmacia-1"), channel: Some("pharmacy"), ..Default::default() };
    // Six bookings: four at the pharmacy, two at a counter; mixed payments and a refund.
    let mut invoices = Vec::new();
    for (i, p) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        patient(&app, p, None).await;
        let who = if i < 4 { at_pharmacy.clone() } else { counter() };
        let slots = if i % 2 == 0 { &ecg } else { &visit };
        // The first is booked furthest ahead: it is cancelled in time below.
        let (a, inv) = book(&app, &who, &slots[11 - i], p, None).await;
        invoices.push((a, inv));
    }
    let pay_points =
        [pharmacy("farmacia-1"), pharmacy("farmacia-1"), As::payment_point("cassa-1"), pharmacy("farmacia-2")];
    for (i, who) in pay_points.iter().enumerate() {
        let inv = &invoices[i].1;
        let (status, out) =
            pay(&app, who, inv["id"].as_str().unwrap(), &format!("P-{i}"), &amount(&inv["totalNet"])).await;
        assert_eq!(status, 201, "{out}");
    }
    // The first is cancelled in time: refunded at farmacia-1.
    cancel(&app, &counter(), &invoices[0].0).await;

    let period = &today()[..7];
    let out = app.get_json(&format!("$settlement?period={period}"), 200).await;
    let recs: Vec<&Value> = out["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "PaymentReconciliation")
        .collect();
    assert_eq!(recs.len(), 2, "one per provider: {out}");
    let cents = |m: &Value| -> i64 {
        let s = amount(m);
        let (e, c) = s.split_once('.').unwrap_or((&s, "0"));
        let sign = if e.starts_with('-') { -1 } else { 1 };
        sign * (e.trim_start_matches('-').parse::<i64>().unwrap() * 100
            + format!("{c:0<2}")[..2].parse::<i64>().unwrap())
    };
    let line_of = |r: &Value, kind: &str| -> i64 {
        r["detail"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["type"]["coding"][0]["code"] == kind)
            .map(|d| cents(&d["amount"]))
            .sum()
    };
    let collected: i64 = recs.iter().map(|r| line_of(r, "ticket")).sum();
    // The PaymentNotices of the period, read back one by one, add up to the same.
    let notices = app.get_json("PaymentNotice?_count=100", 200).await;
    let paid: i64 = notices["entry"].as_array().unwrap().iter().map(|e| cents(&e["resource"]["amount"])).sum();
    assert_eq!(notices["entry"].as_array().unwrap().len(), 5, "four payments and a refund");
    assert_eq!(collected, paid);
    assert_eq!(paid, 1162 + 2066 + 1162 + 2066 - 1162, "11.62 + 20.66 + 11.62 + 20.66, the first refunded");
    // Pharmacy fees: 1.50 per booking (four), 1.00 per ticket collected (three payments).
    let fees: i64 = recs.iter().map(|r| line_of(r, "booking-fee") + line_of(r, "collection-fee")).sum();
    assert_eq!(fees, -(4 * 150 + 3 * 100));
    let net: i64 = recs.iter().map(|r| cents(&r["paymentAmount"])).sum();
    assert_eq!(net, paid + fees);
    let total =
        with(&out["entry"].as_array().unwrap().last().unwrap()["resource"]["parameter"], "name", "payments-total");
    assert_eq!(cents(&total["valueMoney"]), paid);
    // Stored: a rerun makes a new version of the same PaymentReconciliation.
    let id = recs[0]["id"].as_str().unwrap();
    assert_eq!(app.get_json(&format!("PaymentReconciliation/{id}"), 200).await["id"], id);
    // As CSV.
    let csv = app.req(Method::GET, &format!("$settlement?period={period}&_format=csv")).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("period,provider,line,channel,count,amount_eur\n"), "{csv}");
    assert!(csv.contains(",booking-fee,pharmacy,"), "{csv}");
    assert_eq!(
        app.get_json(&format!("PaymentReconciliation/{id}/_history"), 200).await["entry"].as_array().unwrap().len(),
        2
    );
    // Only administrators settle; a bad period is a 400.
    let r = app.req_as(&counter(), Method::GET, &format!("$settlement?period={period}")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = app.get("$settlement?period=2026-13").await;
    assert_eq!(r.status(), 400);
}

async fn recovery_sends_two_notices_then_collection_and_a_payment_stops_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    catalog_and_tariffs(&app).await;
    let ecg = agenda(&app, "prov-y", "89.52", 3).await;
    patient(&app, "p1", None).await;
    patient(&app, "p2", None).await;
    let (a1, inv1) = book(&app, &counter(), &ecg[0], "p1", None).await;
    let (a2, inv2) = book(&app, &counter(), &ecg[1], "p2", None).await;
    for a in [&a1, &a2] {
        provider_sets(&app, "prov-y", a, "fulfilled").await;
    }
    let start = chrono::DateTime::parse_from_rfc3339(a1["start"].as_str().unwrap()).unwrap().date_naive();
    let run = |days: i64| {
        let app = &app;
        async move {
            let date = start + chrono::Duration::days(days);
            let r = app.req(Method::POST, &format!("$recovery?date={date}")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let p: Value = r.json().await.unwrap();
            p["parameter"].as_array().cloned().unwrap_or_default()
        }
    };
    let stage = |inv: &Value| {
        let app = &app;
        let id = inv["id"].as_str().unwrap().to_string();
        async move {
            let i = app.get_json(&format!("Invoice/{id}"), 200).await;
            i["extension"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["url"].as_str().unwrap().ends_with("/recovery-stage"))
                .map(|e| e["valueCode"].as_str().unwrap().to_string())
        }
    };
    assert!(run(10).await.is_empty(), "not overdue yet");
    assert_eq!(run(31).await.len(), 2);
    assert_eq!(stage(&inv1).await.as_deref(), Some("first-notice"));
    assert!(run(31).await.is_empty(), "a second run the same day does nothing");
    let letters = app.get_json("Communication?subject=Patient/p1", 200).await;
    assert_eq!(match_ids(&letters).len(), 1);
    assert_eq!(
        letters["entry"][0]["resource"]["about"][0]["reference"],
        format!("Invoice/{}", inv1["id"].as_str().unwrap())
    );
    // p2 pays: the chase stops for them.
    let (status, _) = pay(&app, &As::payment_point("cassa-1"), inv2["id"].as_str().unwrap(), "C-1", "11.62").await;
    assert_eq!(status, 201);
    assert_eq!(stage(&inv2).await, None);
    assert_eq!(run(62).await.len(), 1);
    assert_eq!(stage(&inv1).await.as_deref(), Some("second-notice"));
    assert_eq!(match_ids(&app.get_json("Communication?subject=Patient/p1", 200).await).len(), 2);
    assert_eq!(run(93).await.len(), 1);
    assert_eq!(stage(&inv1).await.as_deref(), Some("collection"));
    assert!(run(200).await.is_empty(), "collection is the last stage");
    assert_eq!(
        match_ids(&app.get_json("Communication?subject=Patient/p2", 200).await).len(),
        1,
        "the first notice only"
    );
}

async fn many_clients_at_once_pay_once_and_share_one_invoice(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    catalog_and_tariffs(&app).await;
    let visit = agenda(&app, "prov-x", "89.7", 3).await;
    let echo = agenda(&app, "prov-y", "88.72.2", 3).await;
    let ecg = agenda(&app, "prov-y", "89.52", 3).await;
    patient(&app, "p1", None).await;
    let nre = "070A00000000009";
    for (sr, code) in [("sr-1", "89.7"), ("sr-2", "88.72.2"), ("sr-3", "89.52")] {
        request(&app, sr, nre, code, "p1").await;
    }
    // Three booking points book the prescription's three services at once.
    let jobs = [(&visit[3], "sr-1"), (&echo[3], "sr-2"), (&ecg[3], "sr-3")].map(|(slot, sr)| {
        let app = &app;
        async move { book(app, &counter(), slot, "p1", Some(sr)).await }
    });
    let booked = join_all(jobs).await;
    let ids: std::collections::BTreeSet<String> =
        booked.iter().map(|(_, i)| i["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 1, "one invoice for the prescription");
    let invoice = ids.into_iter().next().unwrap();
    let inv = app.get_json(&format!("Invoice/{invoice}"), 200).await;
    assert_eq!((amount(&inv["totalGross"]), amount(&inv["totalNet"])), ("76.18".into(), "36.15".into()));
    // Twenty clients send the same payment at once (a retrying terminal): one payment.
    let point = pharmacy("farmacia-1");
    let jobs = (0..20).map(|_| {
        let (app, point, invoice) = (&app, point.clone(), invoice.clone());
        async move { pay(app, &point, &invoice, "SAME-REF", "36.15").await }
    });
    let results = join_all(jobs).await;
    let ids: std::collections::BTreeSet<String> = results
        .iter()
        .map(|(status, out)| {
            assert!(*status == 200 || *status == 201, "{status} {out}");
            out["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every answer is the one payment");
    assert_eq!(match_ids(&app.get_json(&format!("PaymentNotice?request=Invoice/{invoice}"), 200).await).len(), 1);
    let remittance = app
        .get_json(&format!("PaymentReconciliation?identifier={BASE}/sid/remittance|farmacia-1/{}", today()), 200)
        .await;
    assert_eq!(amount(&remittance["entry"][0]["resource"]["paymentAmount"]), "36.15");
    // Sixteen payment points each pay a different invoice at once: all recorded.
    let slots: Vec<String> = visit
        .iter()
        .skip(4)
        .take(2)
        .chain(echo.iter().skip(4).take(6))
        .chain(ecg.iter().skip(4).take(6))
        .cloned()
        .collect();
    assert!(slots.len() >= 14);
    let mut to_pay = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let p = format!("q{i}");
        let p: &'static str = Box::leak(p.into_boxed_str());
        patient(&app, p, None).await;
        let (_, inv) = book(&app, &counter(), slot, p, None).await;
        to_pay.push((inv["id"].as_str().unwrap().to_string(), amount(&inv["totalNet"])));
    }
    let jobs = to_pay.iter().enumerate().map(|(i, (invoice, euros))| {
        let app = &app;
        let org: &'static str = Box::leak(format!("cassa-{}", i % 4).into_boxed_str());
        async move { pay(app, &As::payment_point(org), invoice, &format!("T-{i}"), euros).await }
    });
    for (status, out) in join_all(jobs).await {
        assert_eq!(status, 201, "{out}");
    }
    for i in 0..4 {
        let r = app
            .get_json(&format!("PaymentReconciliation?identifier={BASE}/sid/remittance|cassa-{i}/{}", today()), 200)
            .await;
        let details = r["entry"][0]["resource"]["detail"].as_array().unwrap().len();
        assert_eq!(details, to_pay.iter().enumerate().filter(|(j, _)| j % 4 == i).count(), "no payment lost");
    }
}

crate::on_both!(
    three_services_are_capped_shared_by_provider_and_paid_once,
    exemptions_zero_the_ticket_or_the_services_they_cover,
    a_tariff_change_applies_to_bookings_after_its_date,
    cancellations_refund_in_time_and_keep_late_ones_and_no_shows_owed,
    settlement_of_a_month_reconciles_to_the_cent,
    recovery_sends_two_notices_then_collection_and_a_payment_stops_it,
    many_clients_at_once_pay_once_and_share_one_invoice,
);
