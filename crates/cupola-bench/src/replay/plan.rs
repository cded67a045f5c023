//! The plan of the year: who books what, when, through which point, and what
//! follows — drawn from the mix (`mix.json`) with a seeded generator, so that the
//! same seed gives the same year. Only the plan is deterministic; the run's timing,
//! and so the slots the bookings land on, are the system's.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The figures of the year and the shares the replay draws from (see docs/replay.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mix {
    pub bookings: u64,
    pub payments: u64,
    pub services: u64,
    pub call_centre: CallCentre,
    pub genova_patients: f64,
    pub network: BTreeMap<String, u32>,
    pub patients_per_booking: f64,
    pub classes: BTreeMap<String, f64>,
    pub first: First,
    pub after: After,
    pub follow_up_days: u16,
    pub payment_points: BTreeMap<String, f64>,
    pub max_services_per_prescription: u8,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CallCentre {
    pub region: f64,
    pub genova: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct First {
    pub decline: f64,
    pub hold_lapses: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct After {
    pub cancel: f64,
    pub reschedule: f64,
    pub no_show: f64,
}

impl Mix {
    /// The mix shipped with the replay.
    pub fn shipped() -> anyhow::Result<Mix> {
        serde_json::from_str(include_str!("mix.json")).map_err(|e| anyhow::anyhow!("replay/mix.json: {e}"))
    }

    /// The call centre's share outside the Genova area, so that the region's share
    /// is the seed's: `region = g·genova + (1 − g)·rest`.
    pub fn call_centre_elsewhere(&self) -> f64 {
        let g = self.genova_patients;
        ((self.call_centre.region - g * self.call_centre.genova) / (1.0 - g)).clamp(0.0, 1.0)
    }
}

/// SplitMix64: a small generator whose sequence depends on the seed alone (no
/// platform or crate version changes it).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A key of `weights`, drawn in proportion to its weight.
    pub fn pick<'a, W: Copy + Into<f64>>(&mut self, weights: &'a BTreeMap<String, W>) -> &'a str {
        let total: f64 = weights.values().map(|w| (*w).into()).sum();
        let mut x = self.unit() * total;
        for (k, w) in weights {
            x -= (*w).into();
            if x < 0.0 {
                return k;
            }
        }
        weights.keys().next_back().map_or("", String::as_str)
    }
}

/// How the patient meets the first proposals of `$find`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Choice {
    /// Books the first proposal.
    Book,
    /// Declines the first proposal (recorded), books the second.
    Decline,
    /// Holds the first proposal and lets the hold lapse, books the second.
    HoldLapses,
}

/// What happens to a booking after it is made, some days later in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Later {
    Cancel,
    Reschedule,
    NoShow,
}

/// One prescription and its booking.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prescription {
    pub n: usize,
    /// The day of the year it is booked (0–364).
    pub day: u16,
    pub patient: usize,
    /// The booking point: its channel and number (`bp-<channel>-NNN`, from 1).
    pub channel: String,
    pub point: u32,
    pub class: String,
    /// The branch, an index into the region's branches (taken modulo their number).
    pub branch: u32,
    pub services: u8,
    pub choice: Choice,
    /// The payment point's channel and number, when the ticket is paid.
    pub pay: Option<(String, u32)>,
    /// What follows, and the day it does.
    pub later: Option<(Later, u16)>,
}

/// One step of the run, in the plan's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// The day's lists (before the day's bookings): the lists of the next day.
    Lists(u16),
    /// Prescription `n`: written, found, booked (and paid).
    Book(usize),
    /// What follows prescription `n`'s booking.
    Later(usize),
}

/// The year's plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Plan {
    pub seed: u64,
    pub patients: usize,
    /// Whether each patient lives in the Genova area.
    pub genova: Vec<bool>,
    pub prescriptions: Vec<Prescription>,
    pub events: Vec<Event>,
}

impl Plan {
    /// The year at `scale` (1.0 = the mix's year) drawn with `seed`.
    pub fn new(mix: &Mix, scale: f64, seed: u64) -> Plan {
        let bookings = ((mix.bookings as f64 * scale).round() as usize).max(1);
        let patients = ((bookings as f64 * mix.patients_per_booking).ceil() as usize).max(1);
        let mut rng = Rng::new(seed);
        let genova: Vec<bool> = (0..patients).map(|_| rng.unit() < mix.genova_patients).collect();
        let prescriptions: Vec<Prescription> =
            (0..bookings).map(|n| prescription(mix, &mut rng, n, bookings, &genova)).collect();
        let events = events(&prescriptions);
        Plan { seed, patients, genova, prescriptions, events }
    }

    /// Successful bookings the plan asks for (each prescription, and each reschedule).
    pub fn bookings(&self) -> usize {
        self.prescriptions.len() + self.count_later(Later::Reschedule)
    }

    pub fn count_later(&self, what: Later) -> usize {
        self.prescriptions.iter().filter(|p| p.later.is_some_and(|(l, _)| l == what)).count()
    }
}

