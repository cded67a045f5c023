//! The back office's desks: the agenda technician's closure, the integration team's
//! resend, the managers' figures.

use std::sync::Arc;

use fantoccini::Client;
use serde_json::Value;

use crate::browser::{eval, find, screenshot, shown, some_text, text_of, until};
use crate::desks::{booked_through_api, enter, sign_in};
use crate::Env;

/// A resource read through the API with `token`.
async fn read(env: &Env, token: &str, path: &str) -> Value {
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
    for chart in ["fig-channels", "fig-classes", "fig-districts", "fig-tickets", "fig-messages"] {
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
    screenshot(&c, "figures").await;
    c.close().await.expect("close");
}
