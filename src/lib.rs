//! cupola: a FHIR R4 integration gateway for an Italian CUP (regional healthcare
//! booking centre). See README.md for what it serves and how to run it.

// Functions stay under clippy.toml's threshold (80 lines): CI keeps it.
#![warn(clippy::too_many_lines)]

pub mod access;
pub mod agenda;
pub mod api;
pub mod audit;
pub mod auth;
pub mod background;
pub mod billing;
pub mod booking;
pub mod catalog;
pub mod config;
pub mod console;
pub mod demo;
pub mod error;
pub mod fhir;
pub mod mappings;
pub mod messaging;
pub mod metrics;
pub mod notify;
pub mod store;
pub mod telemetry;

pub use config::Config;
pub use error::{Error, Result};
