//! What each caller may see and change: one policy, turned into SQL predicates that
//! the store applies wherever it reads (read, vread, search, count, includes,
//! chains, history, conditional matches, transaction entries) and checks on every
//! write. Whatever a caller may not see is answered as if it did not exist.
//!
//! The policy, by role:
//! - `admin`: everything (AuditEvent read-only, like for everyone).
//! - `booking-point`: the directory and catalog, every agenda, patients and their
//!   prescriptions, appointments, coverages, charges and invoices; writes patients,
//!   prescriptions, coverages, communications and appointments.
//! - `payment-point`: the directory and catalog, patients, what they owe (Invoice,
//!   ChargeItem, Account, Coverage) and payments; writes PaymentNotice.
//! - `provider`: the directory and catalog; what its organisation (and, for a health
//!   authority, its facilities via `Organization.partOf`) owns: schedules whose actor
//!   it provides, their slots and appointments, and the patients, prescriptions and
//!   charge items attached to them; writes what it owns.
//! - `patient-app`: the directory, catalog and agendas, and its own patient's data.

mod predicates;

use cupola_search::{Bind, ExtraCondition};

use crate::auth::{Caller, Interaction, Role, Scopes};

/// What a caller may do with the resources of one type.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Every resource of the type.
    All,
    /// None of them.
    Nothing,
    /// Those matching the condition (`{pk}` / `{type}`: the candidate's
    /// `resources.pk` / `resources.res_type`).
    Where(ExtraCondition),
}

/// Whose eyes a store access goes through.
#[derive(Debug, Clone)]
pub struct Access {
    who: Who,
    /// The token's scopes: a type they do not cover is invisible (in includes,
    /// chains and history too) and unwritable.
    scopes: Option<Scopes>,
    /// Who is calling, for the rules that record or depend on it (bookings); `None`
    /// for the gateway itself.
    actor: Option<Actor>,
}

/// The caller behind an access, as the booking rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub sub: String,
    pub role: Role,
    pub org: Option<String>,
    pub channel: Option<String>,
}

#[derive(Debug, Clone)]
enum Who {
    /// The gateway itself (demo data, audit writer, start-up loaders).
    Gateway,
    Admin,
    /// A counter, call centre, GP office: its organisation, when the token names one.
    BookingPoint {
        org: Option<String>,
    },
    PaymentPoint,
    Provider {
        org: String,
    },
    Patient {
        id: String,
    },
    /// A role without the identity it needs (no `org`, no `patient`): sees nothing.
    Nobody,
}

/// Types anyone authenticated may read: the directory and the catalog.
const DIRECTORY: &[&str] = &[
    "Organization",
    "Location",
    "HealthcareService",
    "Practitioner",
    "PractitionerRole",
    "Endpoint",
    "CodeSystem",
    "ValueSet",
    "ConceptMap",
    "SearchParameter",
    "ActivityDefinition",
    "ChargeItemDefinition",
];

const AGENDAS: &[&str] = &["Schedule", "Slot"];

/// The subscription topics (R4 `Basic`, as the Subscriptions Backport IG has
/// them): the gateway's own, read by any authenticated caller, written by nobody.
pub const TOPICS: &str = "Basic";

/// Types the gateway generates from its own code (the OperationDefinitions of its
/// operations): what the API is, not data, so any authenticated caller reads them,
/// whatever its role and scopes, and nobody writes them.
pub const DEFINITIONS: &[&str] = &["OperationDefinition"];

/// Types holding a patient's data: every access to them is audited.
pub const PATIENT_DATA: &[&str] = &[
    "Patient",
    "ServiceRequest",
    "Appointment",
    "AppointmentResponse",
    "Coverage",
    "Account",
    "ChargeItem",
    "Invoice",
    "PaymentNotice",
    "PaymentReconciliation",
    "Communication",
    "MessageHeader",
    "Bundle",
];

