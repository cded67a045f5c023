//! `$waiting-times`: bookings made in a period, the median and 90th-percentile wait
//! (from the prescription's first request to the appointment), the share that met
//! its class's deadline, and the share by channel — counted in SQL over the
//! `bookings` rows each booking writes.

use rust_decimal::Decimal;

use super::records;
use crate::store::Store;
use crate::Result;

/// The filters: bookings made in `[from_us, to_us)`, of a service, branch, district
/// or priority class.
#[derive(Debug, Clone, Default)]
pub struct WaitingQuery {
    pub from_us: i64,
    pub to_us: i64,
    pub service: Option<String>,
    pub branch: Option<String>,
    pub district: Option<String>,
    pub class: Option<String>,
    /// Also the figures of each day or of each service.
    pub group: Grouping,
}

/// What `$waiting-times` also breaks its figures down by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Grouping {
    #[default]
    None,
    /// The bookings of each day (Europe/Rome) by channel.
    Day,
    /// The figures of each of the most booked services.
    Service,
}

/// The services [`Grouping::Service`] lists, most booked first.
pub const TOP_SERVICES: i64 = 12;

/// One service's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceWait {
    pub code: String,
    pub bookings: i64,
    pub median_days: Decimal,
    pub p90_days: Decimal,
    pub met_share: Option<Decimal>,
}

/// The figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitingTimes {
    pub bookings: i64,
    /// Days, to one decimal.
    pub median_days: Option<Decimal>,
    pub p90_days: Option<Decimal>,
    /// Bookings that had a deadline (a class, a first access), and the share of them
    /// that met it (0–1, three decimals).
    pub with_deadline: i64,
    pub met_share: Option<Decimal>,
    /// Per channel: bookings and share of all (0–1, three decimals).
    pub channels: Vec<(String, i64, Decimal)>,
    /// With [`Grouping::Day`]: (day YYYY-MM-DD, channel, bookings), days in order.
    pub days: Vec<(String, String, i64)>,
    /// With [`Grouping::Service`].
    pub services: Vec<ServiceWait>,
}

fn days(us: i64) -> Decimal {
    (Decimal::from(us) / Decimal::from(86_400_000_000_i64)).round_dp(1)
}

fn share(part: i64, whole: i64) -> Decimal {
    if whole == 0 {
        return Decimal::ZERO;
    }
    (Decimal::from(part) / Decimal::from(whole)).round_dp(3)
}

/// The 0-based nearest rank of percentile `p` (0–100) among `n` values.
fn rank(p: i64, n: i64) -> i64 {
    ((p * n + 99) / 100 - 1).max(0)
}

pub async fn waiting_times(store: &Store, q: &WaitingQuery) -> Result<WaitingTimes> {
    let (bookings, with_deadline, met) = records::booking_counts(store, q).await?;
    let mut out = WaitingTimes { bookings, with_deadline, ..Default::default() };
    if bookings > 0 {
        out.median_days = records::wait_at_rank(store, q, rank(50, bookings)).await?.map(days);
        out.p90_days = records::wait_at_rank(store, q, rank(90, bookings)).await?.map(days);
    }
    if with_deadline > 0 {
        out.met_share = Some(share(met, with_deadline));
    }
    out.channels =
        records::bookings_by_channel(store, q).await?.into_iter().map(|(c, n)| (c, n, share(n, bookings))).collect();
    match q.group {
        Grouping::Day => out.days = records::bookings_by_day(store, q, &rome_days(q.from_us, q.to_us)).await?,
        Grouping::Service => {
            let rows = records::waits_by_service(store, q, TOP_SERVICES).await?;
            out.services = rows
                .into_iter()
                .map(|r| ServiceWait {
                    code: r.code,
                    bookings: r.bookings,
                    median_days: days(r.median_us),
                    p90_days: days(r.p90_us),
                    met_share: (r.with_deadline > 0).then(|| share(r.met, r.with_deadline)),
                })
                .collect();
        }
        Grouping::None => {}
    }
    Ok(out)
}

/// The Europe/Rome days that meet `[from_us, to_us)`, each with its own bounds (a
/// day is 23 or 25 hours when the clocks change), clipped to the period.
fn rome_days(from_us: i64, to_us: i64) -> Vec<(String, i64, i64)> {
    use chrono::TimeZone;
    let rome = chrono_tz::Europe::Rome;
    let midnight = |d: chrono::NaiveDate| -> Option<i64> {
        // Rome's midnight always exists (its changes are at 02:00 and 03:00).
        rome.from_local_datetime(&d.and_hms_opt(0, 0, 0)?).earliest().map(|t| t.timestamp_micros())
    };
    let Some(mut day) = chrono::DateTime::from_timestamp_micros(from_us).map(|t| t.with_timezone(&rome).date_naive())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // A year at most: the period a caller may ask for.
    while out.len() < 370 {
        let (Some(lo), Some(next)) = (midnight(day), day.succ_opt()) else { break };
        if lo >= to_us {
            break;
        }
        let hi = midnight(next).unwrap_or(to_us);
        out.push((day.format("%Y-%m-%d").to_string(), lo.max(from_us), hi.min(to_us)));
        day = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(rank(50, 1), 0);
        assert_eq!(rank(50, 4), 1);
        assert_eq!(rank(90, 10), 8);
        assert_eq!(rank(90, 11), 9);
        assert_eq!(days(36 * 3_600_000_000), Decimal::new(15, 1));
        assert_eq!(share(1, 3), Decimal::new(333, 3));
    }

    #[test]
    fn rome_days_follow_the_clock_changes() {
        // 2026-10-24T22:00Z is midnight of the 25th in Rome (+02:00); that day has 25 hours.
        let from = 1_792_879_200_000_000;
        let days = rome_days(from, from + 2 * 86_400_000_000 + 3_600_000_000);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].0, "2026-10-25");
        assert_eq!(days[0].2 - days[0].1, 25 * 3_600_000_000);
        assert_eq!(days[1], ("2026-10-26".to_string(), days[0].2, days[0].2 + 24 * 3_600_000_000));
    }
}
