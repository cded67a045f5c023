//! The integration desk's operations (administrators): the outbox and its figures,
//! resends, the dead-letter queue and its replay.

use super::system::system;
use super::{group, input, output, parts, Kind as K, Operation, MANY};

pub const OUTBOX: Operation = system(
    "outbox",
    false,
    "The messages for the providers, newest first, a page at a time; or one message with its Bundle (administrators).",
    &[
        input("status", K::Code, 0, 1, "pending, sent, unroutable, failed or parked."),
        input("provider", K::String, 0, 1, "Only this provider's: its Organization (Organization/x or x) or its code."),
        input("message-id", K::String, 0, 1, "This message alone, with the Bundle it carries (content)."),
        input("_count", K::Integer, 0, 1, "How many, 1 to 1000 (default 100)."),
        input("before", K::Integer, 0, 1, "Only messages before this position: the next page (see next)."),
        group(
            "message",
            "A message.",
            &[
                output("message-id", K::String, 1, 1, "Its id (the MessageHeader's, the AMQP message id)."),
                output("provider", K::String, 1, 1, "The provider code it is for."),
                output("routing-key", K::String, 1, 1, "Its routing key."),
                output("event", K::Code, 1, 1, "Its event."),
                output("focus", K::Reference, 1, 1, "What it is about."),
                output("status", K::Code, 1, 1, "pending, sent, unroutable, failed or parked."),
                output("attempts", K::Integer, 1, 1, "Publishing attempts."),
                output("created", K::Instant, 1, 1, "When it was made."),
                output("position", K::Integer, 1, 1, "Its place in the outbox (pages are cut by it)."),
                output(
                    "reason",
                    K::String,
                    0,
                    1,
                    "Why it is unroutable, failed, parked, or was resent, in plain words.",
                ),
                output("delivery", K::Code, 0, 1, "What the provider answered: ok, transient-error, fatal-error."),
                output("acknowledged", K::Instant, 0, 1, "When the provider answered."),
                output("sent", K::Instant, 0, 1, "When the broker confirmed it."),
                output("next-attempt", K::Instant, 0, 1, "When an unroutable message goes again."),
                output("resends", K::Integer, 0, 1, "How often an administrator resent it."),
                output("resent", K::Instant, 0, 1, "When it was last resent."),
                output("resent-as", K::String, 0, 1, "The new message it was resent as."),
                output("resent-from", K::String, 0, 1, "The message it is a resend of."),
                output("content", K::Resource("Bundle"), 0, 1, "The message Bundle (with message-id only)."),
            ],
        ),
        output("next", K::Uri, 0, 1, "The next page, when there may be one."),
    ],
);

pub const OUTBOX_SUMMARY: Operation = system(
    "outbox-summary",
    false,
    "Per provider: messages waiting by status, the oldest pending, the last acknowledgement, the lag (administrators).",
    &[
        input("provider", K::String, 0, 1, "Only this provider: its Organization (Organization/x or x) or its code."),
        group(
            "provider",
            "One provider's figures.",
            &[
                output("provider", K::String, 1, 1, "The provider code."),
                output("pending", K::Integer, 1, 1, "Messages pending."),
                output("unroutable", K::Integer, 1, 1, "Messages no queue takes (retried by themselves)."),
                output("failed", K::Integer, 1, 1, "Messages held (a code without mapping)."),
                output("parked", K::Integer, 1, 1, "Messages the provider refused (fatal-error)."),
                parts(
                    "oldest-pending",
                    "The oldest message still to be published (pending or unroutable).",
                    &[
                        output("message-id", K::String, 1, 1, "Its id."),
                        output("created", K::Instant, 1, 1, "When it was made."),
                        output("age", K::Duration, 1, 1, "How long it has waited."),
                    ],
                ),
                parts(
                    "last-acknowledgement",
                    "The provider's last answer.",
                    &[
                        output("message-id", K::String, 1, 1, "The message answered."),
                        output("outcome", K::Code, 1, 1, "ok, transient-error or fatal-error."),
                        output("received", K::Instant, 1, 1, "When it came."),
                    ],
                ),
                output("lag", K::Duration, 1, 1, "How long the first message sent after the last answered one has waited for an answer (0: none waits)."),
                output("oldest-unanswered", K::String, 0, 1, "That message."),
            ],
        ),
    ],
);

