//! SMART on FHIR scopes: v2 (`system/Appointment.cruds`, `user/Slot.rs`, `patient/*.r`)
//! and v1 (`.read`, `.write`, `.*`).
//!
//! The context (`patient`, `user`, `system`) does not narrow what a scope grants here:
//! the caller's role decides which resources it may see. Scopes that are not resource
//! scopes (`openid`, `fhirUser`, `launch`, `launch/patient`, `offline_access`, and any
//! scope of another API) are ignored; a resource scope that cannot be read is an error,
//! so is a v2 query suffix (`patient/Observation.rs?category=…`), which cupola does not
//! support.

use std::fmt;

use super::Interaction;

const CREATE: u8 = 1;
const READ: u8 = 2;
const UPDATE: u8 = 4;
const DELETE: u8 = 8;
const SEARCH: u8 = 16;
const ALL: u8 = CREATE | READ | UPDATE | DELETE | SEARCH;

/// The v2 permission letters, in their required order, with their bits.
const LETTERS: [(char, u8); 5] = [('c', CREATE), ('r', READ), ('u', UPDATE), ('d', DELETE), ('s', SEARCH)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Patient,
    User,
    System,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    context: Context,
    /// A resource type, or `*`.
    resource: String,
    /// Bits of CREATE, READ, UPDATE, DELETE, SEARCH.
    perms: u8,
}

/// The resource scopes a token grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    /// One grant per (context, resource), in the order of first appearance.
    grants: Vec<Grant>,
}

impl Scopes {
    /// Reads a space-separated `scope` claim.
    pub fn parse(text: &str) -> Result<Scopes, String> {
        let mut scopes = Scopes::default();
        for scope in text.split_whitespace() {
            let Some((context, rest)) = scope.split_once('/') else {
                continue; // openid, fhirUser, launch, offline_access, …
            };
            let context = match context {
                "patient" => Context::Patient,
                "user" => Context::User,
                "system" => Context::System,
                _ => continue, // launch/patient, …
            };
            let (resource, perms) = parse_grant(rest).map_err(|e| format!("scope `{scope}`: {e}"))?;
            match scopes.grants.iter_mut().find(|g| g.context == context && g.resource == resource) {
                Some(g) => g.perms |= perms,
                None => scopes.grants.push(Grant { context, resource: resource.to_string(), perms }),
            }
        }
        Ok(scopes)
    }

    /// Whether some scope grants `interaction` on resources of type `res_type`.
    pub fn allows(&self, res_type: &str, interaction: Interaction) -> bool {
        let bit = match interaction {
            Interaction::Create => CREATE,
            Interaction::Read => READ,
            Interaction::Update => UPDATE,
            Interaction::Delete => DELETE,
            Interaction::Search => SEARCH,
        };
        self.grants.iter().any(|g| (g.resource == "*" || g.resource == res_type) && g.perms & bit != 0)
    }

    /// Whether no resource scope was granted.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// The resource scopes in SMART v2 form, space-separated, one per context and
    /// resource (`user/Slot.read user/Slot.write` → `user/Slot.cruds`); other scopes
    /// are left out.
    pub fn as_text(&self) -> String {
        let mut out = String::new();
        for g in &self.grants {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("{}/{}.", g.context, g.resource));
            out.extend(LETTERS.iter().filter(|(_, bit)| g.perms & bit != 0).map(|(c, _)| *c));
        }
        out
    }
}

/// `Type.perms` (after `context/`) → the resource and the permission bits.
fn parse_grant(rest: &str) -> Result<(&str, u8), String> {
    let Some((resource, perms)) = rest.split_once('.') else {
        return Err("expected `context/Type.permissions`, e.g. `user/Appointment.rs` or `system/*.read`".into());
    };
    let is_type = resource.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && resource.chars().all(|c| c.is_ascii_alphanumeric());
    if resource != "*" && !is_type {
        return Err(format!("`{resource}` is not a resource type (such as `Appointment`) nor `*`"));
    }
    if perms.contains('?') {
        return Err("query suffixes (`?param=value`) in scopes are not supported; ask for the scope without it".into());
    }
    let bits = match perms {
        "read" => READ | SEARCH,
        "write" => CREATE | UPDATE | DELETE,
        "*" => ALL,
        _ => v2_permissions(perms)?,
    };
    Ok((resource, bits))
}

