//! The SQL behind the policy. Every predicate reads the search index
//! (`idx_reference`) of the resources' current versions (a deleted resource keeps its
//! reference rows, so its owner still sees it as deleted), binds the caller's
//! organisation or patient id as `$1`, and writes only this module's own constants
//! into the text. `{pk}` / `{type}` stand for the candidate resource.

/// Ids of the caller's organisation and of every organisation below it
/// (`Organization.partOf`, any depth).
fn orgs() -> String {
    "WITH RECURSIVE o(id) AS (SELECT CAST($1 AS TEXT) UNION \
     SELECT rr.res_id FROM o JOIN idx_reference ox ON ox.res_type = 'Organization' AND ox.param = 'partof' \
     AND ox.target_type = 'Organization' AND ox.target_id = o.id JOIN resources rr ON rr.pk = ox.res_pk) \
     SELECT id FROM o"
        .to_string()
}

/// pks of `res_type` resources whose reference `param` points at a `target` whose id
/// is in `ids`.
fn referring(res_type: &str, param: &str, target: &str, ids: &str) -> String {
    format!(
        "SELECT x.res_pk FROM idx_reference x WHERE x.res_type = '{res_type}' AND x.param = '{param}' \
         AND x.target_type = '{target}' AND x.target_id IN ({ids})"
    )
}

/// Ids of the `res_type` resources among `pks`.
fn ids_of(res_type: &str, pks: &str) -> String {
    format!("SELECT ir.res_id FROM resources ir WHERE ir.res_type = '{res_type}' AND ir.pk IN ({pks})")
}

/// pks of the `res_type` resources whose id is a `target` of reference `param` of
/// the `from` resources among `pks`.
fn referred(res_type: &str, from: &str, param: &str, pks: &str) -> String {
    format!(
        "SELECT tr.pk FROM resources tr WHERE tr.res_type = '{res_type}' AND tr.res_id IN \
         (SELECT y.target_id FROM idx_reference y WHERE y.res_type = '{from}' AND y.param = '{param}' \
         AND y.target_type = '{res_type}' AND y.res_pk IN ({pks}))"
    )
}

/// The actors an organisation provides: its HealthcareServices (`providedBy`),
/// Locations (`managingOrganization`), PractitionerRoles (`organization`) and the
/// organisations themselves; as a condition on reference alias `a`.
fn provided_actor(a: &str) -> String {
    let o = orgs();
    let of = |t: &str| ids_of(t, &referring(t, "organization", "Organization", &o));
    format!(
        "(({a}.target_type = 'HealthcareService' AND {a}.target_id IN ({})) \
         OR ({a}.target_type = 'Location' AND {a}.target_id IN ({})) \
         OR ({a}.target_type = 'PractitionerRole' AND {a}.target_id IN ({})) \
         OR ({a}.target_type = 'Organization' AND {a}.target_id IN ({o})))",
        of("HealthcareService"),
        of("Location"),
        of("PractitionerRole"),
    )
}

fn schedules() -> String {
    format!(
        "SELECT s.res_pk FROM idx_reference s WHERE s.res_type = 'Schedule' AND s.param = 'actor' AND {}",
        provided_actor("s")
    )
}

fn slots() -> String {
    referring("Slot", "schedule", "Schedule", &ids_of("Schedule", &schedules()))
}

/// Appointments on an owned slot, or without a slot and with an owned participant.
fn appointments() -> String {
    format!(
        "{} UNION SELECT p.res_pk FROM idx_reference p WHERE p.res_type = 'Appointment' AND p.param = 'actor' AND {} \
         AND NOT EXISTS (SELECT 1 FROM idx_reference ns WHERE ns.res_pk = p.res_pk AND ns.param = 'slot')",
        referring("Appointment", "slot", "Slot", &ids_of("Slot", &slots())),
        provided_actor("p")
    )
}

/// The pks a provider owns of `res_type` (its organisation id bound as `$1`), as a
/// `SELECT` of pks; `None` for a type a provider never owns.
fn owned_pks(res_type: &str) -> Option<String> {
    let o = orgs();
    Some(match res_type {
        "Organization" => {
            format!("SELECT og.pk FROM resources og WHERE og.res_type = 'Organization' AND og.res_id IN ({o})")
        }
        "Location" | "HealthcareService" | "PractitionerRole" | "Endpoint" => {
            referring(res_type, "organization", "Organization", &o)
        }
        "Schedule" => schedules(),
        "Slot" => slots(),
        "Appointment" => appointments(),
        "AppointmentResponse" => {
            referring("AppointmentResponse", "appointment", "Appointment", &ids_of("Appointment", &appointments()))
        }
        // `actor` rows of type Patient: Appointment's `patient` has no rows of its own.
        "Patient" => referred("Patient", "Appointment", "actor", &appointments()),
        "ServiceRequest" => referred("ServiceRequest", "Appointment", "based-on", &appointments()),
        "ChargeItem" => referring("ChargeItem", "performing-organization", "Organization", &o),
        "MessageHeader" => format!(
            "{} UNION {}",
            referring("MessageHeader", "sender", "Organization", &o),
            referring("MessageHeader", "receiver", "Organization", &o)
        ),
        _ => return None,
    })
}

/// A provider's ownership condition on the candidate, or `None`.
pub(super) fn owned(res_type: &str) -> Option<String> {
    owned_pks(res_type).map(|pks| format!("{{pk}} IN ({pks})"))
}

/// A booking point's remittances (its organisation id bound as `$1`): those whose
/// `requestor` is the point or an organisation below it.
pub(super) fn remittances_of() -> String {
    format!("{{pk}} IN ({})", referring("PaymentReconciliation", "requestor", "Organization", &orgs()))
}

/// The subscriptions created by the caller (its `sub` bound as `$1`).
pub(super) fn subscriptions_of() -> String {
    "{pk} IN (SELECT sr.pk FROM resources sr JOIN subscriptions so ON so.id = sr.res_id \
     WHERE sr.res_type = 'Subscription' AND so.owner_sub = $1)"
        .to_string()
}

/// The references that put a resource in a patient's compartment.
fn compartment_params(res_type: &str) -> &'static [&'static str] {
    match res_type {
        "Appointment" | "AppointmentResponse" => &["actor"],
        "ServiceRequest" | "ChargeItem" | "Account" | "Invoice" => &["subject"],
        "Coverage" => &["beneficiary", "subscriber", "policy-holder"],
        "Communication" => &["subject", "recipient", "sender"],
        _ => &[],
    }
}

/// A patient app's condition (the patient id bound as `$1`), or `None`.
pub(super) fn patient_compartment(res_type: &str) -> Option<String> {
    if res_type == "Patient" {
        return Some(
            "{pk} IN (SELECT me.pk FROM resources me WHERE me.res_type = 'Patient' AND me.res_id = $1)".into(),
        );
    }
    let params = compartment_params(res_type);
    if params.is_empty() {
        return None;
    }
    let list: Vec<String> = params.iter().map(|p| format!("'{p}'")).collect();
    Some(format!(
        "{{pk}} IN (SELECT c.res_pk FROM idx_reference c WHERE c.res_type = '{res_type}' AND c.param IN ({}) \
         AND c.target_type = 'Patient' AND c.target_id = $1)",
        list.join(", ")
    ))
}