pub const RESEND: Operation = system(
    "resend",
    true,
    "Messages rebuilt with the current ConceptMaps and queued again; a new id where the provider had answered (administrators).",
    &[
        input("message-id", K::String, 0, MANY, "A message to resend."),
        input("status", K::Code, 0, 1, "Instead of message-id: every message of this status (unroutable, failed, parked, sent)."),
        input("provider", K::String, 0, 1, "With status: only this provider's (Organization or code)."),
        input("_count", K::Integer, 0, 1, "With status: at most this many, oldest first, 1 to 1000 (default 1000)."),
        output("queued", K::Integer, 1, 1, "How many were queued (again or as new)."),
        group(
            "resent",
            "A message asked for, and what became of it.",
            &[
                output("message-id", K::String, 1, 1, "The message asked for."),
                output("resent-id", K::String, 1, 1, "The message queued or found: the same, or a new id."),
                output("outcome", K::Code, 1, 1, "queued, queued-as-new, held, already-pending or already-resent."),
                output("status", K::Code, 1, 1, "Its status now."),
                output("detail", K::String, 1, 1, "What was done, or why not, in plain words."),
                output("focus", K::Reference, 1, 1, "What it is about."),
            ],
        ),
    ],
);

pub const DEAD_LETTER: Operation = system(
    "dead-letter",
    false,
    "The dead-letter queue's messages with why each is there; read without taking any away (administrators).",
    &[
        input("_count", K::Integer, 0, 1, "How many, 1 to 1000 (default 100)."),
        output("total", K::Integer, 1, 1, "Messages in the queue (not counting those another reader holds)."),
        group(
            "message",
            "A dead letter.",
            &[
                output("dead-letter-id", K::String, 1, 1, "Its id here: its message id, else its body's digest."),
                output("message-id", K::String, 0, 1, "Its AMQP message id."),
                output(
                    "origin",
                    K::Code,
                    1,
                    1,
                    "inbound (refused by the gateway), queue (dead-lettered by RabbitMQ) or unknown.",
                ),
                output("reason", K::String, 1, 1, "Why it is there, in plain words."),
                output("provider", K::String, 0, 1, "The broker user that published an inbound message."),
                output("exchange", K::String, 0, 1, "The exchange it was published to."),
                output("routing-key", K::String, 0, 1, "Its routing key."),
                output("queue", K::String, 0, 1, "The queue it died in."),
                output("died", K::Instant, 0, 1, "When it died."),
                output("count", K::Integer, 0, 1, "How often it died there."),
                output("outcome", K::Resource("OperationOutcome"), 0, 1, "The gateway's OperationOutcome."),
                output("content", K::Resource("Resource"), 0, 1, "The message, when it is a FHIR resource."),
                output("content-text", K::String, 0, 1, "The message as text, when it is not."),
            ],
        ),
    ],
);

pub const DEAD_LETTER_REPLAY: Operation = system(
    "dead-letter-replay",
    true,
    "Dead letters put back on their way; each leaves the queue once the broker confirmed it (administrators).",
    &[
        input("dead-letter-id", K::String, 0, MANY, "A dead letter to replay."),
        input("all", K::Boolean, 0, 1, "true: every dead letter (up to 1000)."),
        output("replayed-count", K::Integer, 1, 1, "How many were replayed."),
        group(
            "replayed",
            "A dead letter asked for, and what its replay did.",
            &[
                output("dead-letter-id", K::String, 1, 1, "The dead letter."),
                output("message-id", K::String, 0, 1, "Its AMQP message id."),
                output("outcome", K::Code, 1, 1, "replayed, failed (it stays) or not-found."),
                output("detail", K::String, 1, 1, "What was done, or why not."),
            ],
        ),
    ],
);
