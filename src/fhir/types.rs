//! The resource types cupola serves.

/// Every resource type the CUP uses; each supports the full set of REST interactions.
/// One list, kept where the search parameters of each type are defined.
pub const SERVED: &[&str] = cupola_search::RESOURCE_TYPES;

pub fn is_served(res_type: &str) -> bool {
    SERVED.contains(&res_type)
}

/// A FHIR logical id: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
