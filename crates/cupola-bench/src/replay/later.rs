//! What follows a booking, some days later in the plan: the patient cancels, moves
//! it to another date, or does not turn up (the provider says so).

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::api::{Who, BASE};
use super::plan::{Later, Prescription};
use super::run::{Booked, Run};
use super::setup::patient_id;

impl Run {
    /// The booking of prescription `n`, once its client has made it (`None`: it failed).
    async fn booking_of(&self, n: usize) -> Option<Booked> {
        for _ in 0..6000 {
            if let Some(b) = self.bookings.lock().ok().and_then(|m| m.get(&n).cloned()) {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    pub(super) async fn later(&self, n: usize) -> anyhow::Result<()> {
        let p = &self.plan.prescriptions[n];
        let Some((what, _)) = p.later else { return Ok(()) };
        let Some(b) = self.booking_of(n).await else { return Ok(()) };
        match what {
            Later::Cancel => self.cancel(&b).await,
            Later::Reschedule => self.reschedule(&b, p).await,
            Later::NoShow => self.no_show(&b, n).await,
        }
    }

    /// The patient cancels at the point that booked; late when under the rules' 48 h.
    async fn cancel(&self, b: &Booked) -> anyhow::Result<()> {
        let body = json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "disdetta del paziente"}]});
        let path = format!("Appointment/{}/$cancel", b.appointment);
        self.api.expect("$cancel", &b.point, Method::POST, &path, Some(&body), 200).await?;
        self.tally.cancelled.fetch_add(1, Ordering::Relaxed);
        if b.start < chrono::Utc::now() + chrono::Duration::hours(48) {
            self.tally.cancelled_late.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Another date for the same service: `$find` for the patient, `$book` replacing it.
    async fn reschedule(&self, b: &Booked, p: &Prescription) -> anyhow::Result<()> {
        let patient = patient_id(p.patient);
        let query =
            format!("{}&service-type={}&patient-reference=Patient/{patient}&_count=3", self.window(), b.service);
        let elsewhere = self.region.districts_offering(std::slice::from_ref(&b.service), p.n);
        let proposals = self.find(&b.point, &query, &elsewhere).await?;
        let t = std::time::Instant::now();
        let done = self.book_found(&b.point, (&query, &elsewhere), proposals, 0, Some(&b.appointment)).await;
        self.api.stats.record("reschedule", t.elapsed(), done.is_ok());
        done?;
        self.tally.rebooked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The patient did not turn up: the provider reports it (`appointment-status-changed`
    /// through `$process-message`) with `--provider-no-shows`; by default the CUP's
    /// administrator records what the provider said (`PUT` of the Appointment
    /// `noshow`), since the provider's path finds the Appointment through its
    /// visibility rule, which takes up to the 30 s request timeout at this size
    /// (docs/replay.md).
    async fn no_show(&self, b: &Booked, n: usize) -> anyhow::Result<()> {
        let path = format!("Appointment/{}", b.appointment);
        let mut a = b.resource.clone();
        a["status"] = json!("noshow");
        if !self.provider_no_shows {
            self.api.expect("no-show", &Who::Admin, Method::PUT, &path, Some(&a), 200).await?;
            self.tally.no_shows.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let provider = Who::Provider(b.provider.clone());
        let header = json!({"resourceType": "MessageHeader", "id": format!("replay-noshow-{n}"),
            "eventCoding": {"system": format!("{BASE}/CodeSystem/message-event"), "code": "appointment-status-changed"},
            "source": {"name": b.provider, "endpoint": format!("urn:provider:{}", b.provider)},
            "focus": [{"reference": path}]});
        let m = json!({"resourceType": "Bundle", "type": "message", "entry": [{"resource": header}, {"resource": a}]});
        self.api.expect("no-show", &provider, Method::POST, "$process-message", Some(&m), 200).await?;
        self.tally.no_shows.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
