//! The FHIR calls of the console's booking and payment desks, sent as its
//! JavaScript sends them (same searches, same parameters, same bodies), with
//! the tokens its demo sign-in minted: what the desks rely on, kept true.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::helpers::TestApp;

struct Desk<'a> {
    app: &'a TestApp,
    token: &'a str,
}

impl Desk<'_> {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self.app.anonymous().request(method, self.app.url(path)).bearer_auth(self.token);
        req = req.header("accept", "application/fhir+json");
        if let Some(b) = body {
            req = req.header("content-type", "application/fhir+json").body(b.to_string());
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A GET that must answer 200.
    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A POST that must answer one of `ok`.
    async fn post(&self, path: &str, body: &Value, ok: &[u16]) -> Value {
        let (status, out) = self.send(reqwest::Method::POST, path, Some(body)).await;
        assert!(ok.contains(&status), "POST {path}: {status} {out}");
        out
    }
}

fn of_type<'a>(bundle: &'a Value, t: &str) -> Vec<&'a Value> {
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    entries.iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == t).collect()
}

fn ident<'a>(r: &'a Value, end: &str) -> Option<&'a str> {
    let ids = r["identifier"].as_array().map(Vec::as_slice).unwrap_or_default();
    ids.iter().find(|i| i["system"].as_str().is_some_and(|s| s.ends_with(end))).and_then(|i| i["value"].as_str())
}

fn today() -> String {
    chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).format("%Y-%m-%d").to_string()
}

fn in_days(n: i64) -> String {
    (chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome) + chrono::Duration::days(n))
        .format("%Y-%m-%d")
        .to_string()
}

/// `Parameters` with one `appointment-reference`.
fn reference(id: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "appointment-reference", "valueReference": {"reference": format!("Appointment/{id}")}}]})
}

/// The booking desk from a found patient to a booking, then the payment desk.
pub async fn booking_and_payment(app: &TestApp, settings: &Value, tokens: &HashMap<String, String>) {
    let desk = Desk { app, token: &tokens["booking-point"] };
    let base = settings["canonicalBase"].as_str().expect("canonical base");
    let nre_system = settings["nre"]["system"].as_str().expect("NRE system");
    // The codice fiscale as typed, without its system.
    let found = desk.get("Patient?identifier=BNCGLI52C61D969J&_count=10").await;
    assert_eq!(of_type(&found, "Patient").len(), 1, "{found}");
    let patient = of_type(&found, "Patient")[0]["id"].as_str().unwrap().to_string();
    assert!(desk.get("CodeSystem/catalog").await["concept"].as_array().is_some_and(|c| c.len() > 50));
    assert!(desk.get("CodeSystem/priority-class").await["concept"].as_array().is_some_and(|c| !c.is_empty()));
    let payer = desk.get("Organization?type=pay&_count=1").await;
    assert_eq!(of_type(&payer, "Organization")[0]["id"], "ssr-liguria");

    let nre = record_prescription(&desk, base, nre_system, &patient).await;
    let first = find_with_names(&desk, nre_system, &nre).await;

    // Enter holds, Enter books.
    let held = desk.post("Appointment/$hold", &reference(first["id"].as_str().unwrap()), &[200]).await;
    assert_eq!(held["status"], "pending");
    assert!(held["extension"].to_string().contains("hold-expires"));
    let booked = desk.post("Appointment/$book", &reference(held["id"].as_str().unwrap()), &[200, 201]).await;
    let appointment =
        of_type(&booked, "Appointment").into_iter().find(|a| a["status"] == "booked").cloned().expect("booked");
    let code = ident(&appointment, "/booking-code").expect("a booking code").to_string();
    let invoice = of_type(&booked, "Invoice").first().copied().cloned().expect("the ticket");
    let owed = desk.get(&format!("Patient/{patient}/$outstanding")).await;
    assert!(owed.to_string().contains(&format!("Invoice/{}", invoice["id"].as_str().unwrap())), "{owed}");
    let lines: Vec<String> = invoice["lineItem"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| {
            l["chargeItemReference"]["reference"].as_str().map(|r| r.trim_start_matches("ChargeItem/").to_string())
        })
        .collect();
    assert!(
        !of_type(&desk.get(&format!("ChargeItem?_id={}&_count=100", lines.join(","))).await, "ChargeItem").is_empty()
    );
    let list = format!("Appointment?patient=Patient/{patient}&status=booked&date=ge{}&_sort=date&_count=20", today());
    assert!(of_type(&desk.get(&list).await, "Appointment").iter().any(|a| a["id"] == appointment["id"]));

    let service = appointment["serviceType"][0]["coding"][0]["code"].as_str().expect("a service").to_string();
    waitlist(&desk, base, &patient, &service).await;
    pay(app, &tokens["payment-point"], base, &code).await;
    decline_and_cancel(&desk, base, &patient, &appointment, &code).await;
}

