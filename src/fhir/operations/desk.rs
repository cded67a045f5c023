//! The integration desk's operations (administrators): the outbox and its figures,
//! resends, the dead-letter queue and its replay.

use super::system::system;
use super::{always, group, input, maybe, optional, parts, Kind as K, Operation, MANY};

pub const OUTBOX: Operation = system(
    "outbox",
    false,
    "The messages for the providers, newest first, a page at a time; or one message with its Bundle (administrators).",
    &[
        optional("status", K::Code, "pending, sent, unroutable, failed or parked."),
        optional("provider", K::String, "Only this provider's: its Organization (Organization/x or x) or its code."),
        optional("message-id", K::String, "This message alone, with the Bundle it carries (content)."),
        optional("_count", K::Integer, "How many, 1 to 1000 (default 100)."),
        optional("before", K::Integer, "Only messages before this position: the next page (see next)."),
        group(
            "message",
            "A message.",
            &[
                always("message-id", K::String, "Its id (the MessageHeader's, the AMQP message id)."),
                always("provider", K::String, "The provider code it is for."),
                always("routing-key", K::String, "Its routing key."),
                always("event", K::Code, "Its event."),
                always("focus", K::Reference, "What it is about."),
                always("status", K::Code, "pending, sent, unroutable, failed or parked."),
                always("attempts", K::Integer, "Publishing attempts."),
                always("created", K::Instant, "When it was made."),
                always("position", K::Integer, "Its place in the outbox (pages are cut by it)."),
                maybe("reason", K::String, "Why it is unroutable, failed, parked, or was resent, in plain words."),
                maybe("delivery", K::Code, "What the provider answered: ok, transient-error, fatal-error."),
                maybe("acknowledged", K::Instant, "When the provider answered."),
                maybe("sent", K::Instant, "When the broker confirmed it."),
                maybe("next-attempt", K::Instant, "When an unroutable message goes again."),
                maybe("resends", K::Integer, "How often an administrator resent it."),
                maybe("resent", K::Instant, "When it was last resent."),
                maybe("resent-as", K::String, "The new message it was resent as."),
                maybe("resent-from", K::String, "The message it is a resend of."),
                maybe("content", K::Resource("Bundle"), "The message Bundle (with message-id only)."),
                maybe(
                    "content-removed",
                    K::String,
                    "Why the Bundle is absent: its provider acknowledged it and its retention ended.",
                ),
            ],
        ),
        maybe("next", K::Uri, "The next page, when there may be one."),
    ],
);

pub const OUTBOX_SUMMARY: Operation = system(
    "outbox-summary",
    false,
    "Per provider: messages waiting by status, the oldest pending, the last acknowledgement, the lag (administrators).",
    &[
        optional("provider", K::String, "Only this provider: its Organization (Organization/x or x) or its code."),
        group(
            "provider",
            "One provider's figures.",
            &[
                always("provider", K::String, "The provider code."),
                always("pending", K::Integer, "Messages pending."),
                always("unroutable", K::Integer, "Messages no queue takes (retried by themselves)."),
                always("failed", K::Integer, "Messages held (a code without mapping)."),
                always("parked", K::Integer, "Messages the provider refused (fatal-error)."),
                parts(
                    "oldest-pending",
                    "The oldest message still to be published (pending or unroutable).",
                    &[
                        always("message-id", K::String, "Its id."),
                        always("created", K::Instant, "When it was made."),
                        always("age", K::Duration, "How long it has waited."),
                    ],
                ),
                parts(
                    "last-acknowledgement",
                    "The provider's last answer.",
                    &[
                        always("message-id", K::String, "The message answered."),
                        always("outcome", K::Code, "ok, transient-error or fatal-error."),
                        always("received", K::Instant, "When it came."),
                    ],
                ),
                always("lag", K::Duration, "How long the first message sent after the last answered one has waited for an answer (0: none waits)."),
                maybe("oldest-unanswered", K::String, "That message."),
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
        optional("status", K::Code, "Instead of message-id: every message of this status (unroutable, failed, parked, sent)."),
        optional("provider", K::String, "With status: only this provider's (Organization or code)."),
        optional("_count", K::Integer, "With status: at most this many, oldest first, 1 to 1000 (default 1000)."),
        always("queued", K::Integer, "How many were queued (again or as new)."),
        group(
            "resent",
            "A message asked for, and what became of it.",
            &[
                always("message-id", K::String, "The message asked for."),
                always("resent-id", K::String, "The message queued or found: the same, or a new id."),
                always("outcome", K::Code, "queued, queued-as-new, held, already-pending, already-resent or body-removed."),
                always("status", K::Code, "Its status now."),
                always("detail", K::String, "What was done, or why not, in plain words."),
                always("focus", K::Reference, "What it is about."),
            ],
        ),
    ],
);

pub const DEAD_LETTER: Operation = system(
    "dead-letter",
    false,
    "The dead-letter queue's messages with why each is there; read without taking any away (administrators).",
    &[
        optional("_count", K::Integer, "How many, 1 to 1000 (default 100)."),
        always("total", K::Integer, "Messages in the queue (not counting those another reader holds)."),
        group(
            "message",
            "A dead letter.",
            &[
                always("dead-letter-id", K::String, "Its id here: its message id, else its body's digest."),
                maybe("message-id", K::String, "Its AMQP message id."),
                always(
                    "origin",
                    K::Code,
                    "inbound (refused by the gateway), queue (dead-lettered by RabbitMQ) or unknown.",
                ),
                always("reason", K::String, "Why it is there, in plain words."),
                maybe("provider", K::String, "The broker user that published an inbound message."),
                maybe("exchange", K::String, "The exchange it was published to."),
                maybe("routing-key", K::String, "Its routing key."),
                maybe("queue", K::String, "The queue it died in."),
                maybe("died", K::Instant, "When it died."),
                maybe("count", K::Integer, "How often it died there."),
                maybe("outcome", K::Resource("OperationOutcome"), "The gateway's OperationOutcome."),
                maybe("content", K::Resource("Resource"), "The message, when it is a FHIR resource."),
                maybe("content-text", K::String, "The message as text, when it is not."),
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
        optional("all", K::Boolean, "true: every dead letter (up to 1000)."),
        always("replayed-count", K::Integer, "How many were replayed."),
        group(
            "replayed",
            "A dead letter asked for, and what its replay did.",
            &[
                always("dead-letter-id", K::String, "The dead letter."),
                maybe("message-id", K::String, "Its AMQP message id."),
                always("outcome", K::Code, "replayed, failed (it stays) or not-found."),
                always("detail", K::String, "What was done, or why not."),
            ],
        ),
    ],
);
