//! The SQL behind the policy. Every predicate reads the search index
//! (`idx_reference`) of the resources' current versions (a deleted resource keeps its
//! reference rows, so its owner still sees it as deleted), binds the caller's
//! organisation or patient id as `$1`, and writes only this module's own constants
//! into the text. `{pk}` / `{type}` stand for the candidate resource.
//!
//! A provider's conditions walk from the candidate up to its owner (appointment →
//! slot → schedule → actor → organisation), one correlated `EXISTS` per step, each an
//! index probe on `idx_reference (res_pk, param)` or `resources (res_type, res_id)`.
//! They used to name the set of everything the provider owns (`pk IN (…)`), which the
//! planner built whole for one read: over a year of agendas a provider's read of one
//! Appointment took up to 30 s (the replay, 0.001 of the year).

/// Ids of the caller's organisation and of every organisation below it
/// (`Organization.partOf`, any depth). Not correlated: built once per statement.
fn orgs() -> String {
    "WITH RECURSIVE o(id) AS (SELECT CAST($1 AS TEXT) UNION \
     SELECT rr.res_id FROM o JOIN idx_reference ox ON ox.res_type = 'Organization' AND ox.param = 'partof' \
     AND ox.target_type = 'Organization' AND ox.target_id = o.id JOIN resources rr ON rr.pk = ox.res_pk) \
     SELECT id FROM o"
        .to_string()
}

/// The resource `pk` refers through `param` to one of the caller's organisations.
/// `al` names this step's alias (unique within a condition).
fn to_org(pk: &str, param: &str, al: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM idx_reference {al} WHERE {al}.res_pk = {pk} AND {al}.param = '{param}' \
         AND {al}.target_type = 'Organization' AND {al}.target_id IN ({}))",
        orgs()
    )
}

/// The resource `pk` refers through `param` to a `target` resource for whose pk
/// `owned` holds.
fn via(pk: &str, param: &str, target: &str, al: &str, owned: impl Fn(&str) -> String) -> String {
    format!(
        "EXISTS (SELECT 1 FROM idx_reference {al}r JOIN resources {al}t ON {al}t.res_type = '{target}' \
         AND {al}t.res_id = {al}r.target_id WHERE {al}r.res_pk = {pk} AND {al}r.param = '{param}' \
         AND {al}r.target_type = '{target}' AND {})",
        owned(&format!("{al}t.pk"))
    )
}

/// The target of reference row `a` is one of the caller's organisations, or a
/// HealthcareService (`providedBy`), Location (`managingOrganization`) or
/// PractitionerRole (`organization`) of one.
fn provided_actor(a: &str) -> String {
    format!(
        "(({a}.target_type = 'Organization' AND {a}.target_id IN ({})) \
         OR ({a}.target_type IN ('HealthcareService', 'Location', 'PractitionerRole') \
         AND EXISTS (SELECT 1 FROM resources {a}t WHERE {a}t.res_type = {a}.target_type \
         AND {a}t.res_id = {a}.target_id AND {})))",
        orgs(),
        to_org(&format!("{a}t.pk"), "organization", &format!("{a}o"))
    )
}

fn schedule(pk: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM idx_reference sa WHERE sa.res_pk = {pk} AND sa.param = 'actor' AND {})",
        provided_actor("sa")
    )
}

fn slot(pk: &str) -> String {
    via(pk, "schedule", "Schedule", "vs", schedule)
}

/// Appointments on an owned slot, or without a slot and with an owned participant.
fn appointment(pk: &str) -> String {
    format!(
        "({} OR (NOT EXISTS (SELECT 1 FROM idx_reference ns WHERE ns.res_pk = {pk} AND ns.param = 'slot') \
         AND EXISTS (SELECT 1 FROM idx_reference ap WHERE ap.res_pk = {pk} AND ap.param = 'actor' AND {})))",
        via(pk, "slot", "Slot", "vl", slot),
        provided_actor("ap")
    )
}

/// The resource `pk` (of type `res_type`) is a target of reference `param` of an
/// owned Appointment.
fn named_by_appointment(pk: &str, res_type: &str, param: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM resources me JOIN idx_reference na ON na.target_type = '{res_type}' \
         AND na.target_id = me.res_id AND na.param = '{param}' WHERE me.pk = {pk} \
         AND na.res_type = 'Appointment' AND {})",
        appointment("na.res_pk")
    )
}

/// A provider's ownership condition on the candidate `{pk}` of `res_type` (its
/// organisation id bound as `$1`), or `None` for a type a provider never owns.
pub(super) fn owned(res_type: &str) -> Option<String> {
    let pk = "{pk}";
    Some(match res_type {
        "Organization" => {
            format!("EXISTS (SELECT 1 FROM resources og WHERE og.pk = {pk} AND og.res_id IN ({}))", orgs())
        }
        "Location" | "HealthcareService" | "PractitionerRole" | "Endpoint" => to_org(pk, "organization", "ow"),
        "Schedule" => schedule(pk),
        "Slot" => slot(pk),
        "Appointment" => appointment(pk),
        "AppointmentResponse" => via(pk, "appointment", "Appointment", "vp", appointment),
        // `actor` rows of type Patient: Appointment's `patient` has no rows of its own.
        "Patient" => named_by_appointment(pk, "Patient", "actor"),
        "ServiceRequest" => named_by_appointment(pk, "ServiceRequest", "based-on"),
        "ChargeItem" => to_org(pk, "performing-organization", "ow"),
        "MessageHeader" => format!("({} OR {})", to_org(pk, "sender", "ow"), to_org(pk, "receiver", "ow")),
        _ => return None,
    })
}

/// A booking point's remittances (its organisation id bound as `$1`): those whose
/// `requestor` is the point or an organisation below it.
pub(super) fn remittances_of() -> String {
    to_org("{pk}", "requestor", "rq")
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