/// "Metti in lista d'attesa" (waitlist.js): the entry as the desk writes it (the
/// patient's district for the place), then the line for the service.
async fn waitlist(desk: &Desk<'_>, base: &str, patient: &str, service: &str) {
    let (from, to) = (format!("{}T00:00:00Z", today()), format!("{}T00:00:00Z", in_days(180)));
    let entry = json!({"resourceType": "Appointment", "status": "waitlist",
        "serviceType": [{"coding": [{"system": format!("{base}/CodeSystem/catalog"), "code": service}]}],
        "requestedPeriod": [{"start": from, "end": to}],
        "participant": [{"actor": {"reference": format!("Patient/{patient}")}, "status": "needs-action"}],
        "extension": [{"url": format!("{base}/StructureDefinition/priority-class"),
            "valueCoding": {"system": format!("{base}/CodeSystem/priority-class"), "code": "P"}}]});
    let made = desk.post("Appointment", &entry, &[201]).await;
    let line = desk
        .get(&format!("Appointment?status=waitlist&service-type={base}/CodeSystem/catalog|{service}&_count=100"))
        .await;
    assert!(of_type(&line, "Appointment").iter().any(|a| a["id"] == made["id"]), "{line}");
}

/// An NRE not known yet: the counter records the paper prescription.
async fn record_prescription(desk: &Desk<'_>, base: &str, nre_system: &str, patient: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let nre = format!("070A{:011}", nanos % 100_000_000_000);
    let by_nre = format!("ServiceRequest?requisition={nre_system}|{nre}&_count=50");
    assert!(of_type(&desk.get(&by_nre).await, "ServiceRequest").is_empty());
    let sr = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "requisition": {"system": nre_system, "value": &nre},
        "subject": {"reference": format!("Patient/{patient}")},
        "code": {"coding": [{"system": format!("{base}/CodeSystem/catalog"), "code": "89.7A.3"}]},
        "extension": [{"url": format!("{base}/StructureDefinition/priority-class"),
            "valueCoding": {"system": format!("{base}/CodeSystem/priority-class"), "code": "D"}}]});
    desk.post("ServiceRequest", &sr, &[201]).await;
    assert_eq!(of_type(&desk.get(&by_nre).await, "ServiceRequest").len(), 1);

    nre
}

/// `$find` as the desk asks it, then the names of the first proposal's place.
async fn find_with_names(desk: &Desk<'_>, nre_system: &str, nre: &str) -> Value {
    let find = format!(
        "Appointment/$find?start={}&end={}&_count=10&referral-identifier={nre_system}|{nre}",
        today(),
        in_days(180)
    );
    let proposals = desk.get(&find).await;
    let first = of_type(&proposals, "Appointment").first().copied().cloned().expect("proposals");
    assert!(first["extension"].to_string().contains("within-guarantee"));
    let actors: Vec<String> = first["participant"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["actor"]["reference"].as_str().map(str::to_string))
        .collect();
    for (t, include) in [
        ("Location", "Location:organization"),
        ("HealthcareService", "HealthcareService:organization"),
        ("PractitionerRole", "PractitionerRole:practitioner"),
    ] {
        let ids: Vec<&str> = actors.iter().filter_map(|a| a.strip_prefix(&format!("{t}/"))).collect();
        assert_eq!(ids.len(), 1, "{t} among {actors:?}");
        let names = desk.get(&format!("{t}?_id={}&_include={include}&_count=100", ids[0])).await;
        assert_eq!(names["entry"].as_array().map(Vec::len), Some(2), "{t} and its include: {names}");
    }

    first
}

