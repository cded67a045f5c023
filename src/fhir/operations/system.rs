//! The operations at system level (`/fhir/$code`).

use super::{group, input, output, Kind as K, Operation};

/// A system-level operation.
pub(super) const fn system(
    code: &'static str,
    affects_state: bool,
    description: &'static str,
    params: &'static [super::Param],
) -> Operation {
    Operation { affects_state, ..super::declare(None, code, description, params) }
}

pub const WAITING_TIMES: Operation = system(
    "waiting-times",
    false,
    "Waiting-time figures of the bookings made in a period.",
    &[
        input("service", K::Token, 0, 1, "Only bookings of this catalog code."),
        input("branch", K::Token, 0, 1, "Only bookings of this branch."),
        input("district", K::String, 0, 1, "Only bookings in this district."),
        input("priority-class", K::Code, 0, 1, "Only bookings of this priority class."),
        input("period", K::String, 0, 1, "A year, month or day: 2026, 2026-11, 2026-11-26 (default this month)."),
        input(
            "group",
            K::Code,
            0,
            1,
            "`day`: also the bookings of each day (Europe/Rome) by channel; `service`: also the figures of each service.",
        ),
        output("period", K::Period, 1, 1, "The period counted."),
        output("bookings", K::Integer, 1, 1, "Bookings made."),
        output("with-deadline", K::Integer, 1, 1, "Bookings with a guaranteed deadline."),
        output("wait-median-days", K::Decimal, 0, 1, "Median wait, in days."),
        output("wait-p90-days", K::Decimal, 0, 1, "90th percentile of the wait, in days."),
        output("within-deadline-share", K::Decimal, 0, 1, "Share booked within the deadline."),
        group(
            "channel",
            "Bookings by channel.",
            &[
                output("code", K::Code, 1, 1, "The channel."),
                output("bookings", K::Integer, 1, 1, "Its bookings."),
                output("share", K::Decimal, 1, 1, "Its share."),
            ],
        ),
        group(
            "day",
            "With group=day: the bookings made on one day (Europe/Rome) through one channel; days without any are left out.",
            &[
                output("date", K::Date, 1, 1, "The day the bookings were made."),
                output("code", K::Code, 1, 1, "The channel."),
                output("bookings", K::Integer, 1, 1, "Its bookings that day."),
            ],
        ),
        group(
            "service",
            "With group=service: the figures of the most booked services (at most 12), most booked first.",
            &[
                output("code", K::Code, 1, 1, "The catalog code."),
                output("bookings", K::Integer, 1, 1, "Its bookings."),
                output("wait-median-days", K::Decimal, 1, 1, "Its median wait, in days."),
                output("wait-p90-days", K::Decimal, 1, 1, "The 90th percentile of its wait, in days."),
                output("within-deadline-share", K::Decimal, 0, 1, "Its share booked within the deadline."),
            ],
        ),
    ],
);

pub const SETTLEMENT: Operation = system(
    "settlement",
    true,
    "One PaymentReconciliation per provider for a month, stored (administrators).",
    &[
        input("period", K::String, 1, 1, "The month, YYYY-MM."),
        output("return", K::Resource("Bundle"), 1, 1, "The PaymentReconciliations and the period's payment total."),
    ],
);

pub const RECOVERY: Operation = system(
    "recovery",
    true,
    "The credit-recovery run as of a day (administrators).",
    &[
        input("date", K::Date, 0, 1, "The day (default today)."),
        group(
            "moved",
            "An invoice moved to a new stage.",
            &[output("invoice", K::Reference, 1, 1, "The Invoice."), output("stage", K::Code, 1, 1, "Its new stage.")],
        ),
    ],
);

pub const DISPATCH_LISTS: Operation = system(
    "dispatch-lists",
    true,
    "Each provider's daily appointment list of a day to the outbox, at once (administrators).",
    &[
        input("date", K::Date, 0, 1, "The day (default today)."),
        group(
            "list",
            "A list sent.",
            &[
                output("provider", K::Reference, 1, 1, "The provider Organization."),
                output("appointments", K::Integer, 1, 1, "Appointments on its list."),
            ],
        ),
    ],
);

pub const PROCESS_MESSAGE: Operation = Operation {
    base: Some("http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"),
    ..system(
        "process-message",
        true,
        "A message Bundle from a provider system (role provider), posted as the body.",
        &[
            input("content", K::Resource("Bundle"), 1, 1, "The message Bundle."),
            output("return", K::Resource("Bundle"), 0, 1, "The response message."),
        ],
    )
};