/// Whether resources of this type hold patient data.
pub fn is_patient_data(res_type: &str) -> bool {
    PATIENT_DATA.contains(&res_type)
}

impl Access {
    /// The gateway's own access: everything.
    pub fn gateway() -> Access {
        Access { who: Who::Gateway, scopes: None, actor: None }
    }

    /// A provider organisation acting through its system (an inbound message).
    pub fn provider(org: &str) -> Access {
        let actor = Actor {
            sub: format!("provider-system:{org}"),
            role: crate::auth::Role::Provider,
            org: Some(org.to_string()),
            channel: None,
        };
        Access { who: Who::Provider { org: org.to_string() }, scopes: None, actor: Some(actor) }
    }

    /// No identity: sees nothing.
    pub fn nobody() -> Access {
        Access { who: Who::Nobody, scopes: None, actor: None }
    }

    pub fn of(caller: &Caller) -> Access {
        let who = match (caller.role, &caller.org, &caller.patient) {
            (Role::Admin, _, _) => Who::Admin,
            (Role::BookingPoint, org, _) => Who::BookingPoint { org: org.clone() },
            (Role::PaymentPoint, _, _) => Who::PaymentPoint,
            (Role::Provider, Some(org), _) => Who::Provider { org: org.clone() },
            (Role::PatientApp, _, Some(p)) => Who::Patient { id: p.clone() },
            _ => Who::Nobody,
        };
        let actor = Actor {
            sub: caller.sub.clone(),
            role: caller.role,
            org: caller.org.clone(),
            channel: caller.channel.clone(),
        };
        Access { who, scopes: Some(caller.scopes.clone()), actor: Some(actor) }
    }

    /// The caller, unless this is the gateway's own access.
    pub fn actor(&self) -> Option<&Actor> {
        self.actor.as_ref()
    }

    /// The patient a patient app acts for.
    pub fn patient(&self) -> Option<&str> {
        match &self.who {
            Who::Patient { id } => Some(id),
            _ => None,
        }
    }

    /// The caller's resource scopes as text (`None`: this access is not a caller's).
    pub fn scopes_text(&self) -> Option<String> {
        self.scopes.as_ref().map(Scopes::as_text)
    }

    /// The access of a caller recorded earlier (a subscription's owner): its events
    /// are matched and delivered with what that caller may see, scopes included.
    pub fn of_recorded(actor: &Actor, patient: Option<&str>, scopes: &str) -> Access {
        let scopes = Scopes::parse(scopes).unwrap_or_default();
        let caller = crate::auth::Caller::recorded(actor, patient, scopes);
        Access::of(&caller)
    }

    /// The gateway or an administrator: may store appointments without a slot or in
    /// the past (data migration).
    pub fn is_privileged(&self) -> bool {
        matches!(self.who, Who::Gateway | Who::Admin)
    }

    fn scoped(&self, res_type: &str, any_of: &[Interaction]) -> bool {
        self.scopes.as_ref().is_none_or(|s| any_of.iter().any(|i| s.allows(res_type, *i)))
    }

    /// Which resources of `res_type` a reference this caller writes may name: those
    /// it may read, so that one it may not see answers as one that does not exist;
    /// for a provider, which sees a patient only through its own appointments, any
    /// that exists.
    pub fn referable(&self, res_type: &str) -> Rule {
        match self.who {
            Who::Provider { .. } => Rule::All,
            _ => self.read(res_type),
        }
    }

    /// Whether this access sees and changes everything (no predicate at all).
    pub fn is_unrestricted(&self) -> bool {
        matches!(self.who, Who::Gateway)
    }