/// The payment desk: the booking code typed, what is owed, the payment, the
/// receipt, the remittance of the day.
async fn pay(app: &TestApp, token: &str, base: &str, code: &str) {
    let desk = Desk { app, token };
    let found = desk.get(&format!("Invoice?booking-code={code}&_count=50")).await;
    let invoice = of_type(&found, "Invoice")[0].clone();
    let patient = invoice["subject"]["reference"].as_str().unwrap().trim_start_matches("Patient/").to_string();
    assert_eq!(of_type(&desk.get(&format!("Patient?_id={patient}")).await, "Patient").len(), 1);
    let owed = desk.get(&format!("Patient/{patient}/$outstanding")).await;
    let part = owed["parameter"].as_array().unwrap().iter().find(|p| p["name"] == "invoice").expect("owed");
    let amount =
        part["part"].as_array().unwrap().iter().find(|p| p["name"] == "amount").unwrap()["valueMoney"]["value"].clone();
    let id = invoice["id"].as_str().unwrap();
    let point = "bp-pharmacy-001";
    let notice = json!({"resourceType": "PaymentNotice", "status": "active", "created": chrono::Utc::now().to_rfc3339(),
        "identifier": [{"system": format!("urn:x-cupola-console:{point}"), "value": "C-TEST-0001"}],
        "request": {"reference": format!("Invoice/{id}")},
        "payment": {"identifier": {"system": format!("{base}/sid/remittance"), "value": format!("{point}/{}", today())}},
        "recipient": {"reference": "Organization/ssr-liguria"},
        "amount": {"value": amount, "currency": "EUR"}});
    desk.post("PaymentNotice", &notice, &[201]).await;
    let receipt = app
        .anonymous()
        .get(app.url(&format!("Invoice/{id}?_format=text")))
        .bearer_auth(token)
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(receipt.status(), 200);
    assert!(receipt.text().await.unwrap().contains("RICEVUTA"));
    let remittance = desk.get(&format!("PaymentReconciliation/remittance-{point}-{}", today())).await;
    assert!(remittance["detail"].as_array().is_some_and(|d| !d.is_empty()), "{remittance}");
}

/// A proposal declined with an AppointmentResponse; the booking cancelled, its
/// ticket read back by booking code.
async fn decline_and_cancel(desk: &Desk<'_>, base: &str, patient: &str, appointment: &Value, code: &str) {
    let find = format!("Appointment/$find?start={}&end={}&_count=10&service-type={base}/CodeSystem/catalog|89.7A.3&patient-reference=Patient/{patient}&priority-class=D",
        in_days(1), in_days(181));
    let proposals = desk.get(&find).await;
    let other = of_type(&proposals, "Appointment")[0]["id"].as_str().unwrap().to_string();
    let response = json!({"resourceType": "AppointmentResponse", "appointment": {"reference": format!("Appointment/{other}")},
        "participantStatus": "declined", "actor": {"reference": format!("Patient/{patient}")}});
    desk.post("AppointmentResponse", &response, &[201]).await;
    let reason = json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "su richiesta del paziente"}]});
    let id = appointment["id"].as_str().unwrap();
    assert_eq!(desk.post(&format!("Appointment/{id}/$cancel"), &reason, &[200]).await["status"], "cancelled");
    let after = desk.get(&format!("Invoice?booking-code={code}")).await;
    assert_eq!(of_type(&after, "Invoice").len(), 1, "{after}");
}
