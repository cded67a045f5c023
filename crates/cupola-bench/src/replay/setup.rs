//! The region the replay needs: the demo's providers, booking points and agendas
//! (loaded into the fresh database before the gateway starts), the agendas widened
//! to a year and sized to the scale's demand through the API as an agenda
//! technician does it (`PUT Schedule`, `$generate-slots`), and the year's patients.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context;
use futures_util::{stream, StreamExt, TryStreamExt};
use reqwest::Method;
use serde_json::{json, Value};

use super::api::{Api, Who, BASE};
use super::plan::Plan;

/// The demo region in the fresh store at `url` (the gateway is not running yet), as
/// `cupola demo load` writes it: under the booking rules of the `mappings` region.
pub async fn load_demo(url: &str, mappings: &std::path::Path) -> anyhow::Result<()> {
    cupola::demo::load_into(url, BASE, mappings).await.context("loading the demo region")
}

/// One branch the region's agendas serve: its catalog codes.
#[derive(Debug, Clone)]
pub struct Branch {
    pub code: String,
    pub services: Vec<String>,
}

/// What the replay knows of the region, read through the API.
#[derive(Debug, Clone, Default)]
pub struct Region {
    pub branches: Vec<Branch>,
    /// Districts of the Genova area, and the others.
    pub genova: Vec<String>,
    pub elsewhere: Vec<String>,
    /// Each facility's provider code (`Location/<id>` → `galliera`).
    pub provider_of: HashMap<String, String>,
    /// The catalog codes each provider's ConceptMap translates (its messages can
    /// carry only those: another is held, `failed`).
    pub mapped: HashMap<String, HashSet<String>>,
    /// The districts each catalog code is offered in.
    pub districts_of: HashMap<String, Vec<String>>,
    pub providers: Vec<String>,
    pub schedules: Vec<Value>,
}

impl Region {
    /// The region's agendas, facilities and offers, as an administrator reads them.
    pub async fn read(api: &Api) -> anyhow::Result<Region> {
        let schedules = api.search_all(&Who::Admin, "Schedule?_count=500").await?;
        let services = api.search_all(&Who::Admin, "HealthcareService?_count=500").await?;
        let locations = api.search_all(&Who::Admin, "Location?_count=500").await?;
        let mut region = Region { mapped: mapped(api).await?, ..Region::default() };
        let mut district_of: HashMap<String, String> = HashMap::new();
        for l in &locations {
            let district = l["address"]["district"].as_str().unwrap_or_default().to_string();
            district_of.insert(format!("Location/{}", l["id"].as_str().unwrap_or_default()), district.clone());
            let list = if l["address"]["city"] == "Genova" { &mut region.genova } else { &mut region.elsewhere };
            if !district.is_empty() && !list.contains(&district) {
                list.push(district);
            }
        }
        let mut branches: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for hs in &services {
            let (Some(org), Some(loc)) =
                (hs["providedBy"]["reference"].as_str(), hs["location"][0]["reference"].as_str())
            else {
                continue;
            };
            let code = org.trim_start_matches("Organization/prov-").to_string();
            region.provider_of.insert(loc.to_string(), code.clone());
            if !region.providers.contains(&code) {
                region.providers.push(code.clone());
            }
            let branch = hs["specialty"][0]["coding"][0]["code"].as_str().unwrap_or_default().to_string();
            let codes = branches.entry(branch).or_default();
            let codes_here = hs["type"].as_array().into_iter().flatten().flat_map(codes_of);
            for c in codes_here.filter(|c| region.mapped.get(&code).is_some_and(|m| m.contains(c))) {
                let districts = region.districts_of.entry(c.clone()).or_default();
                if let Some(d) = district_of.get(loc).filter(|d| !districts.contains(d)) {
                    districts.push(d.clone());
                }
                if !codes.contains(&c) {
                    codes.push(c);
                }
            }
        }
        region.branches = branches.into_iter().map(|(code, services)| Branch { code, services }).collect();
        region.branches.retain(|b| !b.services.is_empty());
        region.schedules = schedules;
        let names: Vec<&str> = region.branches.iter().map(|b| b.code.as_str()).collect();
        tracing::info!(branches = ?names, providers = ?region.providers, "the region read");
        anyhow::ensure!(
            !region.branches.is_empty() && !region.providers.is_empty(),
            "the region has no agendas or providers: was the demo loaded into the replay's database?"
        );
        Ok(region)
    }

