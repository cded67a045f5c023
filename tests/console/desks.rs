//! The desks' main paths, as operators walk them: keyboard first, through the
//! console's pages, checked on what the operator sees.

use std::sync::Arc;

use fantoccini::key::Key;
use fantoccini::Client;

use crate::browser::{eval, find, screenshot, shown, text_of};
use crate::{Env, Scenario};

pub const ALL: &[(&str, Scenario)] = &[
    ("booking_desk_from_patient_to_sheet", |e| Box::pin(booking_desk(e))),
    ("payment_desk_pays_a_booking", |e| Box::pin(payment_desk(e))),
    ("roles_see_only_their_desks", |e| Box::pin(roles_see_only_their_desks(e))),
    ("api_refusal_shown_in_words", |e| Box::pin(api_refusal_shown_in_words(e))),
    ("agenda_closure_lists_whom_to_rebook", |e| Box::pin(crate::back_office::agenda_closure(e))),
    ("integration_desk_resends_nothing_twice", |e| Box::pin(crate::back_office::integration_resend(e))),
    ("integration_desk_requeues_a_parked_message", |e| Box::pin(crate::back_office::integration_requeue_parked(e))),
    ("figures_draw_their_charts", |e| Box::pin(crate::back_office::figures(e))),
    ("counter_moves_a_booking_and_reads_its_remittance", |e| Box::pin(crate::counter::counter_day(e))),
];
/// Signing in with the region's identity provider, on a gateway of its own.
pub const SIGN_IN: &[(&str, Scenario)] = &[("oauth_sign_in", crate::oauth::sign_in)];

/// Enter, as the keyboard sends it.
pub fn enter() -> String {
    char::from(Key::Enter).to_string()
}

/// Signs in on the demo page as `role` with the organisation offered first (or the
/// one whose label contains `org_hint`); returns the console's token.
pub async fn sign_in(env: &Env, c: &Client, role: &str, org_hint: &str) -> String {
    // A new operator at this window: whoever was signed in is not any more.
    c.goto(&env.gateway.console()).await.expect("the console opens");
    eval(c, "sessionStorage.removeItem('cupola.token'); return null;").await;
    c.refresh().await.expect("reload");
    find(c, "[data-test=demo-role]").await;
    crate::browser::until(c, "document.querySelector('[data-test=demo-org]').options.length > 0").await;
    let chosen = eval(
        c,
        &format!(
            "const r = document.querySelector('[data-test=demo-role]'); r.value = '{role}';
             r.dispatchEvent(new Event('change'));
             const o = document.querySelector('[data-test=demo-org]');
             const pick = [...o.options].find((x) => x.textContent.includes('{org_hint}')) || o.options[0];
             o.value = pick.value; return pick.value;"
        ),
    )
    .await;
    assert!(chosen.as_str().is_some_and(|v| !v.is_empty()), "the demo offers an organisation for {role}");
    find(c, "[data-test=demo-signin]").await.click().await.expect("sign in");
    find(c, "[data-test=operator-role]").await;
    let token = eval(c, "return sessionStorage.getItem('cupola.token');").await;
    token.as_str().expect("the console keeps its token").to_string()
}