    /// Which resources of `res_type` may be read (read, vread, search, history…).
    pub fn read(&self, res_type: &str) -> Rule {
        if DEFINITIONS.contains(&res_type) {
            return all_if(self.actor.is_some() || self.is_unrestricted());
        }
        if res_type == TOPICS {
            return all_if(self.actor.is_some() || self.is_unrestricted());
        }
        if !self.scoped(res_type, &[Interaction::Read, Interaction::Search]) {
            return Rule::Nothing;
        }
        if res_type == "Subscription" {
            return self.own_subscriptions();
        }
        let dir = DIRECTORY.contains(&res_type);
        match &self.who {
            Who::Gateway => Rule::All,
            Who::Admin => Rule::All,
            Who::Nobody => Rule::Nothing,
            // A counter that takes tickets reads its own remittance, as a payment point does.
            Who::BookingPoint { org: Some(org) } if res_type == "PaymentReconciliation" => {
                Rule::Where(ExtraCondition { sql: predicates::remittances_of(), binds: vec![Bind::Text(org.clone())] })
            }
            Who::BookingPoint { .. } => all_if(
                dir || AGENDAS.contains(&res_type)
                    || matches!(
                        res_type,
                        "Patient"
                            | "ServiceRequest"
                            | "Appointment"
                            | "AppointmentResponse"
                            | "Coverage"
                            | "Account"
                            | "ChargeItem"
                            | "Invoice"
                            | "Communication"
                    ),
            ),
            Who::PaymentPoint => all_if(
                dir || matches!(
                    res_type,
                    "Patient"
                        | "Coverage"
                        | "Account"
                        | "ChargeItem"
                        | "Invoice"
                        | "PaymentNotice"
                        | "PaymentReconciliation"
                ),
            ),
            Who::Provider { .. } if dir => Rule::All,
            Who::Provider { org } => provider_rule(org, res_type),
            Who::Patient { .. } if dir || AGENDAS.contains(&res_type) => Rule::All,
            Who::Patient { id } => patient_rule(id, res_type),
        }
    }

    /// Which resources of `res_type` may be created, changed or deleted: the current
    /// version must match before the write and the new one after it.
    pub fn write(&self, res_type: &str) -> Rule {
        if DEFINITIONS.contains(&res_type) {
            return Rule::Nothing;
        }
        if (res_type == "AuditEvent" || res_type == TOPICS) && !matches!(self.who, Who::Gateway) {
            return Rule::Nothing;
        }
        if !self.scoped(res_type, &[Interaction::Create, Interaction::Update, Interaction::Delete]) {
            return Rule::Nothing;
        }
        if res_type == "Subscription" {
            return self.own_subscriptions();
        }
        match &self.who {
            Who::Gateway | Who::Admin => Rule::All,
            Who::Nobody => Rule::Nothing,
            Who::BookingPoint { .. } => all_if(matches!(
                res_type,
                "Patient"
                    | "ServiceRequest"
                    | "Appointment"
                    | "AppointmentResponse"
                    | "Coverage"
                    | "Communication"
                    // A counter takes the ticket where it books.
                    | "PaymentNotice"
            )),
            Who::PaymentPoint => all_if(res_type == "PaymentNotice"),
            Who::Provider { org } => match res_type {
                "Organization" | "Location" | "HealthcareService" | "PractitionerRole" | "Endpoint" => {
                    provider_rule(org, res_type)
                }
                t if DIRECTORY.contains(&t) => Rule::Nothing,
                t => provider_rule(org, t),
            },
            Who::Patient { id } => match res_type {
                "Patient" | "Appointment" | "AppointmentResponse" | "Communication" => patient_rule(id, res_type),
                _ => Rule::Nothing,
            },
        }
    }