    /// The districts where any of `codes` is offered, from the `from`th on.
    pub fn districts_offering(&self, codes: &[String], from: usize) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for d in codes.iter().flat_map(|c| self.districts_of.get(c).into_iter().flatten()) {
            if !all.contains(d) {
                all.push(d.clone());
            }
        }
        let n = all.len().max(1);
        all.rotate_left(from % n);
        all
    }

    /// The district of patient `n` of `plan`.
    pub fn district(&self, plan: &Plan, n: usize) -> &str {
        let list = if plan.genova.get(n).copied().unwrap_or(false) { &self.genova } else { &self.elsewhere };
        let list = if list.is_empty() { &self.genova } else { list };
        list.get(n % list.len().max(1)).map_or("", String::as_str)
    }
}

/// Each provider's mapped catalog codes, from its `ConceptMap/provider-<code>`.
async fn mapped(api: &Api) -> anyhow::Result<HashMap<String, HashSet<String>>> {
    let maps = api.search_all(&Who::Admin, "ConceptMap?_count=500").await?;
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    for m in &maps {
        let Some(code) = m["id"].as_str().and_then(|id| id.strip_prefix("provider-")) else { continue };
        let elements = m["group"].as_array().into_iter().flatten().flat_map(|g| g["element"].as_array()).flatten();
        out.entry(code.to_string())
            .or_default()
            .extend(elements.filter_map(|e| e["code"].as_str().map(str::to_string)));
    }
    Ok(out)
}

fn codes_of(concept: &Value) -> Vec<String> {
    concept["coding"].as_array().into_iter().flatten().filter_map(|c| c["code"].as_str().map(str::to_string)).collect()
}

