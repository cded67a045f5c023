//! The desks' main paths, as operators walk them.

use std::sync::Arc;

use crate::{Env, Scenario};

pub const ALL: &[(&str, Scenario)] = &[];
/// Signing in with the region's identity provider, on a gateway of its own.
pub const SIGN_IN: &[(&str, Scenario)] = &[("oauth_sign_in", crate::oauth::sign_in)];

#[allow(dead_code)]
fn _env(_: Arc<Env>) {}