/// SMART v2 letters: a non-empty subset of `cruds`, in that order.
fn v2_permissions(perms: &str) -> Result<u8, String> {
    let explain = "permissions are `read`, `write` or `*` (SMART v1), or letters of `cruds` (SMART v2), \
                   each at most once and in the order c, r, u, d, s";
    if perms.is_empty() {
        return Err(format!("no permissions after the `.`; {explain}"));
    }
    let mut bits = 0u8;
    let mut next = 0; // index in LETTERS the next letter may take, at the earliest
    for c in perms.chars() {
        let Some(i) = LETTERS.iter().position(|(l, _)| *l == c) else {
            return Err(format!("`{perms}` is not a permission; {explain}"));
        };
        if i < next {
            return Err(format!("`{perms}` is out of order or repeats a letter; {explain}"));
        }
        bits |= LETTERS[i].1;
        next = i + 1;
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Interaction::*;

    const EVERY: [Interaction; 5] = [Create, Read, Update, Delete, Search];

    fn granted(s: &Scopes, res_type: &str) -> Vec<Interaction> {
        EVERY.into_iter().filter(|i| s.allows(res_type, *i)).collect()
    }

    #[test]
    fn v2_scopes() {
        let s = Scopes::parse("system/Appointment.cruds user/Slot.rs patient/*.r").unwrap();
        assert_eq!(granted(&s, "Appointment"), EVERY.to_vec());
        assert_eq!(granted(&s, "Slot"), vec![Read, Search]);
        assert_eq!(granted(&s, "Patient"), vec![Read]);
        assert_eq!(s.as_text(), "system/Appointment.cruds user/Slot.rs patient/*.r");
        let s = Scopes::parse("user/Appointment.cu user/Invoice.d user/Slot.s").unwrap();
        assert_eq!(granted(&s, "Appointment"), vec![Create, Update]);
        assert_eq!(granted(&s, "Invoice"), vec![Delete]);
        assert_eq!(granted(&s, "Slot"), vec![Search]);
    }

    #[test]
    fn v1_scopes() {
        let s = Scopes::parse("user/Appointment.read patient/Slot.write system/Invoice.*").unwrap();
        assert_eq!(granted(&s, "Appointment"), vec![Read, Search]);
        assert_eq!(granted(&s, "Slot"), vec![Create, Update, Delete]);
        assert_eq!(granted(&s, "Invoice"), EVERY.to_vec());
        assert_eq!(s.as_text(), "user/Appointment.rs patient/Slot.cud system/Invoice.cruds");
        let s = Scopes::parse("user/Slot.read user/Slot.write").unwrap();
        assert_eq!(s.as_text(), "user/Slot.cruds");
    }

    #[test]
    fn wildcard() {
        let s = Scopes::parse("user/*.cruds").unwrap();
        for t in ["Appointment", "Slot", "Patient", "AuditEvent"] {
            assert_eq!(granted(&s, t), EVERY.to_vec());
        }
        let s = Scopes::parse("patient/*.rs patient/Appointment.cu patient/AppointmentResponse.c").unwrap();
        assert_eq!(granted(&s, "Appointment"), vec![Create, Read, Update, Search]);
        assert_eq!(granted(&s, "AppointmentResponse"), vec![Create, Read, Search]);
        assert_eq!(granted(&s, "Slot"), vec![Read, Search]);
    }

    #[test]
    fn other_scopes_are_ignored() {
        let s = Scopes::parse("openid fhirUser launch launch/patient offline_access online_access email").unwrap();
        assert!(s.is_empty());
        assert!(!s.allows("Patient", Read));
        assert_eq!(s.as_text(), "");
        let s = Scopes::parse("  openid   user/Slot.rs\tlaunch/patient ").unwrap();
        assert_eq!(s.as_text(), "user/Slot.rs");
        assert!(Scopes::parse("").unwrap().is_empty());
    }

    #[test]
    fn ordering_and_letters() {
        for bad in ["user/Slot.rc", "user/Slot.sr", "user/Slot.rr", "user/Slot.cdu", "user/Slot.x", "user/Slot.rx"] {
            let e = Scopes::parse(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("c, r, u, d, s"), "{bad}: {e}");
        }
        let e = Scopes::parse("user/Slot.").unwrap_err();
        assert!(e.contains("no permissions"), "{e}");
        for bad in ["user/Slot", "user/slot.rs", "user/.rs", "system/Appoint-ment.r", "user/**.rs"] {
            assert!(Scopes::parse(bad).is_err(), "{bad}");
        }
        // One bad scope spoils the claim.
        assert!(Scopes::parse("user/Slot.rs user/Slot.READ").is_err());
    }

    #[test]
    fn query_suffix_refused() {
        let e = Scopes::parse("patient/Observation.rs?category=laboratory").unwrap_err();
        assert!(e.contains("query suffixes"), "{e}");
    }
}