/// The slots a week of `template` makes (each slot counted once, whatever its capacity).
fn slots_per_week(template: &Value) -> f64 {
    let minutes = |t: &str| -> f64 {
        let mut it = t.split(':').map(|x| x.parse::<f64>().unwrap_or(0.0));
        it.next().unwrap_or(0.0) * 60.0 + it.next().unwrap_or(0.0)
    };
    template["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == "session")
        .map(|s| {
            let get = |name: &str| s["extension"].as_array().and_then(|a| a.iter().find(|x| x["url"] == name)).cloned();
            let start = get("start").and_then(|v| v["valueTime"].as_str().map(minutes)).unwrap_or(0.0);
            let end = get("end").and_then(|v| v["valueTime"].as_str().map(minutes)).unwrap_or(0.0);
            let step = get("slotMinutes").and_then(|v| v["valueInteger"].as_f64()).unwrap_or(20.0);
            ((end - start) / step.max(1.0)).floor().max(0.0)
        })
        .sum()
}

/// Each agenda's template made a year long, with the places per slot the scale's
/// demand needs (`headroom` times the bookings the plan makes, spread over the year's
/// slots); then the slots generated. Returns the places per slot.
pub async fn size_agendas(api: &Api, region: &Region, plan: &Plan, headroom: f64) -> anyhow::Result<u32> {
    let template_url = format!("{BASE}/StructureDefinition/agenda-template");
    let template =
        |s: &Value| s["extension"].as_array().and_then(|a| a.iter().find(|e| e["url"] == template_url)).cloned();
    let weekly: f64 = region.schedules.iter().filter_map(template).map(|t| slots_per_week(&t)).sum();
    anyhow::ensure!(weekly > 0.0, "the region's agendas make no slots: check their templates");
    let demand = plan.bookings() as f64 * headroom;
    let capacity = (demand / (weekly * 52.0)).ceil().max(1.0) as u32;
    tracing::info!(agendas = region.schedules.len(), weekly_slots = weekly, capacity, "sizing the agendas to a year");
    // From the end of the demo's eight weeks, as a technician extends an agenda: the
    // weeks already generated (and the appointments on them) are left as they are.
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive();
    let from = today + chrono::Duration::days(DEMO_DAYS);
    let empty = HashSet::new();
    let mapped = |s: &Value| {
        let actors = s["actor"].as_array().into_iter().flatten().filter_map(|a| a["reference"].as_str());
        let provider = actors.filter_map(|a| region.provider_of.get(a)).next();
        provider.and_then(|p| region.mapped.get(p)).unwrap_or(&empty)
    };
    stream::iter(region.schedules.iter().map(|s| widen(s, &template_url, capacity, mapped(s))))
        .map(|s| generate(api, s, from))
        .buffer_unordered(2)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(capacity)
}

/// The days of slots the demo generates (its templates' `horizonDays`).
const DEMO_DAYS: i64 = 56;

/// `schedule` with a horizon reaching a year from today and `capacity` places in each session's slots,
/// its sessions taking in turn the services its provider's map translates.
fn widen(schedule: &Value, template_url: &str, capacity: u32, mapped: &HashSet<String>) -> Value {
    let mut s = schedule.clone();
    // `get_mut`, not `[]`: indexing a missing key for writing would add it as null.
    let list = |v: &mut Value| v.get_mut("extension").and_then(Value::as_array_mut).map(std::mem::take);
    // Each session books one of the agenda's services in turn (without a `service`,
    // a session's slots serve the agenda's first one only).
    let codings = s["serviceType"].as_array().into_iter().flatten().map(|t| t["coding"][0].clone());
    let services: Vec<Value> = codings.filter(|c| c["code"].as_str().is_some_and(|c| mapped.contains(c))).collect();
    let mut template = list(&mut s).unwrap_or_default();
    for ext in template.iter_mut().filter(|e| e["url"] == template_url) {
        let mut parts = list(ext).unwrap_or_default();
        for (i, part) in parts.iter_mut().enumerate() {
            if part["url"] == "horizonDays" {
                part["valueInteger"] = json!(366 - DEMO_DAYS);
            }
            let session = part["url"] == "session";
            let Some(inner) = part.get_mut("extension").and_then(Value::as_array_mut) else { continue };
            if let Some(service) = services.get(i % services.len().max(1)).filter(|_| session) {
                if !inner.iter().any(|p| p["url"] == "service") {
                    inner.push(json!({"url": "service", "valueCoding": service}));
                }
            }
            for p in inner.iter_mut().filter(|p| p["url"] == "capacity") {
                p["valueInteger"] = json!(capacity);
            }
        }
        ext["extension"] = Value::Array(parts);
    }
    s["extension"] = Value::Array(template);
    s
}

/// The widened agenda written and its slots generated from `from`.
async fn generate(api: &Api, schedule: Value, from: chrono::NaiveDate) -> anyhow::Result<()> {
    let id = schedule["id"].as_str().unwrap_or_default().to_string();
    api.call("setup", &Who::Admin, Method::PUT, &format!("Schedule/{id}"), Some(&schedule))
        .await
        .and_then(|(s, v)| if s < 300 { Ok(()) } else { anyhow::bail!("PUT Schedule/{id}: {s} {v}") })?;
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": from.to_string()}]});
    let out = api
        .expect("setup", &Who::Admin, Method::POST, &format!("Schedule/{id}/$generate-slots"), Some(&params), 200)
        .await
        .with_context(|| format!("generating a year of Schedule/{id}"))?;
    let count = |name: &str| super::api::part(&out["parameter"], name).and_then(|p| p["valueInteger"].as_u64());
    tracing::debug!(schedule = id, created = count("created"), kept = count("kept"), "agenda generated");
    Ok(())
}

/// The demo's showcase appointment (`appt-1`) cancelled: it is not the plan's. (Its
/// place on its slot was missing when `cupola demo load` wrote without the booking
/// rules, so a booking of that slot made two: found by the over-booking check.)
pub async fn cancel_showcase(api: &Api) -> anyhow::Result<()> {
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "replay: the demo's showcase booking"}]});
    let (status, v) = api.call("setup", &Who::Admin, Method::POST, "Appointment/appt-1/$cancel", Some(&body)).await?;
    anyhow::ensure!(
        status < 300 || status == 404,
        "cancelling the demo's appt-1: {status} {}",
        super::api::outcome(&v)
    );
    Ok(())
}

/// The id of patient `n`.
pub fn patient_id(n: usize) -> String {
    format!("rp-{n}")
}

/// The plan's patients, each in a district of their area, in transactions of 250.
pub async fn patients(api: &Api, region: &Region, plan: &Plan) -> anyhow::Result<()> {
    let ids: Vec<usize> = (0..plan.patients).collect();
    stream::iter(ids.chunks(250).map(|chunk| {
        let entries: Vec<Value> = chunk
            .iter()
            .map(|&n| {
                let id = patient_id(n);
                json!({"resource": {"resourceType": "Patient", "id": id, "active": true,
                    "name": [{"family": "Replay", "given": [format!("Paziente {n}")]}],
                    "address": [{"district": region.district(plan, n), "country": "IT"}]},
                    "request": {"method": "PUT", "url": format!("Patient/{id}")}})
            })
            .collect();
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    }))
    .map(|bundle| async move { api.expect("setup", &Who::Admin, Method::POST, "", Some(&bundle), 200).await.map(|_| ()) })
    .buffer_unordered(2)
    .try_collect::<Vec<()>>()
    .await
    .context("writing the year's patients")?;
    tracing::info!(patients = plan.patients, "patients written");
    Ok(())
}
