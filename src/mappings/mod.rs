//! `mappings/`: the region's code maps and rules, as files, loaded and checked at
//! start-up (a bad file stops the gateway with its name, line and reason).
//!
//! Layout (see `mappings/README.md`):
//! - `providers/<provider code>.json`: one FHIR `ConceptMap` per provider, regional
//!   catalog code → the provider's local code. `{canonical-base}` in a file stands for
//!   the configured canonical base.
//!
//! - `booking/rules.json`: the dated booking rules (see `booking`).
//! - `billing/rules.json`: the dated ticket rules (see `billing`).
//! - `messaging/routing.json`: which provider receives which events (see `routing`).
//!
//! Later issues add their rules here the same way: one folder per concern, one file
//! per subject, FHIR resources where FHIR has one.

pub mod billing;
pub mod booking;
pub mod conceptmap;
pub mod routing;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use billing::BillingRules;
pub use booking::BookingRules;
pub use conceptmap::ProviderMap;
pub use routing::Routing;

use crate::fhir::check::Checker;

/// What `mappings/` holds, checked.
#[derive(Debug, Default)]
pub struct Mappings {
    /// One per provider, sorted by provider code.
    pub providers: Vec<ProviderMap>,
    /// `booking/rules.json`: priority-class deadlines, prescription limits, NRE format.
    pub booking: BookingRules,
    /// `billing/rules.json`: ticket cap and quota, exemptions, cancellation, fees, recovery.
    pub billing: BillingRules,
    /// `messaging/routing.json`: the exchange, and which provider receives which events.
    pub routing: Routing,
}

/// A file of `mappings/` that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct MappingError {
    pub file: PathBuf,
    /// 1-based line of the fault, when it can be placed.
    pub line: Option<usize>,
    pub message: String,
}

impl MappingError {
    fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> MappingError {
        MappingError { file: file.to_path_buf(), line, message: message.into() }
    }
}

impl Mappings {
    /// Loads `dir`. A missing directory is no mappings (with a warning): the gateway
    /// still serves, and every translation reports its code unmapped.
    pub fn load(dir: &Path, base: &str, checker: &Checker) -> Result<Mappings, MappingError> {
        if !dir.exists() {
            tracing::warn!(dir = %dir.display(), "no mappings directory: every provider code translation will be reported unmapped");
            return Ok(Mappings::default());
        }
        let mut providers = Vec::new();
        let folder = dir.join("providers");
        if folder.exists() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
                .map_err(|e| MappingError::new(&folder, None, format!("cannot list: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for file in files {
                providers.push(ProviderMap::load(&file, base, checker)?);
            }
        }
        let booking = BookingRules::load(&dir.join("booking").join("rules.json"))?;
        let billing = BillingRules::load(&dir.join("billing").join("rules.json"), base)?;
        let routing = Routing::load(&dir.join("messaging").join("routing.json"))?;
        tracing::info!(providers = providers.len(), dir = %dir.display(), "mappings loaded");
        Ok(Mappings { providers, booking, billing, routing })
    }

    /// The map of a provider, by its short code.
    pub fn provider(&self, code: &str) -> Option<&ProviderMap> {
        self.providers.iter().find(|p| p.provider == code)
    }

    /// The FHIR resources to serve (the ConceptMaps, as written in the files).
    pub fn resources(&self) -> Vec<&Value> {
        self.providers.iter().map(|p| &p.concept_map).collect()
    }
}

/// The 1-based line of the first occurrence of `needle` in `text` at or after line
/// `from`, to place an error found in the parsed JSON back in the file.
fn line_of(text: &str, needle: &str, from: usize) -> Option<usize> {
    text.lines().enumerate().skip(from.saturating_sub(1)).find(|(_, l)| l.contains(needle)).map(|(i, _)| i + 1)
}
