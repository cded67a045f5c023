//! The operations on resource types (type and instance level).

use super::{group, input, output, Kind as K, Operation, Param, MANY};

/// An operation on `resource`, at type level, that changes nothing (the fields that
/// differ are set over it).
const fn on(
    resource: &'static str,
    code: &'static str,
    description: &'static str,
    params: &'static [Param],
) -> Operation {
    super::declare(Some(resource), code, description, params)
}

const RETURN_BUNDLE: Param = output("return", K::Resource("Bundle"), 1, 1, "The result, as a Bundle.");
const RETURN_APPOINTMENT: Param = output("return", K::Resource("Appointment"), 1, 1, "The Appointment as it now is.");

pub const FIND: Operation = Operation {
    base: Some("https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-find"),
    ..on(
        "Appointment",
        "find",
        "Proposed Appointments on free slots for a prescription or a service, earliest first.",
        &[
            input("start", K::DateTime, 1, 1, "First day (Europe/Rome) or instant of the window."),
            input("end", K::DateTime, 1, 1, "Last day (Europe/Rome) or instant of the window."),
            input("referral-identifier", K::Token, 0, 1, "The prescription's NRE; this or service-type is needed."),
            input(
                "service-type",
                K::Token,
                0,
                MANY,
                "Catalog code of a service; comma-separated codes are alternatives.",
            ),
            input("patient-reference", K::Reference, 0, 1, "The patient the proposals are for."),
            input("location-reference", K::Reference, 0, 1, "Only slots at this Location."),
            input("organization", K::Reference, 0, 1, "Only slots of this provider Organization."),
            input("priority-class", K::Code, 0, 1, "The priority class: U, B, D or P."),
            input("district", K::String, 0, 1, "Only slots in this district."),
            input("near", K::String, 0, 1, "latitude|longitude the nearest places are ordered from."),
            input("_count", K::Integer, 0, 1, "How many proposals, 1 to 100 (default 10)."),
            RETURN_BUNDLE,
        ],
    )
};

pub const HOLD: Operation = Operation {
    base: Some("https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-hold"),
    affects_state: true,
    ..on(
        "Appointment",
        "hold",
        "Holds a proposed Appointment's slot for a while.",
        &[input("appointment-reference", K::Reference, 1, 1, "The proposed Appointment to hold."), RETURN_APPOINTMENT],
    )
};

pub const BOOK: Operation = Operation {
    base: Some("https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-book"),
    affects_state: true,
    ..on(
        "Appointment",
        "book",
        "Books a proposal (by reference) or an Appointment (as a resource); a reschedule names the one it replaces.",
        &[
            input(
                "appointment-reference",
                K::Reference,
                0,
                1,
                "A proposed or held Appointment; or appointment-resource.",
            ),
            input(
                "appointment-resource",
                K::Resource("Appointment"),
                0,
                1,
                "The Appointment to book; or appointment-reference.",
            ),
            input("cancelled-appt-id", K::Reference, 0, 1, "The Appointment this one replaces (a reschedule)."),
            output(
                "return",
                K::Resource("Bundle"),
                1,
                1,
                "The booked Appointment, the one it replaced, and its Invoice.",
            ),
        ],
    )
};

pub const CANCEL: Operation = Operation {
    type_level: false,
    instance: true,
    affects_state: true,
    ..on(
        "Appointment",
        "cancel",
        "Cancels a booked Appointment; its slot frees at once. With preview=true nothing changes: the answer says \
         what the cancellation would do (the Appointment, the refund rule's outcome, the ticket after).",
        &[
            input("reason", K::String, 0, 1, "Why (default: cancelled)."),
            input("preview", K::Boolean, 0, 1, "true: a dry run, rolled back; the answer is a Parameters."),
            output("return", K::Resource("Appointment"), 0, 1, "The Appointment as it now is (not with preview)."),
            output("appointment", K::Resource("Appointment"), 0, 1, "preview: the Appointment as it would be."),
            output("outcome", K::Code, 0, 1, "preview: refund | freed | kept | nothing-owed | no-ticket."),
            output("detail", K::String, 0, 1, "preview: why, in plain words."),
            output("refund", K::Money, 0, 1, "preview: what would be given back."),
            output("owed-before", K::Money, 0, 1, "preview: the ticket owed now."),
            output("owed-after", K::Money, 0, 1, "preview: the ticket owed after the cancellation."),
            output("paid", K::Money, 0, 1, "preview: what was paid on the ticket."),
            output("invoice", K::Resource("Invoice"), 0, 1, "preview: the ticket's Invoice as it would be."),
        ],
    )
};

