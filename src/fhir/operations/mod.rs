//! Every operation cupola implements, declared once: its parameters (name, FHIR type,
//! cardinality, in or out, what it means). The API reads each operation's parameters
//! through these declarations (`crate::api::params`), the CapabilityStatement lists
//! them, and `GET /fhir/OperationDefinition/{id}` serves them (`definition`).

mod definition;
mod desk;
mod resources;
mod subscriptions;
mod system;

pub use definition::definition;
pub use desk::*;
pub use resources::*;
pub use subscriptions::*;
pub use system::*;

/// What a parameter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    /// A code with an optional system (`system|code`): FHIR type `string`, search type `token`.
    Token,
    Code,
    Uri,
    /// A URL (`url`: a location to call, not an identifier).
    Url,
    Date,
    DateTime,
    Integer,
    Boolean,
    Decimal,
    Instant,
    Money,
    /// A time span (R4 `Duration`: a Quantity in UCUM units); answers only.
    Duration,
    Coding,
    Reference,
    Period,
    /// A resource of that type (`Resource` for any).
    Resource(&'static str),
    /// Named parts only (no value of its own).
    Parts,
}

impl Kind {
    /// The R4 type code of `OperationDefinition.parameter.type` (none for parts).
    pub fn fhir_type(self) -> Option<&'static str> {
        Some(match self {
            Kind::String | Kind::Token => "string",
            Kind::Code => "code",
            Kind::Uri => "uri",
            Kind::Url => "url",
            Kind::Date => "date",
            Kind::DateTime => "dateTime",
            Kind::Integer => "integer",
            Kind::Boolean => "boolean",
            Kind::Decimal => "decimal",
            Kind::Instant => "instant",
            Kind::Money => "Money",
            Kind::Duration => "Duration",
            Kind::Coding => "Coding",
            Kind::Reference => "Reference",
            Kind::Period => "Period",
            Kind::Resource(t) => t,
            Kind::Parts => return None,
        })
    }

    /// How the kind is named to a client whose value does not fit.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Token => "a token (valueIdentifier, valueCoding, valueCodeableConcept, or system|code as text)",
            Kind::Code => "a code (valueCode, valueCoding or text)",
            Kind::Date => "a date like 2026-11-26 (valueDate, or valueDateTime / valueInstant)",
            Kind::DateTime => "a date or a date-time with its offset (valueDate, valueDateTime, valueInstant)",
            Kind::Integer => "an integer (valueInteger)",
            Kind::Boolean => "a boolean (valueBoolean, true or false)",
            Kind::Reference => "a reference (valueReference, or Type/id as text)",
            Kind::Coding => "a Coding (valueCoding, or system|code as text)",
            Kind::Resource(_) => "a resource (in `resource`)",
            Kind::Uri | Kind::Url => "a URI (valueUri, valueCanonical, valueUrl or text)",
            _ => "a string (valueString)",
        }
    }
}

/// `in` or `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    In,
    Out,
}

/// `max` of a repeating parameter.
pub const MANY: u32 = u32::MAX;

/// One parameter of an operation.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub min: u32,
    /// [`MANY`] for `*`.
    pub max: u32,
    pub use_: Use,
    pub doc: &'static str,
    pub part: &'static [Param],
}

const fn input(name: &'static str, kind: Kind, min: u32, max: u32, doc: &'static str) -> Param {
    Param { name, kind, min, max, use_: Use::In, doc, part: &[] }
}

const fn output(name: &'static str, kind: Kind, min: u32, max: u32, doc: &'static str) -> Param {
    Param { name, kind, min, max, use_: Use::Out, doc, part: &[] }
}

/// An optional input, at most once.
const fn optional(name: &'static str, kind: Kind, doc: &'static str) -> Param {
    input(name, kind, 0, 1, doc)
}

/// An output always answered, once.
const fn always(name: &'static str, kind: Kind, doc: &'static str) -> Param {
    output(name, kind, 1, 1, doc)
}

/// An output answered when it applies, at most once.
const fn maybe(name: &'static str, kind: Kind, doc: &'static str) -> Param {
    output(name, kind, 0, 1, doc)
}

/// An output made of parts (repeating).
const fn group(name: &'static str, doc: &'static str, part: &'static [Param]) -> Param {
    Param { name, kind: Kind::Parts, min: 0, max: MANY, use_: Use::Out, doc, part }
}

/// An output made of parts, at most once.
const fn parts(name: &'static str, doc: &'static str, part: &'static [Param]) -> Param {
    Param { name, kind: Kind::Parts, min: 0, max: 1, use_: Use::Out, doc, part }
}

/// One operation.
#[derive(Debug)]
pub struct Operation {
    pub code: &'static str,
    /// The resource type it runs on; `None` at system level.
    pub resource: Option<&'static str>,
    pub type_level: bool,
    pub instance: bool,
    /// The IHE or HL7 definition cupola's follows, named in `base`.
    pub base: Option<&'static str>,
    pub affects_state: bool,
    pub description: &'static str,
    pub params: &'static [Param],
}

impl Operation {
    /// The declared input `name`.
    pub fn input(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.use_ == Use::In && p.name == name)
    }

    pub fn inputs(&self) -> impl Iterator<Item = &'static Param> {
        self.params.iter().filter(|p| p.use_ == Use::In)
    }

    /// `$code`, for messages.
    pub fn label(&self) -> String {
        format!("${}", self.code)
    }

    /// Id of cupola's OperationDefinition: `Type-code`, or the code at system level.
    pub fn id(&self) -> String {
        match self.resource {
            Some(r) => format!("{r}-{}", self.code),
            None => self.code.to_string(),
        }
    }

    pub fn url(&self, canonical: &str) -> String {
        format!("{canonical}/OperationDefinition/{}", self.id())
    }
}

/// An operation at type level (system level without `resource`) that changes
/// nothing: the declarations set the fields that differ over it.
const fn declare(
    resource: Option<&'static str>,
    code: &'static str,
    description: &'static str,
    params: &'static [Param],
) -> Operation {
    Operation {
        code,
        resource,
        type_level: resource.is_some(),
        instance: false,
        base: None,
        affects_state: false,
        description,
        params,
    }
}

/// Every operation, in the CapabilityStatement's order.
pub const ALL: &[&Operation] = &[
    &FIND,
    &HOLD,
    &BOOK,
    &CANCEL,
    &TRANSLATE,
    &GENERATE_SLOTS,
    &CLOSE,
    &REOPEN,
    &APPLY,
    &OUTSTANDING,
    &WAITING_TIMES,
    &SETTLEMENT,
    &RECOVERY,
    &OUTBOX,
    &OUTBOX_SUMMARY,
    &RESEND,
    &DEAD_LETTER,
    &DEAD_LETTER_REPLAY,
    &DISPATCH_LISTS,
    &PROCESS_MESSAGE,
    &SUBSCRIPTION_STATUS,
    &SUBSCRIPTION_EVENTS,
    &SUBSCRIPTION_WS_BINDING_TOKEN,
];

/// The operation whose OperationDefinition has this id.
pub fn by_id(id: &str) -> Option<&'static Operation> {
    ALL.iter().copied().find(|o| o.id() == id)
}
