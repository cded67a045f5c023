//! The FHIR calls of the console's agendas desk and figures page (below) (agenda.js, agenda-template.js,
//! agenda-close.js), sent as its JavaScript sends them with the provider's token
//! from the demo sign-in: pick an agenda, save the template (and see generation's
//! refusal name its field), generate, read a week, close a day, read the list to
//! rebook.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::TestApp;

async fn send(app: &TestApp, token: &str, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut req =
        app.anonymous().request(method, app.url(path)).bearer_auth(token).header("accept", "application/fhir+json");
    if let Some(b) = body {
        req = req.header("content-type", "application/fhir+json").body(b.to_string());
    }
    let r = req.send().await.expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn of_type<'a>(bundle: &'a Value, t: &str) -> Vec<&'a Value> {
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    entries.iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == t).collect()
}

/// Midnight of a Rome day with its offset, URL-encoded as URLSearchParams sends it.
fn midnight(day: chrono::NaiveDate) -> String {
    use chrono::TimeZone;
    let at = chrono_tz::Europe::Rome
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("one");
    at.to_rfc3339().replace('+', "%2B")
}

pub async fn agenda(app: &TestApp, tokens: &HashMap<String, String>) {
    let token = &tokens["provider"];
    let (status, found) = send(app, token, Method::GET, "Schedule?_include=Schedule:actor&_count=200", None).await;
    assert_eq!(status, 200, "{found}");
    let schedules = of_type(&found, "Schedule");
    assert!(!schedules.is_empty(), "the provider sees its agendas");
    assert!(!of_type(&found, "HealthcareService").is_empty(), "with their actors for names");
    let schedule = schedules[0].clone();
    let id = schedule["id"].as_str().expect("id").to_string();

    // The template saved as the editor saves it (template first), then a refusal
    // naming the field: slotMinutes 0 of the first session.
    let mut body = schedule.clone();
    body.as_object_mut().expect("object").remove("meta");
    let (status, saved) = send(app, token, Method::PUT, &format!("Schedule/{id}"), Some(&body)).await;
    assert_eq!(status, 200, "{saved}");
    let parts = body["extension"][0]["extension"].as_array().expect("a template first").clone();
    let j = parts.iter().position(|p| p["url"] == "session").expect("a session");
    let k =
        parts[j]["extension"].as_array().unwrap().iter().position(|x| x["url"] == "slotMinutes").expect("slotMinutes");
    let mut bad = body.clone();
    bad["extension"][0]["extension"][j]["extension"][k]["valueInteger"] = json!(0);
    let (status, outcome) = send(app, token, Method::PUT, &format!("Schedule/{id}"), Some(&bad)).await;
    assert_eq!(status, 200, "a template is checked when generated from: {outcome}");
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive();
    let from = json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": today.to_string()}]});
    let (status, outcome) =
        send(app, token, Method::POST, &format!("Schedule/{id}/$generate-slots"), Some(&from)).await;
    assert_eq!(status, 422, "{outcome}");
    assert_eq!(crate::helpers::expression(&outcome), format!("Schedule.extension[0].extension[{j}].extension[{k}]"));
    let (status, saved) = send(app, token, Method::PUT, &format!("Schedule/{id}"), Some(&body)).await;
    assert_eq!(status, 200, "{saved}");

    // Generate as the owning provider, then the week with the server's filter.
    let (status, out) = send(app, token, Method::POST, &format!("Schedule/{id}/$generate-slots"), Some(&from)).await;
    assert_eq!(status, 200, "{out}");
    let mut week = Vec::new();
    for offset in 0..14 {
        let monday = today + chrono::Duration::days(offset);
        let next = monday + chrono::Duration::days(7);
        let path = format!(
            "Slot?schedule=Schedule/{id}&start=ge{}&start=lt{}&_sort=start&_count=1000",
            midnight(monday),
            midnight(next)
        );
        let (status, bundle) = send(app, token, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{bundle}");
        week = of_type(&bundle, "Slot").into_iter().cloned().collect();
        if !week.is_empty() {
            break;
        }
    }
    let first = week.first().expect("a week with slots");
    let start = first["start"].as_str().expect("start");
    let day = chrono::NaiveDate::parse_from_str(&start[..10], "%Y-%m-%d").expect("day");

    // Close that day; the appointments to rebook are read in one search by id.
    let closure = json!({"resourceType": "Parameters", "parameter": [
        {"name": "start", "valueDateTime": midnight(day).replace("%2B", "+")},
        {"name": "end", "valueDateTime": midnight(day + chrono::Duration::days(1)).replace("%2B", "+")},
        {"name": "reason", "valueString": "medico assente"}]});
    let (status, out) = send(app, token, Method::POST, &format!("Schedule/{id}/$close"), Some(&closure)).await;
    assert_eq!(status, 200, "{out}");
    let params = out["parameter"].as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(params.iter().any(|p| p["name"] == "closed"), "{out}");
    let ids: Vec<String> = params
        .iter()
        .filter(|p| p["name"] == "rebook")
        .filter_map(|p| p["valueReference"]["reference"].as_str())
        .map(|r| r.trim_start_matches("Appointment/").to_string())
        .collect();
    let ids = if ids.is_empty() { vec!["none".to_string()] } else { ids };
    let path = format!("Appointment?_id={}&_include=Appointment:patient&_count={}", ids.join(","), ids.len());
    let (status, bundle) = send(app, token, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{bundle}");
}

/// The figures page's calls (figures.js), as an administrator: every chart's search
/// answers, the days and the counts where the charts read them.
pub async fn figures(app: &TestApp, tokens: &HashMap<String, String>) {
    let token = &tokens["admin"];
    let month = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).format("%Y-%m").to_string();
    let next = {
        let first = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").expect("first");
        (first + chrono::Duration::days(32)).format("%Y-%m-01").to_string()
    };
    let get = |path: String| async move {
        let (status, body) = send(app, token, Method::GET, &path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    };
    let by_day = get(format!("$waiting-times?period={month}&group=day")).await;
    assert_eq!(by_day["resourceType"], "Parameters");
    for class in ["U", "B", "D", "P"] {
        get(format!("$waiting-times?period={month}&priority-class={class}")).await;
    }
    let places = get("Location?_elements=address&_count=1000".into()).await;
    let district = of_type(&places, "Location")
        .iter()
        .find_map(|l| l["address"]["district"].as_str().map(str::to_string))
        .expect("the facilities' districts");
    get(format!("$waiting-times?period={month}&district={}", district.replace(' ', "%20"))).await;
    for status in ["issued", "balanced", "cancelled"] {
        let n = get(format!("Invoice?status={status}&date=ge{month}-01&date=lt{next}&_summary=count")).await;
        assert!(n["total"].is_u64(), "{n}");
    }
    let outbox = get("$outbox-summary".into()).await;
    assert_eq!(outbox["resourceType"], "Parameters");
}