pub const TRANSLATE: Operation = Operation {
    instance: true,
    base: Some("http://hl7.org/fhir/OperationDefinition/ConceptMap-translate"),
    ..on(
        "ConceptMap",
        "translate",
        "A code through the ConceptMaps the caller may read.",
        &[
            input("url", K::Uri, 0, 1, "The ConceptMap's canonical URL."),
            input("conceptMap", K::Uri, 0, 1, "The ConceptMap's canonical URL (as url)."),
            input("code", K::Code, 0, 1, "The code to translate; this or coding is needed."),
            input("system", K::Uri, 0, 1, "The code's system."),
            input("version", K::String, 0, 1, "The system's version."),
            input("source", K::Uri, 0, 1, "The source value set."),
            input("coding", K::Coding, 0, 1, "The code and its system as a Coding."),
            input("target", K::Uri, 0, 1, "The target value set."),
            input("targetsystem", K::Uri, 0, 1, "The system to translate into."),
            input("reverse", K::Boolean, 0, 1, "Only false: reverse translation is not supported."),
            output("result", K::Boolean, 1, 1, "Whether a mapping was found."),
            output("message", K::String, 0, 1, "Why nothing was found."),
            group(
                "match",
                "A mapping found.",
                &[
                    output("equivalence", K::Code, 0, 1, "How the codes relate."),
                    output("concept", K::Coding, 0, 1, "The code in the target system."),
                    output("source", K::Uri, 0, 1, "The ConceptMap it comes from."),
                ],
            ),
        ],
    )
};

pub const GENERATE_SLOTS: Operation = Operation {
    type_level: false,
    instance: true,
    affects_state: true,
    ..on(
        "Schedule",
        "generate-slots",
        "Generates the Schedule's Slots from its weekly sessions (administrators and the provider organisation that owns the Schedule).",
        &[
            input("from", K::Date, 0, 1, "The first day (default today, Europe/Rome)."),
            output("created", K::Integer, 1, 1, "Slots created."),
            output("kept", K::Integer, 1, 1, "Slots kept."),
            output("removed", K::Integer, 1, 1, "Slots removed."),
            output("held", K::String, 0, MANY, "A slot kept because it holds an appointment."),
            output("offered", K::Reference, 0, MANY, "A waiting-list Appointment offered one of the new slots."),
        ],
    )
};

/// The period `$close` closes and `$reopen` opens again.
const PERIOD_START: Param = input("start", K::DateTime, 1, 1, "Start of the period, an instant with its offset.");
const PERIOD_END: Param = input("end", K::DateTime, 1, 1, "End of the period, an instant with its offset.");

pub const CLOSE: Operation = Operation {
    type_level: false,
    instance: true,
    affects_state: true,
    ..on(
        "Schedule",
        "close",
        "Closes the Schedule's Slots in a period; the Appointments on them are to be rebooked.",
        &[
            PERIOD_START,
            PERIOD_END,
            input("reason", K::String, 0, 1, "Why (default: closed)."),
            output("closed", K::Reference, 0, MANY, "A Slot closed."),
            output("rebook", K::Reference, 0, MANY, "An Appointment on a closed Slot."),
        ],
    )
};

pub const REOPEN: Operation = Operation {
    type_level: false,
    instance: true,
    affects_state: true,
    ..on(
        "Schedule",
        "reopen",
        "Reopens the Schedule's closed Slots in a period (the opposite of $close); each free again is offered to the first in its waiting list.",
        &[
            PERIOD_START,
            PERIOD_END,
            input("reason", K::String, 0, 1, "The closure's reason, taken out of each Slot's comment (default: closed)."),
            output("reopened", K::Reference, 0, MANY, "A Slot open again."),
            output("offered", K::Reference, 0, MANY, "A waiting-list Appointment offered one of them."),
        ],
    )
};

pub const APPLY: Operation = Operation {
    instance: true,
    base: Some("http://hl7.org/fhir/OperationDefinition/ChargeItemDefinition-apply"),
    ..on(
        "ChargeItemDefinition",
        "apply",
        "The price of services for a patient, as one prescription, without booking anything.",
        &[
            input("code", K::Token, 0, MANY, "Catalog code of a service (at type level, at least one)."),
            input("patient", K::Reference, 0, 1, "The patient (exemptions, coverage)."),
            input("date", K::Date, 0, 1, "The day of the tariff (default today)."),
            output("return", K::Resource("Parameters"), 1, 1, "Each service's tariff and share, gross, quota, owed."),
        ],
    )
};

pub const OUTSTANDING: Operation = Operation {
    type_level: false,
    instance: true,
    ..on(
        "Patient",
        "outstanding",
        "What the patient owes, invoice by invoice.",
        &[output("return", K::Resource("Parameters"), 1, 1, "The total and each invoice owed.")],
    )
};
