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
