//! `cupola dispatch-lists` (the daily appointment lists on demand) and
//! `cupola provider-sim` (a provider system for the demo and the tests: it takes
//! its queue's messages, acknowledges each, and reports its patients arrived,
//! seen or missing with configurable odds).

use std::sync::Arc;

use chrono::NaiveDate;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{json, Value};

use crate::mappings::Mappings;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct DispatchArgs {
    /// The day (Europe/Rome) whose appointments are listed; default today.
    #[arg(long)]
    pub date: Option<NaiveDate>,
    #[command(flatten)]
    pub store: crate::billing::cli::StoreArgs,
}

/// Writes each provider's list of the day to the outbox; the gateway's relay sends them.
pub async fn dispatch(args: DispatchArgs) -> anyhow::Result<()> {
    let DispatchArgs { date, store: args } = args;
    let registry = Arc::new(crate::fhir::names::registry(&args.canonical_base));
    let store = Store::connect(&args.database_url, 2, std::time::Duration::from_secs(30), registry).await?;
    let mappings = Mappings::load(&args.mappings_dir, &args.canonical_base, &crate::fhir::check::Checker::shared())
        .map_err(|e| anyhow::anyhow!("{e}; fix the file and run again"))?;
    let store = crate::booking::hooks::configured(
        store,
        crate::booking::Settings {
            base: args.canonical_base.clone(),
            messaging: Arc::new(super::Settings { routing: mappings.routing, providers: mappings.providers }),
            ..Default::default()
        },
    );
    let day = date.unwrap_or_else(|| crate::billing::rome_day(crate::store::now_micros()));
    let sent = super::dispatch_daily_lists(&store, day, false).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    for (org, n) in &sent {
        println!("Organization/{org}\t{n} appointments");
    }
    println!("{} lists of {day} written to the outbox; a gateway with --amqp-url sends them", sent.len());
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// The provider code this system is (its queue is `<exchange>.provider.<code>`).
    #[arg(long)]
    pub provider: String,
    /// The broker, as this provider's own user.
    #[arg(long, env = "CUPOLA_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    #[arg(long, env = "CUPOLA_AMQP_EXCHANGE", default_value = "cupola")]
    pub exchange: String,
    /// Odds that a booked patient turns up (then: seen, or a no-show).
    #[arg(long, default_value_t = 0.9)]
    pub arrive: f64,
    /// Odds that a patient who turned up is seen (`fulfilled`).
    #[arg(long, default_value_t = 1.0)]
    pub fulfil: f64,
    /// Stop after this many messages (default: run until stopped).
    #[arg(long)]
    pub count: Option<usize>,
}