/// Prescription `n` of `total`, drawn from the mix.
fn prescription(mix: &Mix, rng: &mut Rng, n: usize, total: usize, genova: &[bool]) -> Prescription {
    let day = ((n as u64 * 365) / total as u64) as u16;
    let patient = rng.below(genova.len() as u64) as usize;
    let call_centre = if genova.get(patient).copied().unwrap_or(false) {
        mix.call_centre.genova
    } else {
        mix.call_centre_elsewhere()
    };
    let channel = if rng.unit() < call_centre {
        "call-centre".to_string()
    } else {
        let others: BTreeMap<String, u32> =
            mix.network.iter().filter(|(k, _)| k.as_str() != "call-centre").map(|(k, v)| (k.clone(), *v)).collect();
        rng.pick(&others).to_string()
    };
    let point = 1 + rng.below(u64::from(mix.network.get(&channel).copied().unwrap_or(1))) as u32;
    let class = rng.pick(&mix.classes).to_string();
    let branch = rng.next_u64() as u32;
    let services = services(mix, rng);
    let x = rng.unit();
    let choice = if x < mix.first.decline {
        Choice::Decline
    } else if x < mix.first.decline + mix.first.hold_lapses {
        Choice::HoldLapses
    } else {
        Choice::Book
    };
    let pay = (rng.unit() < mix.payments as f64 / mix.bookings as f64).then(|| {
        let channel = rng.pick(&mix.payment_points).to_string();
        let points = mix.network.get(&channel).copied().unwrap_or(1);
        (channel, 1 + rng.below(u64::from(points)) as u32)
    });
    let later = later(mix, rng, day);
    Prescription { n, day, patient, channel, point, class, branch, services, choice, pay, later }
}

/// Services on one prescription: 1 + Binomial(max − 1, p), p such that the mean is the
/// year's services per booking.
fn services(mix: &Mix, rng: &mut Rng) -> u8 {
    let extra = (mix.max_services_per_prescription.max(1) - 1) as f64;
    let mean = mix.services as f64 / mix.bookings as f64;
    let p = if extra > 0.0 { ((mean - 1.0) / extra).clamp(0.0, 1.0) } else { 0.0 };
    1 + (0..extra as u32).filter(|_| rng.unit() < p).count() as u8
}

fn later(mix: &Mix, rng: &mut Rng, day: u16) -> Option<(Later, u16)> {
    let x = rng.unit();
    let a = &mix.after;
    let what = if x < a.cancel {
        Later::Cancel
    } else if x < a.cancel + a.reschedule {
        Later::Reschedule
    } else if x < a.cancel + a.reschedule + a.no_show {
        Later::NoShow
    } else {
        return None;
    };
    let wait = 1 + rng.below(u64::from(mix.follow_up_days.max(1))) as u16;
    Some((what, day.saturating_add(wait)))
}

/// The run's steps: each day's lists, bookings and follow-ups, day by day.
fn events(prescriptions: &[Prescription]) -> Vec<Event> {
    let mut keyed: Vec<(u16, Event)> = Vec::with_capacity(prescriptions.len() * 2 + 400);
    let last = prescriptions.iter().map(|p| p.later.map_or(p.day, |(_, d)| d.max(p.day))).max().unwrap_or(0);
    keyed.extend((0..=last).map(|d| (d, Event::Lists(d))));
    for p in prescriptions {
        keyed.push((p.day, Event::Book(p.n)));
        if let Some((_, d)) = p.later {
            keyed.push((d, Event::Later(p.n)));
        }
    }
    keyed.sort();
    keyed.into_iter().map(|(_, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(p: &Plan) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        p.hash(&mut h);
        h.finish()
    }

    #[test]
    fn the_same_seed_gives_the_same_year_and_another_seed_another() {
        let mix = Mix::shipped().expect("the shipped mix reads");
        let a = Plan::new(&mix, 0.001, 7);
        assert_eq!(a.prescriptions.len(), 3733);
        assert_eq!(a, Plan::new(&mix, 0.001, 7));
        assert_eq!(digest(&a), digest(&Plan::new(&mix, 0.001, 7)));
        let b = Plan::new(&mix, 0.001, 8);
        assert_ne!(a.prescriptions, b.prescriptions);
        assert_ne!(digest(&a), digest(&b));
    }

    #[test]
    fn the_plan_keeps_the_seed_figures() {
        let mix = Mix::shipped().expect("the shipped mix reads");
        let p = Plan::new(&mix, 0.01, 1);
        let n = p.prescriptions.len() as f64;
        let share = |f: &dyn Fn(&Prescription) -> bool| p.prescriptions.iter().filter(|x| f(x)).count() as f64 / n;
        let call = share(&|x| x.channel == "call-centre");
        assert!((call - 0.22).abs() < 0.015, "call centre {call}");
        let paid = share(&|x| x.pay.is_some());
        assert!((paid - 1_098_151.0 / 3_732_784.0).abs() < 0.015, "payments {paid}");
        let services: f64 = p.prescriptions.iter().map(|x| f64::from(x.services)).sum::<f64>() / n;
        assert!((services - 9_598_569.0 / 3_732_784.0).abs() < 0.05, "services per booking {services}");
        let genova: Vec<&Prescription> = p.prescriptions.iter().filter(|x| p.genova[x.patient]).collect();
        let call_genova = genova.iter().filter(|x| x.channel == "call-centre").count() as f64 / genova.len() as f64;
        assert!((call_genova - 0.27).abs() < 0.02, "Genova call centre {call_genova}");
        assert!(p.events.windows(2).all(|w| day_of(&p, w[0]) <= day_of(&p, w[1])), "day by day");
    }

    fn day_of(p: &Plan, e: Event) -> u16 {
        match e {
            Event::Lists(d) => d,
            Event::Book(n) => p.prescriptions[n].day,
            Event::Later(n) => p.prescriptions[n].later.map_or(0, |(_, d)| d),
        }
    }
}
