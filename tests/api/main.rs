//! Integration tests: the real gateway, over HTTP, on SQLite and on PostgreSQL.

mod helpers;
mod integrity;
#[path = "../shared/issuer.rs"]
mod issuer;
mod layers;

mod agenda;
mod billing;
mod booking;
mod cancel_preview;
mod catalog;
mod concurrency;
mod console;
mod console_agenda;
mod console_desks;
mod crud;
mod dead_letters;
mod demo_load;
mod desk;
mod docker;
mod examples;
mod jwks_rotation;
mod long_values;
mod malformed;
mod mappings;
mod messaging;
mod metrics;
mod operations;
mod readme;
mod remittance;
mod retention;
mod search;
mod security;
mod slots;
mod smart;
mod stored_bodies;
mod subscriptions;
mod subscriptions_restart;
mod subscriptions_ws;
mod transaction;
mod trust;
mod unroutable;
mod upkeep;
mod visibility;
mod waitlist;
mod writer;
