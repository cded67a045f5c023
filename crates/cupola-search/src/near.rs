//! `near` (Location): `LAT|LONG[|DISTANCE[|[SYSTEM|]UNITS]]`, matched in SQL on the
//! `near$lat` / `near$long` rows of `idx_number` (micro-degrees).
//!
//! Each value becomes, per resource, a join of its latitude and longitude rows (same
//! `res_pk`, same `grp`) tested by:
//! - a bounding box (index range on the latitude, range on the longitude), widened
//!   outwards so that it contains the whole circle;
//! - a circle test in integer arithmetic only (`+ - * /` and comparisons, the same
//!   on SQLite and PostgreSQL): the equirectangular approximation at the mean
//!   latitude, `Δlat² + (Δlong · cos(lat_m))² ≤ r²` in micro-degrees of arc, with
//!   `cos(lat_m) ≈ cos(lat0) − sin(lat0) · (π/360) · Δlat` (first order around the
//!   searched point; `cos(lat0)` and that slope are computed here and bound as
//!   integers scaled by 10^6). The test is inside `CASE WHEN <box>` so that it is
//!   only evaluated on rows in the box, where no product exceeds ~4·10^17.
//!
//! Earth is the sphere of mean radius 6371.0088 km (1° = 111.195 km). Against the
//! haversine great-circle distance on that sphere, for |latitude| ≤ 75°, the test
//! is within 0.02 % up to 100 km, 0.15 % up to 300 km, 1.7 % at 1000 km
//! (coordinates are stored to 10^-6 degree, ≈ 0.11 m); the sphere itself differs
//! from WGS84 distances by up to ~0.5 %. A box crossing ±180° of longitude is
//! tested on both sides. When the circle reaches a pole (or its box would span all
//! longitudes), only the latitude band is tested (with a longitude in ±180°): a
//! superset of the circle.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::numbers::{parse_decimal, scaled_floor};
use crate::parse::err;
use crate::query::{Filter, ParamRows};
use crate::schema::Table;
use crate::sql::Builder;
use crate::SearchError;

/// Distance used when the value has none: 10 km.
pub(crate) const DEFAULT_KM: f64 = 10.0;
/// Kilometres per degree of arc on the mean-radius sphere.
const KM_PER_DEGREE: f64 = 6371.0088 * std::f64::consts::PI / 180.0;
/// Longest useful distance (a little over half the circumference), km.
const MAX_KM: f64 = 20_100.0;
const MICRO: f64 = 1_000_000.0;
const DEG90: i64 = 90_000_000;
const DEG180: i64 = 180_000_000;
const DEG360: i64 = 360_000_000;
/// The UCUM system, tolerated before the units.
const UCUM: &str = "http://unitsofmeasure.org";

/// One parsed `near` value, in micro-degrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Near {
    pub lat: i64,
    pub long: i64,
    /// The distance as an arc, micro-degrees (rounded up).
    pub radius: i64,
    /// `cos(lat0)` × 10^6.
    pub cos: i64,
    /// `sin(lat0) · π/360` × 10^6: the slope of the mean-latitude cosine per degree.
    pub slope: i64,
}

/// Kilometres per unit: `km` (default), `m`, `[mi_i]` / `mi`, `[nmi_i]`.
fn km_per_unit(unit: &str) -> Option<f64> {
    Some(match unit {
        "" | "km" => 1.0,
        "m" => 0.001,
        "[mi_i]" | "mi" => 1.609_344,
        "[nmi_i]" => 1.852,
        _ => return None,
    })
}

fn coordinate(s: &str, what: &str, limit: i64) -> Result<(i64, f64), String> {
    let d = parse_decimal(s.trim()).ok_or_else(|| format!("'{s}' is not a {what}"))?;
    if d.abs() > Decimal::from(limit) {
        return Err(format!("{what} {s} is outside -{limit}..{limit}"));
    }
    let scaled = scaled_floor(d);
    Ok((scaled, scaled as f64 / MICRO))
}

/// A distance number; beyond the decimal range (`1e30`), as a finite `f64`.
fn distance(d: &str) -> Option<f64> {
    match parse_decimal(d) {
        Some(n) => n.to_f64(),
        None if d.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) => {
            d.parse::<f64>().ok().filter(|n| n.is_finite())
        }
        None => None,
    }
}

