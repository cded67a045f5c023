//! A provider's visibility by each path the policy names (docs/security.md): an
//! agenda whose actor is a Location, the organisation itself or a PractitionerRole;
//! an appointment without a slot, owned through its participant; the responses,
//! prescriptions and charges that hang from them; and a health authority above it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{match_ids, As, Backend, TestApp};

async fn put(app: &TestApp, r: Value) {
    let path = format!("{}/{}", r["resourceType"].as_str().unwrap_or_default(), r["id"].as_str().unwrap_or_default());
    let resp = app.put(&path, &r).await;
    let status = resp.status();
    assert!(status.is_success(), "PUT {path}: {status} {}", resp.text().await.unwrap_or_default());
}

fn reference(to: &str) -> Value {
    json!({"reference": to})
}

fn appointment(id: &str, slot: Option<&str>, actors: &[&str], based_on: Option<&str>) -> Value {
    let mut a = json!({"resourceType": "Appointment", "id": id, "status": "booked",
        "start": "2026-12-01T09:00:00+01:00", "end": "2026-12-01T09:20:00+01:00",
        "participant": actors.iter().map(|x| json!({"actor": reference(x), "status": "accepted"})).collect::<Vec<_>>()});
    if let Some(s) = slot {
        a["slot"] = json!([reference(s)]);
    }
    if let Some(sr) = based_on {
        a["basedOn"] = json!([reference(sr)]);
    }
    a
}

/// Provider A (below an authority) with agendas on a Location and on itself, an
/// appointment without a slot on its PractitionerRole; provider B with one of each.
async fn region(app: &TestApp) {
    put(app, json!({"resourceType": "Organization", "id": "authority", "name": "ASL"})).await;
    put(app, json!({"resourceType": "Organization", "id": "prov-a", "partOf": reference("Organization/authority")}))
        .await;
    put(app, json!({"resourceType": "Organization", "id": "prov-b", "name": "B"})).await;
    for x in ["a", "b"] {
        let org = format!("Organization/prov-{x}");
        put(
            app,
            json!({"resourceType": "Location", "id": format!("loc-{x}"), "managingOrganization": reference(&org)}),
        )
        .await;
        put(app, json!({"resourceType": "PractitionerRole", "id": format!("pr-{x}"), "organization": reference(&org)}))
            .await;
        put(app, json!({"resourceType": "Patient", "id": format!("pat-{x}"), "name": [{"family": format!("F{x}")}]}))
            .await;
        put(
            app,
            json!({"resourceType": "ServiceRequest", "id": format!("sr-{x}"), "status": "active", "intent": "order",
            "subject": reference(&format!("Patient/pat-{x}"))}),
        )
        .await;
        for (sch, actor) in
            [(format!("sch-loc-{x}"), format!("Location/loc-{x}")), (format!("sch-org-{x}"), org.clone())]
        {
            put(app, json!({"resourceType": "Schedule", "id": sch, "actor": [reference(&actor)]})).await;
            put(app, json!({"resourceType": "Slot", "id": format!("slot-{sch}"), "schedule": reference(&format!("Schedule/{sch}")),
                "status": "busy", "start": "2026-12-01T09:00:00+01:00", "end": "2026-12-01T09:20:00+01:00"}))
            .await;
        }
        let patient = format!("Patient/pat-{x}");
        let sr = format!("ServiceRequest/sr-{x}");
        put(app, appointment(&format!("ap-loc-{x}"), Some(&format!("Slot/slot-sch-loc-{x}")), &[&patient], Some(&sr)))
            .await;
        put(app, appointment(&format!("ap-org-{x}"), Some(&format!("Slot/slot-sch-org-{x}")), &[&patient], None)).await;
        put(app, appointment(&format!("ap-role-{x}"), None, &[&patient, &format!("PractitionerRole/pr-{x}")], None))
            .await;
        put(
            app,
            json!({"resourceType": "AppointmentResponse", "id": format!("ar-{x}"), "participantStatus": "accepted",
            "appointment": reference(&format!("Appointment/ap-role-{x}")), "actor": reference(&patient)}),
        )
        .await;
    }
    // On B's slot, with A's practitioner among its participants: a slot decides, so B's.
    put(
        app,
        json!({"resourceType": "Slot", "id": "slot-mixed", "schedule": reference("Schedule/sch-loc-b"),
        "status": "busy", "start": "2026-12-01T10:00:00+01:00", "end": "2026-12-01T10:20:00+01:00"}),
    )
    .await;
    put(app, appointment("ap-mixed", Some("Slot/slot-mixed"), &["Patient/pat-b", "PractitionerRole/pr-a"], None)).await;
}

async fn ids(app: &TestApp, who: &As, search: &str) -> Vec<String> {
    let r = app.req_as(who, Method::GET, search).send().await.expect("GET");
    assert_eq!(r.status(), 200, "{search}");
    let bundle: Value = r.json().await.expect("a Bundle");
    let mut ids = match_ids(&bundle);
    ids.sort();
    assert_eq!(bundle["total"], ids.len(), "{search}: the total counts what is seen");
    ids
}

async fn status(app: &TestApp, who: &As, path: &str) -> u16 {
    app.req_as(who, Method::GET, path).send().await.expect("GET").status().as_u16()
}

async fn a_provider_owns_what_hangs_from_its_agendas(b: Backend) {
    let app = TestApp::spawn(b).await;
    region(&app).await;
    for who in [As::provider("prov-a"), As::provider("authority")] {
        let seen = |search: &'static str| ids(&app, &who, search);
        assert_eq!(seen("Schedule?_total=accurate").await, ["sch-loc-a", "sch-org-a"]);
        assert_eq!(seen("Slot?_total=accurate").await, ["slot-sch-loc-a", "slot-sch-org-a"]);
        assert_eq!(seen("Appointment?_total=accurate").await, ["ap-loc-a", "ap-org-a", "ap-role-a"]);
        assert_eq!(seen("AppointmentResponse?_total=accurate").await, ["ar-a"]);
        assert_eq!(seen("Patient?_total=accurate").await, ["pat-a"]);
        assert_eq!(seen("ServiceRequest?_total=accurate").await, ["sr-a"]);
        assert_eq!(seen("Location?_total=accurate").await.len(), 2, "the directory is open to all");
        for (path, want) in [
            ("Appointment/ap-role-a", 200),
            ("Appointment/ap-mixed", 404),
            ("Appointment/ap-role-b", 404),
            ("AppointmentResponse/ar-b", 404),
            ("ServiceRequest/sr-a", 200),
            ("ServiceRequest/sr-b", 404),
            ("Slot/slot-sch-org-b", 404),
        ] {
            assert_eq!(status(&app, &who, path).await, want, "{path} as {:?}", who.org);
        }
    }
    let b_sees = ids(&app, &As::provider("prov-b"), "Appointment?_total=accurate").await;
    assert_eq!(b_sees, ["ap-loc-b", "ap-mixed", "ap-org-b", "ap-role-b"]);
}

crate::on_both!(a_provider_owns_what_hangs_from_its_agendas);
