//! Integration tests: the real gateway, over HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod bench;
mod concurrency;
mod crud;
mod examples;
mod malformed;
mod search;
mod security;
mod transaction;
