//! `mappings/messaging/routing.json`: which provider receives which events, and
//! the exchange they are published to. A provider's list (by its short code), else
//! the `*` list, of `<resource>.<event>` patterns (`*` matches a whole part).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{line_of, MappingError};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// The topic exchange (default `cupola`).
    #[serde(default = "exchange")]
    pub exchange: String,
    /// Provider code (or `*`) → the events it receives.
    #[serde(default)]
    pub events: BTreeMap<String, Vec<String>>,
}

fn exchange() -> String {
    "cupola".into()
}

impl Default for Routing {
    /// Every provider receives every event.
    fn default() -> Self {
        Routing { exchange: exchange(), events: [("*".to_string(), vec!["*.*".to_string()])].into() }
    }
}

impl Routing {
    /// Reads and checks `file`; a missing file routes every event to every provider.
    pub fn load(file: &Path) -> Result<Routing, MappingError> {
        if !file.exists() {
            return Ok(Routing::default());
        }
        let text =
            std::fs::read_to_string(file).map_err(|e| MappingError::new(file, None, format!("cannot read: {e}")))?;
        let r: Routing = serde_json::from_str(&text)
            .map_err(|e| MappingError::new(file, Some(e.line()), format!("not valid routing: {e}")))?;
        let name_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !name_ok(&r.exchange) {
            return Err(MappingError::new(
                file,
                line_of(&text, "\"exchange\"", 1),
                "exchange: letters, digits, - and .",
            ));
        }
        for (provider, patterns) in &r.events {
            for p in patterns {
                let parts: Vec<&str> = p.split('.').collect();
                if parts.len() != 2 || parts.iter().any(|x| x.is_empty()) {
                    return Err(MappingError::new(
                        file,
                        line_of(&text, &format!("\"{p}\""), 1),
                        format!("events.{provider}: {p:?} is not <resource>.<event> (e.g. appointment.*)"),
                    ));
                }
            }
        }
        Ok(r)
    }

    /// Whether `provider` receives `resource`.`event`.
    pub fn wants(&self, provider: &str, resource: &str, event: &str) -> bool {
        let list = self.events.get(provider).or_else(|| self.events.get("*"));
        list.into_iter().flatten().any(|p| {
            let (r, e) = p.split_once('.').unwrap_or((p, ""));
            (r == "*" || r == resource) && (e == "*" || e == event)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_providers_own_list_wins_over_the_default() {
        let r = Routing {
            exchange: "cupola".into(),
            events: [
                ("*".to_string(), vec!["appointment.*".to_string()]),
                ("gaslini".to_string(), vec!["chargeitem.paid".to_string()]),
            ]
            .into(),
        };
        assert!(r.wants("galliera", "appointment", "booked"));
        assert!(!r.wants("galliera", "chargeitem", "paid"));
        assert!(r.wants("gaslini", "chargeitem", "paid"));
        assert!(!r.wants("gaslini", "appointment", "booked"));
        let shipped = Routing::load(Path::new("mappings/messaging/routing.json")).expect("shipped");
        assert!(shipped.wants("asl3", "chargeitem", "refunded"));
    }
}
