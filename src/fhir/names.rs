//! The canonical URLs and codes cupola defines, all under `--canonical-base`, in one
//! place so that every module names them alike.

/// The regional catalog of services (national nomenclator codes plus regional ones).
pub fn catalog_system(base: &str) -> String {
    format!("{base}/CodeSystem/catalog")
}

/// Specialist branches (cardiology, radiology…): the `branch` property of catalog codes.
pub fn branch_system(base: &str) -> String {
    format!("{base}/CodeSystem/branch")
}

/// The ValueSet of the catalog codes of one branch.
pub fn branch_value_set(base: &str, branch: &str) -> String {
    format!("{base}/ValueSet/catalog-{branch}")
}

/// Booking-point channels (`counter`, `call-centre`, …).
pub fn channel_system(base: &str) -> String {
    format!("{base}/CodeSystem/channel")
}

/// A provider organisation's short code: the name used by ConceptMaps, tokens,
/// routing keys and settlement.
pub fn provider_identifier(base: &str) -> String {
    format!("{base}/sid/provider")
}

/// A booking point's identifier.
pub fn booking_point_identifier(base: &str) -> String {
    format!("{base}/sid/booking-point")
}

/// One of cupola's extensions or profiles.
pub fn structure(base: &str, name: &str) -> String {
    format!("{base}/StructureDefinition/{name}")
}

/// Catalog code properties.
pub const PROP_BRANCH: &str = "branch";
/// `visit` or `exam`: decides the D-class deadline.
pub const PROP_KIND: &str = "kind";
/// `first` or `follow-up`: the default a prescription may override.
pub const PROP_ACCESS: &str = "access";

const SEARCH_PARAMETERS: &str = include_str!("../../profiles/cupola/search-parameters.json");

/// cupola's own SearchParameters (`profiles/cupola/search-parameters.json`), with
/// `{canonical-base}` replaced by `base`.
pub fn search_parameters(base: &str) -> Vec<serde_json::Value> {
    let text = SEARCH_PARAMETERS.replace("{canonical-base}", base);
    let bundle: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    bundle["entry"].as_array().into_iter().flatten().map(|e| e["resource"].clone()).collect()
}

const OFF: &str = include_str!("../../profiles/cupola/search-parameters-off.json");

/// The R4 parameters cupola does not index (`profiles/cupola/search-parameters-off.json`),
/// as `(type, code)`.
pub fn parameters_off() -> Vec<(String, String)> {
    let file: serde_json::Value = serde_json::from_str(OFF).unwrap_or_default();
    let off = file["off"].as_array().into_iter().flatten();
    off.filter_map(|p| Some((p["base"].as_str()?.to_string(), p["code"].as_str()?.to_string()))).collect()
}

/// The search parameters a store under `base` indexes: R4's and cupola's own but
/// those it leaves off, its `open-to` taking the priority classes of
/// `mappings/booking/rules.json`.
pub fn registry(base: &str) -> cupola_search::Registry {
    let classes = crate::mappings::booking::priority_classes().iter().map(|c| c.code.clone()).collect();
    cupola_search::Registry::with_extra(&search_parameters(base))
        .with_open_to_classes(classes)
        .without(&parameters_off())
}

/// An appointment's booking code, short enough to read over the phone.
pub fn booking_code_system(base: &str) -> String {
    format!("{base}/sid/booking-code")
}

/// The priority classes of a prescription (U, B, D, P).
pub fn priority_class_system(base: &str) -> String {
    format!("{base}/CodeSystem/priority-class")
}

/// One of cupola's identifier systems (`pagopa-notice`, `iuv`, `remittance` …).
pub fn sid(base: &str, name: &str) -> String {
    format!("{base}/sid/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_to_takes_the_priority_classes_of_the_rules_file() {
        let r = registry("http://example.org/cupola");
        let classes = crate::mappings::booking::priority_classes();
        assert!(!classes.is_empty());
        for c in classes {
            let query = [("open-to".to_string(), c.code.clone())];
            r.parse_search("Slot", &query, false).unwrap_or_else(|e| panic!("{}: {e}", c.code));
        }
        let unknown = [("open-to".to_string(), "Z".to_string())];
        let e = r.parse_search("Slot", &unknown, false).expect_err("Z is no class");
        let codes: Vec<&str> = classes.iter().map(|c| c.code.as_str()).collect();
        assert!(e.message.contains(codes[codes.len() - 1]), "{}", e.message);
        assert!(e.message.contains(&codes[..codes.len() - 1].join(", ")), "{}", e.message);
    }
}
