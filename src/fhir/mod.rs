//! FHIR R4 formats, checks and resource shapes: everything about FHIR that is not
//! HTTP and not storage.

pub mod bundle;
pub mod capability;
pub mod check;
pub mod codec;
pub mod depth;
pub mod elements;
pub mod meta;
pub mod names;
pub mod operations;
pub mod references;
pub mod smart;
pub mod types;
pub mod view;
