//! `cupola demo load` writes the demo region under the booking rules, as `serve
//! --demo` does: the showcase booking holds its place on its slot, so no one else
//! books that slot. (Written without the rules it did not, and the year replay's
//! over-booking check found the slot booked twice.)

use reqwest::Method;
use serde_json::Value;

use crate::booking::{book_params, proposal, send};
use crate::helpers::{As, Backend, TestApp, TestDb};

async fn demo_load_books_the_showcase_under_the_rules(b: Backend) {
    let db = TestDb::new(b).await;
    let mappings = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    cupola::demo::load_into(&db.url, "http://example.org/cupola", &mappings).await.expect("the demo loads");
    let app = TestApp::spawn_on(db).await;
    let showcase = app.get_json("Appointment/appt-1", 200).await;
    assert_eq!(showcase["status"], "booked");
    let slot = showcase["slot"][0]["reference"].as_str().and_then(|r| r.strip_prefix("Slot/")).expect("its slot");
    let counter = As::booking_point("bp-counter-001");
    let (status, answer) = send(
        &app,
        &counter,
        Method::POST,
        "Appointment/$book",
        &book_params(proposal(slot, "giulia-bianchi", None), None),
    )
    .await;
    assert_eq!(status, 409, "the showcase's slot is taken: {answer}");
    let issue = &answer["issue"][0];
    assert!(issue["diagnostics"].as_str().is_some_and(|d| !d.is_empty()), "{answer}");
    let booked: Value = app.get_json(&format!("Appointment?slot=Slot/{slot}&status=booked&_summary=count"), 200).await;
    assert_eq!(booked["total"], 1, "one booking on the slot");
}

crate::on_both!(demo_load_books_the_showcase_under_the_rules);
