//! The back office's desks: the agenda technician's closure, the integration team's
//! resend, the managers' figures.

use std::sync::Arc;

use fantoccini::Client;
use serde_json::Value;

use crate::browser::{eval, find, screenshot, shown, some_text, text_of, until};
use crate::desks::{booked_through_api, enter, sign_in};
use crate::Env;

/// A resource read through the API with `token`.
pub async fn read(env: &Env, token: &str, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{}/{path}", env.gateway.fhir()))
        .bearer_auth(token)
        .send()
        .await
        .expect("the gateway answers");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("JSON")
}

/// Picks `value` in the select `test`, as a click on the list would.
async fn choose(c: &Client, test: &str, value: &str) {
    until(c, &format!("[...document.querySelector('[data-test={test}]').options].some((o) => o.value === '{value}')"))
        .await;
    eval(
        c,
        &format!(
            "const s = document.querySelector('[data-test={test}]'); s.value = '{value}';
             s.dispatchEvent(new Event('change')); return null;"
        ),
    )
    .await;
}

/// A day of an agenda with a booking closed (the doctor is ill): the appointment
/// is listed to rebook, with its patient.
pub async fn agenda_closure(env: Arc<Env>) {
    let c = env.driver.session().await;
    let desk = sign_in(&env, &c, "booking-point", "sportello").await;
    let booked = booked_through_api(&env, &desk, "luca-ferrari").await;
    let slot_ref = booked["slot"][0]["reference"].as_str().expect("the booked slot").to_string();
    let slot = read(&env, &desk, &slot_ref).await;
    let schedule =
        slot["schedule"]["reference"].as_str().expect("its agenda").trim_start_matches("Schedule/").to_string();
    let day = slot["start"].as_str().expect("its start")[..10].to_string();

    sign_in(&env, &c, "admin", "").await;
    c.goto(&format!("{}#/agenda", env.gateway.console())).await.expect("the agendas desk");
    choose(&c, "agenda-schedule", &schedule).await;
    find(&c, "[data-test=week-grid]").await;
    for _ in 0..10 {
        if shown(&c, &format!("[data-test=close-day-{day}]")).await {
            break;
        }
        find(&c, "[data-test=week-next]").await.click().await.expect("next week");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    screenshot(&c, "agenda-desk-week").await;
    find(&c, &format!("[data-test=close-day-{day}]")).await.click().await.expect("close the day");
    let reason = find(&c, "[data-test=close-reason]").await;
    reason.send_keys(&format!("Medico assente{}", enter())).await.expect("the reason, and Enter");
    text_of(&c, "[data-test=rebook-patient]", "Ferrari").await;
    text_of(&c, "[data-test=rebook-summary]", "1").await;
    screenshot(&c, "agenda-desk-rebook").await;
    let closed = read(&env, &desk, &slot_ref).await;
    assert_eq!(closed["status"], "busy-unavailable", "the slot is closed: {closed}");
    // From the list, the booking desk with the patient and the appointment to move:
    // Enter holds the first new date, Enter books it, and the old one is cancelled.
    find(&c, "[data-test=rebook-open]").await.click().await.expect("rebook at the desk");
    text_of(&c, "[data-test=patient-name]", "Ferrari").await;
    find(&c, "[data-test=rescheduling]").await;
    until(&c, "document.activeElement && document.activeElement.closest('[data-test=proposal-item]')").await;
    c.active_element().await.expect("focus").send_keys(&enter()).await.expect("hold");
    text_of(&c, "[data-test=hold-countdown]", ":").await;
    c.active_element().await.expect("focus").send_keys(&enter()).await.expect("book");
    find(&c, "[data-test=booking-code]").await;
    let id = booked["id"].as_str().expect("the first booking's id");
    let old = read(&env, &desk, &format!("Appointment/{id}")).await;
    assert_eq!(old["status"], "cancelled", "the appointment on the closed day is replaced: {old}");
    c.close().await.expect("close");
}

/// A message resent from the integration desk: confirmed first, then the desk says
/// what became of it; a message already waiting is not queued twice.
pub async fn integration_resend(env: Arc<Env>) {
    let c = env.driver.session().await;
    let desk = sign_in(&env, &c, "booking-point", "sportello").await;
    booked_through_api(&env, &desk, "anna-esposito").await;
    sign_in(&env, &c, "admin", "").await;
    c.goto(&format!("{}#/integration", env.gateway.console())).await.expect("the integration desk");
    find(&c, "[data-test=summary-table]").await;
    find(&c, "[data-test=outbox-rows] tr[data-status]").await;
    let id =
        eval(&c, "return document.querySelector('[data-test=outbox-rows] tr[data-status]').dataset.test.slice(8);")
            .await;
    let id = id.as_str().expect("a message id").to_string();
    let before = read(&env, &admin_token(&c).await, &format!("$outbox?message-id={id}")).await;
    find(&c, &format!("[data-test=select-{id}]")).await.click().await.expect("select it");
    find(&c, "[data-test=resend]").await.click().await.expect("resend");
    text_of(&c, "[data-test=resend-confirm]", "1").await;
    find(&c, "[data-test=resend-yes]").await.click().await.expect("confirm");
    let said = some_text(&c, "[data-test=resend-result]").await;
    assert!(said.contains(&id), "the desk says what became of {id}: {said}");
    screenshot(&c, "integration-desk").await;
    // Still one message under that id, still waiting: nothing sent twice.
    let after = read(&env, &admin_token(&c).await, &format!("$outbox?message-id={id}")).await;
    let count =
        |v: &Value| v["parameter"].as_array().map_or(0, |p| p.iter().filter(|x| x["name"] == "message").count());
    assert_eq!(count(&after), count(&before), "resending a waiting message queues nothing more: {after}");
    c.close().await.expect("close");
}

/// A message the provider refused (fatal-error: parked) re-queued from the desk:
/// the desk shows it parked with its reason, says it goes again under a new id, and
/// the API then has it resent as that id.
pub async fn integration_requeue_parked(env: Arc<Env>) {
    let c = env.driver.session().await;
    let desk = sign_in(&env, &c, "booking-point", "sportello").await;
    let booked = booked_through_api(&env, &desk, "chiara-ricci").await;
    sign_in(&env, &c, "admin", "").await;
    let admin = admin_token(&c).await;
    let (id, provider) = message_about(&env, &admin, booked["id"].as_str().expect("an id")).await;
    refuse(&env, &id, &provider).await;

    c.goto(&format!("{}#/integration", env.gateway.console())).await.expect("the integration desk");
    find(&c, "[data-test=outbox-table]").await;
    choose(&c, "filter-status", "parked").await;
    text_of(&c, &format!("[data-test=reason-{id}]"), "unknown ward").await;
    find(&c, &format!("[data-test=select-{id}]")).await.click().await.expect("select it");
    find(&c, "[data-test=resend]").await.click().await.expect("resend");
    // The desk warns that an answered message goes again under a new id.
    find(&c, "[data-test=resend-new-ids]").await;
    find(&c, "[data-test=resend-yes]").await.click().await.expect("confirm");
    let said = text_of(&c, &format!("[data-test=resent-{id}]"), "→").await;
    let after = read(&env, &admin, &format!("$outbox?message-id={id}")).await;
    let resent_as = part(&after, "resent-as").unwrap_or_else(|| panic!("{id} was resent: {after}"));
    assert!(said.contains(&resent_as), "the desk names the new message {resent_as}: {said}");
    let fresh = read(&env, &admin, &format!("$outbox?message-id={resent_as}")).await;
    assert_eq!(part(&fresh, "status").as_deref(), Some("pending"), "queued again: {fresh}");
    screenshot(&c, "integration-desk-requeued").await;
    c.close().await.expect("close");
}

/// The first message's part `name`, as text.
fn part(outbox: &Value, name: &str) -> Option<String> {
    let message = outbox["parameter"].as_array()?.iter().find(|p| p["name"] == "message")?;
    let p = message["part"].as_array()?.iter().find(|p| p["name"] == name)?;
    p.as_object()?.iter().find(|(k, _)| k.starts_with("value")).and_then(|(_, v)| v.as_str().map(str::to_string))
}

/// The message about Appointment `appointment`, and its provider's Organization id.
async fn message_about(env: &Env, admin: &str, appointment: &str) -> (String, String) {
    let pending = read(env, admin, "$outbox?status=pending&_count=200").await;
    let focus = format!("Appointment/{appointment}");
    let message = pending["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["part"].as_array().is_some_and(|p| p.iter().any(|x| x["valueReference"]["reference"] == focus)))
        .unwrap_or_else(|| panic!("a message about {focus}: {pending}"));
    let text = |n: &str| {
        let p = message["part"].as_array().and_then(|p| p.iter().find(|x| x["name"] == n));
        p.and_then(|x| x["valueString"].as_str()).unwrap_or_else(|| panic!("{n} in {message}")).to_string()
    };
    let code = text("provider");
    let base = canonical_base(env).await;
    let orgs = read(env, admin, &format!("Organization?identifier={base}/sid/provider|{code}")).await;
    let org = orgs["entry"][0]["resource"]["id"].as_str().unwrap_or_else(|| panic!("provider {code}: {orgs}"));
    (text("message-id"), org.to_string())
}

/// The gateway's canonical base, as the console's settings give it.
async fn canonical_base(env: &Env) -> String {
    crate::desks::settings(env).await["canonicalBase"].as_str().expect("the canonical base").to_string()
}

/// The provider's system answers message `id` with a fatal error, over HTTP.
async fn refuse(env: &Env, id: &str, org: &str) {
    let http = reqwest::Client::new();
    let root = env.gateway.console();
    let signed: Value = http
        .post(format!("{root}/demo-token"))
        .json(&serde_json::json!({"role": "provider", "org": org}))
        .send()
        .await
        .expect("a provider's demo token")
        .json()
        .await
        .expect("JSON");
    let token = signed["token"].as_str().unwrap_or_else(|| panic!("a token: {signed}"));
    let nack = serde_json::json!({"resourceType": "Bundle", "type": "message", "entry": [{"resource": {
        "resourceType": "MessageHeader", "id": format!("nack-{id}"),
        "eventCoding": {"system": format!("{}/CodeSystem/message-event", canonical_base(env).await), "code": "acknowledgement"},
        "sender": {"reference": format!("Organization/{org}")}, "source": {"endpoint": "urn:provider:system"},
        "response": {"identifier": id, "code": "fatal-error", "details": {"display": "unknown ward"}}}}]});
    let r = http
        .post(format!("{}/$process-message", env.gateway.fhir()))
        .bearer_auth(token)
        .json(&nack)
        .send()
        .await
        .expect("the gateway answers");
    let status = r.status();
    assert!(status.is_success(), "the refusal is taken: {status} {}", r.text().await.unwrap_or_default());
}

async fn admin_token(c: &Client) -> String {
    eval(c, "return sessionStorage.getItem('cupola.token');").await.as_str().expect("a token").to_string()
}

/// The managers' page: every chart drawn, and the numbers behind the channels'.
pub async fn figures(env: Arc<Env>) {
    let c = env.driver.session().await;
    let desk = sign_in(&env, &c, "booking-point", "sportello").await;
    booked_through_api(&env, &desk, "paolo-colombo").await;
    sign_in(&env, &c, "admin", "").await;
    c.goto(&format!("{}#/figures", env.gateway.console())).await.expect("the figures");
    until(&c, "document.body.dataset.ready === 'figures'").await;
    for chart in ["fig-channels", "fig-classes", "fig-services", "fig-districts", "fig-tickets", "fig-messages"] {
        let marks = eval(
            &c,
            &format!(
                "return document.querySelectorAll('#{chart} svg rect, #{chart} svg path, #{chart} svg line').length;"
            ),
        )
        .await;
        assert!(marks.as_u64().unwrap_or(0) > 0, "{chart} draws something");
    }
    find(&c, "[data-test=fig-channels-toggle]").await.click().await.expect("show the numbers");
    let numbers = some_text(&c, "[data-test=fig-channels-numbers]").await;
    // The counters' row of today: the bookings this scenario (and the others) made.
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).format("%Y-%m-%d").to_string();
    let counted = numbers
        .lines()
        .filter(|l| l.contains(&today) || l.contains("sportello"))
        .any(|l| l.split_whitespace().any(|w| w.parse::<u32>().is_ok_and(|n| n >= 1)));
    assert!(counted, "today's counter bookings are counted ({today}): {numbers}");
    // The most booked services, each with its own wait: the visits booked above among them.
    find(&c, "[data-test=fig-services-toggle]").await.click().await.expect("show the services' numbers");
    let services = some_text(&c, "[data-test=fig-services-numbers]").await;
    assert!(services.contains("89.7A.3"), "the booked visit has its row: {services}");
    screenshot(&c, "figures").await;
    c.close().await.expect("close");
}
