//! A counter's day beyond the first booking: a blood test whose sheet carries the
//! catalog's preparation notes, the booking moved to another date (Sposta) without
//! losing its prescription, and the ticket paid where it was booked, with the
//! counter's own remittance of the day.

use std::sync::Arc;

use fantoccini::Client;
use serde_json::Value;

use crate::back_office::read;
use crate::browser::{eval, find, screenshot, text_of, until};
use crate::desks::{enter, prescription, sign_in};
use crate::Env;

/// A fasting blood test of the demo catalog, the one its laboratories' agendas
/// book, which has preparation notes.
const ALT: &str = "90.04.5";

pub async fn counter_day(env: Arc<Env>) {
    let c = env.driver.session().await;
    let token = sign_in(&env, &c, "booking-point", "sportello").await;
    find(&c, "[data-test=cf]").await.send_keys(&format!("rssmra85t10d969t{}", enter())).await.expect("the CF");
    text_of(&c, "[data-test=patient-name]", "Rossi").await;
    let nre = prescription(&env, &token, "mario-rossi", ALT, "D").await;
    find(&c, "[data-test=nre]").await.send_keys(&format!("{nre}{}", enter())).await.expect("the NRE");
    find(&c, "[data-test=proposal-item]").await;
    c.active_element().await.expect("focus").send_keys(&enter()).await.expect("hold");
    text_of(&c, "[data-test=hold-countdown]", ":").await;
    c.active_element().await.expect("focus").send_keys(&enter()).await.expect("book");
    // The sheet prints the catalog's notes for the service.
    let notes = printed(&c, "[data-test=preparation]", "Digiuno").await;
    assert!(notes.contains("8 ore"), "the test's preparation on the sheet: {notes}");
    // The cancellation notice printed is the one the dated billing rules give today.
    let settings = crate::desks::settings(&env).await;
    let hours = settings["cancellationNoticeHours"].as_i64().expect("a notice in force");
    printed(&c, "[data-test=cancel-notice]", &format!(" {hours} ")).await;
    let code = find(&c, "[data-test=booking-code]").await.text().await.expect("code");

    let request = request_of(&env, &token, &nre).await;
    let first = booked_on(&env, &token, &request).await;
    assert_eq!(first.len(), 1, "one booking on the prescription: {first:?}");
    move_booking(&c, &first[0]).await;
    let moved = booked_on(&env, &token, &request).await;
    assert_eq!(moved.len(), 1, "the moved booking still answers for the prescription: {moved:?}");
    assert_ne!(moved[0], first[0], "a new appointment replaced the first");
    let old = read(&env, &token, &format!("Appointment/{}", first[0])).await;
    assert_eq!(old["status"], "cancelled", "the first appointment is cancelled: {old}");
    printed(&c, "[data-test=preparation]", "Digiuno").await;
    let moved_code = find(&c, "[data-test=booking-code]").await.text().await.expect("code");
    assert!(!moved_code.is_empty() && moved_code != "—", "the moved booking's code {moved_code} (was {code})");

    pay_at_counter(&env, &c, &moved_code).await;
    c.close().await.expect("close");
}

/// The text of `css` on the booking sheet, which is laid out for the printer only
/// (a browser reports no text for what the screen does not show), once it has `want`.
async fn printed(c: &Client, css: &str, want: &str) -> String {
    let text = format!("(document.querySelector('{css}')?.textContent || '')");
    until(c, &format!("{text}.includes({})", serde_json::json!(want))).await;
    eval(c, &format!("return {text};")).await.as_str().unwrap_or_default().to_string()
}

/// Sposta on the appointment `id`: proposals for its service, Enter holds the
/// first, Enter books it in place of the old one.
async fn move_booking(c: &Client, id: &str) {
    let button = format!("[data-test=appointment][data-id='{id}'] [data-test=reschedule]");
    find(c, &button).await.click().await.expect("Sposta");
    find(c, "[data-test=rescheduling]").await;
    until(c, "document.activeElement && document.activeElement.closest('[data-test=proposal-item]')").await;
    c.active_element().await.expect("focus").send_keys(&enter()).await.expect("hold");
    text_of(c, "[data-test=hold-countdown]", ":").await;
    c.active_element().await.expect("focus").send_keys(&enter()).await.expect("book");
    until(c, &format!("!document.querySelector(\"{}\")", button.replace('"', "\\\""))).await;
    screenshot(c, "booking-desk-moved").await;
}

/// The counter takes the ticket on the payment desk and reads its remittance.
async fn pay_at_counter(env: &Env, c: &Client, code: &str) {
    c.goto(&format!("{}#/payment", env.gateway.console())).await.expect("the payment desk");
    find(c, "[data-test=pay-query]").await.send_keys(&format!("{code}{}", enter())).await.expect("the code");
    let owed = text_of(c, "[data-test=invoice-amount]", "€").await;
    find(c, "[data-test=pay]").await.click().await.expect("pay");
    find(c, "[data-test=pay-confirm]").await.click().await.expect("confirm");
    text_of(c, "[data-test=receipt-text]", "balanced").await;
    // The counter's own remittance of the day, shown after the payment, lists it.
    find(c, "[data-test=remittance-line]").await;
    let lines =
        eval(c, "return [...document.querySelectorAll('[data-test=remittance-line]')].map((l) => l.textContent);")
            .await;
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let listed =
        lines.as_array().into_iter().flatten().filter_map(Value::as_str).any(|l| digits(l).ends_with(&digits(&owed)));
    assert!(listed, "the counter's remittance lists the payment of {owed}: {lines}");
    screenshot(c, "payment-desk-counter-remittance").await;
}

/// The ServiceRequest recorded under `nre`.
async fn request_of(env: &Env, token: &str, nre: &str) -> String {
    let found = read(env, token, &format!("ServiceRequest?requisition={nre}")).await;
    found["entry"][0]["resource"]["id"].as_str().unwrap_or_else(|| panic!("the prescription {nre}: {found}")).into()
}

/// The booked appointments based on ServiceRequest `id`.
async fn booked_on(env: &Env, token: &str, id: &str) -> Vec<String> {
    let found = read(env, token, &format!("Appointment?based-on=ServiceRequest/{id}&status=booked")).await;
    let entries = found["entry"].as_array().cloned().unwrap_or_default();
    entries.iter().filter_map(|e| e["resource"]["id"].as_str().map(str::to_string)).collect()
}