/// A number in [0, 1) from `text`, the same every time (no randomness needed to
/// be repeatable: the message id decides).
fn chance(text: &str, salt: u64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// What the simulated provider answers to `message`: an acknowledgement, and for
/// a booking the patient's fate as status changes.
pub fn answers(base: &str, provider: &str, message: &Value, args: &SimArgs) -> Vec<Value> {
    let h = &message["entry"][0]["resource"];
    let id = h["id"].as_str().unwrap_or_default();
    let header = |event: &str, suffix: &str| {
        json!({"resourceType": "MessageHeader", "id": format!("{id}-{suffix}"),
            "eventCoding": {"system": format!("{base}/CodeSystem/message-event"), "code": event},
            "source": {"name": provider, "endpoint": format!("urn:provider:{provider}")}})
    };
    let mut ack = header("acknowledgement", "ack");
    ack["response"] = json!({"identifier": id, "code": "ok"});
    let mut out = vec![json!({"resourceType": "Bundle", "type": "message", "entry": [{"resource": ack}]})];
    if h["eventCoding"]["code"] != "appointment-booked" {
        return out;
    }
    let Some(appointment) = message["entry"].as_array().and_then(|e| e.get(1)).map(|e| e["resource"].clone()) else {
        return out;
    };
    let fates: Vec<&str> = if chance(id, 1) < args.arrive {
        if chance(id, 2) < args.fulfil {
            vec!["arrived", "fulfilled"]
        } else {
            vec!["arrived"]
        }
    } else {
        vec!["noshow"]
    };
    for status in fates {
        let mut a = appointment.clone();
        a["status"] = json!(status);
        let mut h = header("appointment-status-changed", status);
        h["focus"] = json!([{"reference": format!("Appointment/{}", a["id"].as_str().unwrap_or_default())}]);
        out.push(json!({"resourceType": "Bundle", "type": "message", "entry": [{"resource": h}, {"resource": a}]}));
    }
    out
}

/// Consumes the provider's queue and answers each message through the inbound
/// exchange as the broker user of `--amqp-url`.
pub async fn provider_sim(args: SimArgs, base: &str) -> anyhow::Result<()> {
    let user = url::Url::parse(&args.amqp_url)?.username().to_string();
    let conn = Connection::connect(&args.amqp_url, ConnectionProperties::default())
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the broker at --amqp-url: {e}"))?;
    let channel = conn.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let queue = format!("{}.provider.{}", args.exchange, args.provider);
    let inbound = format!("{}.inbound", args.exchange);
    let mut consumer = channel
        .basic_consume(
            &queue,
            &format!("provider-sim-{}", args.provider),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot consume {queue} (does the gateway run with this exchange?): {e}"))?;
    tracing::info!(queue, "provider simulator consuming");
    let mut seen = 0usize;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let message: Value = serde_json::from_slice(&delivery.data).unwrap_or(Value::Null);
        for answer in answers(base, &args.provider, &message, &args) {
            let props = BasicProperties::default()
                .with_content_type("application/fhir+json".into())
                .with_user_id(user.clone().into())
                .with_message_id(answer["entry"][0]["resource"]["id"].as_str().unwrap_or_default().into())
                .with_delivery_mode(2);
            channel
                .basic_publish(&inbound, "", BasicPublishOptions::default(), answer.to_string().as_bytes(), props)
                .await?
                .await?;
        }
        delivery.acker.ack(BasicAckOptions::default()).await?;
        seen += 1;
        tracing::info!(seen, event = %message["entry"][0]["resource"]["eventCoding"]["code"], "message answered");
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
    }
    let _ = conn.close(0, "provider simulator done").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_booking_is_acknowledged_and_the_patient_seen_or_missed() {
        let args = SimArgs {
            provider: "galliera".into(),
            amqp_url: String::new(),
            exchange: "cupola".into(),
            arrive: 1.0,
            fulfil: 1.0,
            count: None,
        };
        let m = json!({"entry": [
            {"resource": {"resourceType": "MessageHeader", "id": "m1", "eventCoding": {"code": "appointment-booked"}}},
            {"resource": {"resourceType": "Appointment", "id": "a1", "status": "booked"}}]});
        let out = answers("b", "galliera", &m, &args);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["entry"][0]["resource"]["response"]["identifier"], "m1");
        assert_eq!(out[2]["entry"][1]["resource"]["status"], "fulfilled");
        let missing = answers("b", "galliera", &m, &SimArgs { arrive: 0.0, ..args.clone() });
        assert_eq!(missing[1]["entry"][1]["resource"]["status"], "noshow");
        assert!((0.0..1.0).contains(&chance("x", 3)));
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ProviderAddArgs {
    /// The provider code (as in `mappings/providers/<code>.json` and its Organization's
    /// `sid/provider` identifier): the broker user's name.
    pub code: String,
    /// The new user's password (default: a random one, printed).
    #[arg(long, env = "CUPOLA_PROVIDER_PASSWORD")]
    pub password: Option<String>,
    /// RabbitMQ's management API, as an administrator.
    #[arg(long, env = "CUPOLA_AMQP_MANAGEMENT_URL", default_value = "http://guest:guest@127.0.0.1:15672")]
    pub management_url: String,
    /// The broker, as the gateway's user (to declare the provider's queue).
    #[arg(long, env = "CUPOLA_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    #[arg(long, env = "CUPOLA_AMQP_EXCHANGE", default_value = "cupola")]
    pub exchange: String,
}

/// `cupola provider add CODE`: the provider's broker user, allowed to read only its
/// queue and write only to the inbound exchange, and its queue. Returns the
/// provider's AMQP URL.
pub async fn provider_add(args: ProviderAddArgs) -> anyhow::Result<String> {
    let ok = |c: &str| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok(&args.code) {
        anyhow::bail!("provider code {:?}: lower-case letters, digits and -", args.code);
    }
    let amqp = url::Url::parse(&args.amqp_url)?;
    let vhost = match amqp.path().trim_start_matches('/') {
        "" => "/".to_string(),
        v => percent_encoding::percent_decode_str(v).decode_utf8_lossy().to_string(),
    };
    let mgmt = url::Url::parse(&args.management_url)?;
    let (admin, admin_password) = (mgmt.username().to_string(), mgmt.password().unwrap_or_default().to_string());
    let api =
        format!("{}://{}:{}/api", mgmt.scheme(), mgmt.host_str().unwrap_or("127.0.0.1"), mgmt.port().unwrap_or(15672));
    let password = args.password.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let client = reqwest::Client::new();
    let put = |path: String, body: Value| {
        let req = client.put(format!("{api}/{path}")).basic_auth(&admin, Some(&admin_password)).json(&body);
        let api = api.clone();
        async move {
            let r = req.send().await.map_err(|e| anyhow::anyhow!("RabbitMQ's management API ({api}) does not answer: {e}; enable it with rabbitmq-plugins enable rabbitmq_management"))?;
            if !r.status().is_success() {
                anyhow::bail!("RabbitMQ refused {path}: {} {}", r.status(), r.text().await.unwrap_or_default());
            }
            Ok(())
        }
    };
    put(format!("users/{}", enc(&args.code)), json!({"password": password, "tags": ""})).await?;
    let x = regex_escape(&args.exchange);
    put(
        format!("permissions/{}/{}", enc(&vhost), enc(&args.code)),
        json!({"configure": "^$", "write": format!("^{x}\\.inbound$"), "read": format!("^{x}\\.provider\\.{}$", regex_escape(&args.code))}),
    )
    .await?;
    let topology = super::Topology { exchange: args.exchange.clone(), providers: vec![args.code.clone()] };
    let (conn, _channel) = super::relay::connect(&args.amqp_url, &topology).await?;
    let _ = conn.close(0, "provider added").await;
    let mut url = amqp.clone();
    let _ = url.set_username(&args.code);
    let _ = url.set_password(Some(&password));
    Ok(url.to_string())
}

/// `s` with the characters of a regular expression escaped.
fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if "\\.+*?()|[]{}^$".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
}

/// `cupola health [--url …]`: exit 0 when the gateway answers ready (a container's
/// health check; the runtime image has no curl).
pub async fn health(url: &str) -> anyhow::Result<()> {
    let r = reqwest::Client::new().get(url).timeout(std::time::Duration::from_secs(5)).send().await?;
    if r.status().is_success() {
        Ok(())
    } else {
        anyhow::bail!("{url}: {}", r.status())
    }
}