/// A prescription for `patient` recorded through the API, as a GP's software would.
pub async fn prescription(env: &Env, token: &str, patient: &str, service: &str, class: &str) -> String {
    let base = "http://example.org/cupola";
    let system = nre_system(env).await;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let nre = format!("070A{:011}", nanos % 100_000_000_000);
    let body = serde_json::json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "requisition": {"system": system, "value": nre},
        "subject": {"reference": format!("Patient/{patient}")},
        "code": {"coding": [{"system": format!("{base}/CodeSystem/catalog"), "code": service}]},
        "extension": [{"url": format!("{base}/StructureDefinition/priority-class"),
            "valueCoding": {"system": format!("{base}/CodeSystem/priority-class"), "code": class}}]
    });
    let r = reqwest::Client::new()
        .post(format!("{}/ServiceRequest", env.gateway.fhir()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the gateway answers");
    let status = r.status();
    assert!(status.is_success(), "the prescription is recorded: {status} {}", r.text().await.unwrap_or_default());
    nre
}

/// The console's settings (`/console/settings.json`).
pub async fn settings(env: &Env) -> serde_json::Value {
    let url = format!("{}/settings.json", env.gateway.console());
    reqwest::get(url).await.expect("settings").json().await.expect("settings are JSON")
}

/// The NRE's identifier system, as the console's settings give it.
async fn nre_system(env: &Env) -> String {
    settings(env).await["nre"]["system"].as_str().expect("the NRE system").to_string()
}

/// The counter's path: patient by codice fiscale, then — in three keyboard actions
/// (the NRE typed + Enter, Enter on the first proposal, Enter to book) — a booked
/// appointment with its code and ticket, and the sheet to print.
async fn booking_desk(env: Arc<Env>) {
    let c = env.driver.session().await;
    let token = sign_in(&env, &c, "booking-point", "sportello").await;
    find(&c, "[data-test=booking-desk]").await;
    let cf = find(&c, "[data-test=cf]").await;
    cf.send_keys(&format!("rssmra85t10d969t{}", enter())).await.expect("type the codice fiscale");
    text_of(&c, "[data-test=patient-name]", "Rossi").await;
    text_of(&c, "[data-test=patient-cf]", "RSSMRA85T10D969T").await;
    let nre = prescription(&env, &token, "mario-rossi", "89.7A.3", "D").await;

    // 1: the NRE typed where the caret already is, and Enter.
    let focused = c.active_element().await.expect("a focused element");
    assert_eq!(
        focused.attr("data-test").await.expect("attr").as_deref(),
        Some("nre"),
        "the caret waits in the NRE field"
    );
    focused.send_keys(&format!("{nre}{}", enter())).await.expect("type the NRE");
    find(&c, "[data-test=proposal-item]").await;
    text_of(&c, "[data-test=proposals]", "D").await;
    screenshot(&c, "booking-desk-proposals").await;
    // 2: Enter on the first proposal, which has the focus: a hold with its countdown.
    c.active_element().await.expect("focus").send_keys(&enter()).await.expect("hold");
    let clock = text_of(&c, "[data-test=hold-countdown]", ":").await;
    assert!(clock.chars().any(|ch| ch.is_ascii_digit()), "the hold counts down: {clock}");
    // 3: Enter books.
    c.active_element().await.expect("focus").send_keys(&enter()).await.expect("book");
    let code = find(&c, "[data-test=booking-code]").await.text().await.expect("code");
    assert!(code.len() >= 6 && code != "—", "a booking code is shown at once: {code}");
    let amount = text_of(&c, "[data-test=ticket-amount]", "€").await;
    assert!(amount.chars().any(|ch| ch.is_ascii_digit()), "the ticket to pay is shown: {amount}");
    screenshot(&c, "booking-desk-booked").await;

    let sheet = eval(&c, "return document.querySelector('[data-test=booking-sheet]').textContent;").await;
    let sheet = sheet.as_str().unwrap_or_default();
    assert!(sheet.contains(&code), "the booking sheet carries the code {code}: {sheet}");
    assert!(sheet.contains("€"), "the booking sheet carries the amount: {sheet}");
    assert!(sheet.contains("Rossi"), "the booking sheet names the patient: {sheet}");
    let pdf = c.print(Default::default()).await.expect("the page prints");
    assert!(pdf.len() > 1000 && pdf.starts_with(b"%PDF"), "printing gives a PDF");
    c.close().await.expect("close");
}

/// The pharmacy's path: the booking code typed, what is owed, paid, the receipt.
async fn payment_desk(env: Arc<Env>) {
    let c = env.driver.session().await;
    let desk_token = sign_in(&env, &c, "booking-point", "sportello").await;
    let code = book_through_api(&env, &desk_token, "giulia-bianchi").await;
    sign_in(&env, &c, "payment-point", "").await;
    c.goto(&format!("{}#/payment", env.gateway.console())).await.expect("the payment desk");
    let q = find(&c, "[data-test=pay-query]").await;
    q.send_keys(&format!("{code}{}", enter())).await.expect("type the booking code");
    text_of(&c, "[data-test=owed-name]", "Bianchi").await;
    let owed = text_of(&c, "[data-test=invoice-amount]", "€").await;
    find(&c, "[data-test=pay]").await.click().await.expect("pay");
    find(&c, "[data-test=pay-confirm]").await.click().await.expect("confirm");
    let receipt = text_of(&c, "[data-test=receipt-text]", "balanced").await;
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    assert!(digits(&receipt).contains(&digits(&owed)), "the receipt carries the amount paid {owed}:\n{receipt}");
    assert!(
        receipt.contains("Giulia") || receipt.contains("giulia-bianchi"),
        "the receipt names the patient:\n{receipt}"
    );
    screenshot(&c, "payment-desk-receipt").await;
    // Paid: asked again, nothing is owed on that booking.
    c.refresh().await.expect("reload");
    find(&c, "[data-test=pay-query]").await.send_keys(&format!("{code}{}", enter())).await.expect("again");
    find(&c, "[data-test=show-receipt]").await;
    assert!(!shown(&c, "[data-test=pay]").await, "a paid ticket is not offered for payment again");
    c.close().await.expect("close");
}

/// A booking made the way the console makes it ($find, $hold, $book), for a
/// payment to take; returns its booking code.
async fn book_through_api(env: &Env, token: &str, patient: &str) -> String {
    booking_code(&booked_through_api(env, token, patient).await)
}

/// The booking code of a booked Appointment.
pub fn booking_code(appointment: &serde_json::Value) -> String {
    let code = appointment["identifier"]
        .as_array()
        .and_then(|ids| ids.iter().find(|i| i["system"].as_str().is_some_and(|s| s.ends_with("/booking-code"))));
    code.and_then(|i| i["value"].as_str()).unwrap_or_else(|| panic!("a booking code in {appointment}")).to_string()
}

/// [`book_through_api`]'s booked Appointment.
pub async fn booked_through_api(env: &Env, token: &str, patient: &str) -> serde_json::Value {
    let http = reqwest::Client::new();
    let fhir = env.gateway.fhir();
    let nre = prescription(env, token, patient, "89.7A.3", "D").await;
    let call = |path: String, body: Option<serde_json::Value>| {
        let req = match body {
            Some(b) => http.post(format!("{fhir}/{path}")).json(&b),
            None => http.get(format!("{fhir}/{path}")),
        };
        async move {
            let r = req.bearer_auth(token).send().await.expect("the gateway answers");
            let status = r.status();
            let v: serde_json::Value = r.json().await.expect("JSON");
            assert!(status.is_success(), "{status}: {v}");
            v
        }
    };
    let (system, today) =
        (nre_system(env).await, chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive());
    let end = today + chrono::Days::new(60);
    let found =
        call(format!("Appointment/$find?start={today}&end={end}&referral-identifier={system}|{nre}&_count=1"), None)
            .await;
    let first =
        found["entry"][0]["resource"]["id"].as_str().unwrap_or_else(|| panic!("a proposal in {found}")).to_string();
    let reference = |id: &str| {
        serde_json::json!({"resourceType": "Parameters", "parameter": [
            {"name": "appointment-reference", "valueReference": {"reference": format!("Appointment/{id}")}}]})
    };
    let held = call("Appointment/$hold".into(), Some(reference(&first))).await;
    let held_id = held["id"].as_str().expect("the held appointment's id").to_string();
    let booked = call("Appointment/$book".into(), Some(reference(&held_id))).await;
    let entries = booked["entry"].as_array().cloned().unwrap_or_default();
    let appointment = entries
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Appointment" && r["status"] == "booked")
        .unwrap_or_else(|| panic!("a booked Appointment in {booked}"));
    appointment.clone()
}

/// Each role is offered its desks only.
async fn roles_see_only_their_desks(env: Arc<Env>) {
    let c = env.driver.session().await;
    sign_in(&env, &c, "payment-point", "").await;
    find(&c, "[data-test=nav-payment]").await;
    assert!(!shown(&c, "[data-test=nav-booking]").await, "a pharmacy is not offered the booking desk");
    assert!(!shown(&c, "[data-test=nav-integration]").await, "a pharmacy is not offered the integration desk");
    sign_in(&env, &c, "booking-point", "sportello").await;
    find(&c, "[data-test=nav-booking]").await;
    assert!(!shown(&c, "[data-test=nav-integration]").await, "a counter is not offered the integration desk");
    c.close().await.expect("close");
}

/// A token the API refuses: the page says why in words, not as a status code.
async fn api_refusal_shown_in_words(env: Arc<Env>) {
    let c = env.driver.session().await;
    let token = sign_in(&env, &c, "booking-point", "sportello").await;
    eval(&c, "sessionStorage.clear(); return null;").await;
    c.goto(&env.gateway.console()).await.expect("the sign-in page");
    // The signature's last characters changed: the API answers 401 with an OperationOutcome.
    let forged = format!("{}AAAA", &token[..token.len() - 4]);
    let field = find(&c, "[data-test=token]").await;
    field.send_keys(&format!("{forged}{}", enter())).await.expect("paste a token");
    let said = crate::browser::some_text(&c, "[data-test=signin-reason], #token-error").await;
    assert!(
        said.to_lowercase().contains("signature") || said.to_lowercase().contains("firma"),
        "the refusal's words: {said}"
    );
    assert!(!said.trim().chars().all(|ch| ch.is_ascii_digit()), "not a bare status code: {said}");
    c.close().await.expect("close");
}