/// Parses one value (`44.41|8.93|5|km`, `44.41|8.93`, `44.41|8.93|5|UCUM|km`).
pub(crate) fn parse(value: &str) -> Result<Near, String> {
    let parts: Vec<&str> = value.split('|').collect();
    let (unit, dist) = match parts.as_slice() {
        [_, _] => ("", None),
        [_, _, d] => ("", Some(*d)),
        [_, _, d, u] => (*u, Some(*d)),
        [_, _, d, s, u] if s.is_empty() || *s == UCUM => (*u, Some(*d)),
        [_, _, _, s, _] => return Err(format!("unknown unit system '{s}' (use {UCUM})")),
        _ => return Err(format!("'{value}' is not latitude|longitude[|distance[|units]]")),
    };
    let (lat, lat_deg) = coordinate(parts[0], "latitude", 90)?;
    let (long, _) = coordinate(parts[1], "longitude", 180)?;
    let per_unit = km_per_unit(unit.trim())
        .ok_or_else(|| format!("unknown distance unit '{unit}' (use km, m, [mi_i] or mi, [nmi_i])"))?;
    let km = match dist.map(str::trim).filter(|d| !d.is_empty()) {
        None => DEFAULT_KM,
        Some(d) => {
            let n = distance(d).ok_or_else(|| format!("'{d}' is not a distance"))?;
            if n < 0.0 {
                return Err(format!("distance {d} is negative"));
            }
            n * per_unit
        }
    };
    let degrees = km.min(MAX_KM) / KM_PER_DEGREE;
    let rad = lat_deg.to_radians();
    Ok(Near {
        lat,
        long,
        radius: (degrees * MICRO).ceil() as i64,
        cos: (rad.cos() * MICRO).round() as i64,
        slope: (rad.sin() * std::f64::consts::PI / 360.0 * MICRO).round() as i64,
    })
}

/// The filter of `near[:missing]=value` (`code` is the parameter's code).
pub(crate) fn filter(
    key: &str,
    code: &str,
    modifier: Option<&str>,
    value: &str,
    ors: &[String],
) -> Result<Filter, SearchError> {
    if code != "near" {
        return Err(err(key, format!("unsupported special parameter '{code}'")));
    }
    match modifier {
        None => {}
        Some("missing") => {
            let missing = match value {
                "true" => true,
                "false" => false,
                _ => return Err(err(key, format!("':missing' takes true or false, not '{value}'"))),
            };
            return Ok(Filter::Missing { table: Table::Number, param: ParamRows::own("near$lat"), missing });
        }
        Some(m) => return Err(err(key, format!("unsupported modifier ':{m}' for near"))),
    }
    let values = ors.iter().map(|v| parse(v)).collect::<Result<Vec<_>, _>>().map_err(|m| err(key, m))?;
    Ok(Filter::Near(values))
}

impl Builder {
    /// `a.pk IN (…)`: resources with a position matching one of `ors`.
    pub fn near(&mut self, ors: &[Near], rtype: &str, pk: &str, ix: &str) -> String {
        let (la, lo) = (format!("{ix}a.lo"), format!("{ix}o.lo"));
        let (t, plat, plong) = (self.text(rtype), self.text("near$lat"), self.text("near$long"));
        let alts: Vec<String> = ors.iter().map(|n| self.near_one(n, &la, &lo)).collect();
        format!(
            "{pk} IN (SELECT {ix}a.res_pk FROM idx_number {ix}a JOIN idx_number {ix}o \
             ON {ix}o.res_pk = {ix}a.res_pk AND {ix}o.grp = {ix}a.grp AND {ix}o.param = {plong} \
             WHERE {ix}a.res_type = {t} AND {ix}a.param = {plat} AND ({}))",
            alts.join(" OR ")
        )
    }

    /// One value on latitude column `la` and longitude column `lo`.
    fn near_one(&mut self, n: &Near, la: &str, lo: &str) -> String {
        let (l, h) = (self.int(n.lat.saturating_sub(n.radius + 1)), self.int(n.lat.saturating_add(n.radius + 1)));
        let band = format!("{la} BETWEEN {l} AND {h}");
        let far = n.lat.abs() + n.radius;
        let band_only = |b: &mut Builder| {
            let (w, e) = (b.int(-DEG180), b.int(DEG180));
            format!("({band} AND {lo} BETWEEN {w} AND {e})")
        };
        if far >= DEG90 {
            return band_only(self);
        }
        // The widest longitude extent of the circle is at the latitude farthest from
        // the equator; the mean-latitude cosine of the test is never below it.
        let cos_far = (far as f64 / MICRO).to_radians().cos();
        let dlong = ((n.radius as f64 / cos_far).ceil() as i64).saturating_add(2);
        if dlong >= DEG180 {
            return band_only(self);
        }
        let mut centers = vec![n.long];
        if n.long + dlong > DEG180 {
            centers.push(n.long - DEG360);
        }
        if n.long - dlong < -DEG180 {
            centers.push(n.long + DEG360);
        }
        let (lat0, cos, slope) = (self.int(n.lat), self.int(n.cos), self.int(n.slope));
        let r2 = n.radius * n.radius;
        let (r2, outside) = (self.int(r2), self.int(r2 + 1));
        let dlat = format!("({la} - {lat0})");
        let parts: Vec<String> = centers
            .into_iter()
            .map(|c| {
                let (cl, ch, c) = (self.int(c - dlong), self.int(c + dlong), self.int(c));
                let bbox = format!("{band} AND {lo} BETWEEN {cl} AND {ch}");
                let x = format!("(({lo} - {c}) * ({cos} - {dlat} * {slope} / 1000000) / 1000000)");
                format!("({bbox} AND (CASE WHEN {bbox} THEN {dlat} * {dlat} + {x} * {x} ELSE {outside} END) <= {r2})")
            })
            .collect();
        format!("({})", parts.join(" OR "))
    }
}
