//! The FHIR data types the domain's typed views (`booking::views`,
//! `billing::views`, `messaging::views`) are read through, deserialised from the
//! resource's JSON by serde (shapes already checked against R4 on the way in): the
//! views never index JSON by a key.

use serde::Deserialize;
use serde_json::Value;

/// `(system, code)`; a coding without a system has an empty one.
pub type Code = (String, String);

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Reference {
    pub reference: Option<String>,
}

impl Reference {
    /// The id of a relative reference to `res_type` (`Slot/x` → `x`); `None` for an
    /// absolute one or another type.
    pub fn local(&self, res_type: &str) -> Option<String> {
        let rest = self.reference.as_deref()?.strip_prefix(res_type)?.strip_prefix('/')?;
        (!rest.contains('/')).then(|| rest.to_string())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Concept {
    pub coding: Vec<Coding>,
}

impl Concept {
    /// Whether a coding of this concept is of `system`.
    pub fn has_system(&self, system: &str) -> bool {
        self.coding.iter().any(|c| c.system.as_deref() == Some(system))
    }
}

/// The ids of the relative references to `res_type` among `refs`.
pub(crate) fn locals(refs: &[Reference], res_type: &str) -> Vec<String> {
    refs.iter().filter_map(|r| r.local(res_type)).collect()
}

/// The codings of some concepts, as `(system, code)`.
pub(crate) fn codes<'a>(concepts: impl IntoIterator<Item = &'a Concept>) -> Vec<Code> {
    concepts
        .into_iter()
        .flat_map(|c| &c.coding)
        .filter_map(|c| Some((c.system.clone().unwrap_or_default(), c.code.clone()?)))
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Identifier {
    pub system: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Extension {
    pub url: String,
    pub value_boolean: Option<bool>,
    pub value_code: Option<String>,
    pub value_coding: Option<Coding>,
    pub value_instant: Option<String>,
    pub value_date_time: Option<String>,
    pub value_integer: Option<i64>,
    pub value_string: Option<String>,
    pub value_reference: Option<Reference>,
    pub value_decimal: Option<f64>,
    pub extension: Vec<Extension>,
}

impl Extension {
    /// A code given as `valueCoding` or `valueCode`.
    pub fn code(&self) -> Option<String> {
        self.value_coding.as_ref().and_then(|c| c.code.clone()).or_else(|| self.value_code.clone())
    }

    pub fn instant(&self) -> Option<i64> {
        self.value_instant.as_deref().or(self.value_date_time.as_deref()).and_then(crate::fhir::meta::parse_instant)
    }
}

/// The extension with this `url`.
pub(crate) fn find<'a>(list: &'a [Extension], url: &str) -> Option<&'a Extension> {
    list.iter().find(|e| e.url == url)
}

/// `resource` read as `T`: a shape R4 refuses was refused before any rule runs, so
/// a failure here is named against the resource type as a whole.
/// Nothing (`null`: a resource not found) reads as an empty one.
pub(crate) fn parse<'a, T: Deserialize<'a> + Default>(resource: &'a Value, res_type: &str) -> crate::Result<T> {
    if resource.is_null() {
        return Ok(T::default());
    }
    T::deserialize(resource).map_err(|e| {
        crate::Error::Unprocessable(vec![crate::error::Issue::error(
            "structure",
            Some(res_type.to_string()),
            format!("{res_type} could not be read by the rules: {e}"),
        )])
    })
}