    /// One condition over resources of any type (searches with includes, chains,
    /// system history): `None` when everything is visible.
    pub fn read_any(&self) -> Option<ExtraCondition> {
        if matches!(self.who, Who::Gateway | Who::Admin) {
            return None;
        }
        let mut all = Vec::new();
        let mut parts = Vec::new();
        let mut binds = Vec::new();
        for t in cupola_search::RESOURCE_TYPES {
            match self.read(t) {
                Rule::All => all.push(format!("'{t}'")),
                Rule::Nothing => {}
                Rule::Where(c) => {
                    // Conditions binding the same value (the organisation, the
                    // patient) share it; another (a subscription owner's `sub`) is
                    // bound after them, its `$1` renumbered.
                    let at = match c.binds.first().and_then(|b| binds.iter().position(|x| x == b)) {
                        Some(i) => i,
                        None => {
                            binds.extend(c.binds.iter().cloned());
                            binds.len() - c.binds.len()
                        }
                    };
                    parts.push(format!("({{type}} = '{t}' AND {})", c.render_on("{pk}", "{type}", at)));
                }
            }
        }
        if !all.is_empty() {
            parts.insert(0, format!("{{type}} IN ({})", all.join(", ")));
        }
        if parts.is_empty() {
            parts.push("1 = 0".into());
        }
        Some(ExtraCondition { sql: parts.join(" OR "), binds })
    }
}

impl Access {
    /// A subscription belongs to the caller that created it (an administrator
    /// sees and ends every one).
    fn own_subscriptions(&self) -> Rule {
        match (&self.who, &self.actor) {
            (Who::Gateway | Who::Admin, _) => Rule::All,
            (Who::Nobody, _) | (_, None) => Rule::Nothing,
            (_, Some(a)) => Rule::Where(ExtraCondition {
                sql: predicates::subscriptions_of(),
                binds: vec![Bind::Text(a.sub.clone())],
            }),
        }
    }
}

fn all_if(yes: bool) -> Rule {
    if yes {
        Rule::All
    } else {
        Rule::Nothing
    }
}

fn provider_rule(org: &str, res_type: &str) -> Rule {
    match predicates::owned(res_type) {
        Some(sql) => Rule::Where(ExtraCondition { sql, binds: vec![Bind::Text(org.to_string())] }),
        None => Rule::Nothing,
    }
}

fn patient_rule(patient: &str, res_type: &str) -> Rule {
    match predicates::patient_compartment(res_type) {
        Some(sql) => Rule::Where(ExtraCondition { sql, binds: vec![Bind::Text(patient.to_string())] }),
        None => Rule::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(who: Who) -> Access {
        Access { who, scopes: None, actor: None }
    }

    #[test]
    fn audit_events_are_written_by_the_gateway_only() {
        assert_eq!(access(Who::Admin).write("AuditEvent"), Rule::Nothing);
        assert_eq!(access(Who::Admin).read("AuditEvent"), Rule::All);
        assert_eq!(access(Who::Gateway).write("AuditEvent"), Rule::All);
        assert_eq!(access(Who::BookingPoint { org: None }).read("AuditEvent"), Rule::Nothing);
    }

    #[test]
    fn a_provider_sees_the_directory_and_only_what_it_owns() {
        let p = access(Who::Provider { org: "o1".into() });
        assert_eq!(p.read("Practitioner"), Rule::All);
        assert!(matches!(p.read("Appointment"), Rule::Where(_)));
        assert_eq!(p.read("PaymentNotice"), Rule::Nothing);
        assert_eq!(p.write("CodeSystem"), Rule::Nothing);
        assert!(matches!(p.write("Location"), Rule::Where(_)));
    }

    #[test]
    fn one_condition_covers_every_type() {
        let c = access(Who::Patient { id: "p1".into() }).read_any().expect("restricted");
        assert!(c.sql.starts_with("{type} IN (") && c.sql.contains("'Organization'"), "{}", c.sql);
        assert!(c.sql.contains("{type} = 'Appointment' AND"));
        assert!(!c.sql.contains("'AuditEvent'"));
        assert_eq!(c.binds, vec![Bind::Text("p1".into())]);
        assert_eq!(access(Who::Admin).read_any(), None);
        assert_eq!(access(Who::Nobody).read_any().map(|c| c.sql), Some("1 = 0".into()));
    }
}
