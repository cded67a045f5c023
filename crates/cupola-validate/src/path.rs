//! FHIRPath-style expressions: building them while walking, and converting
//! JSON-pointer instance paths into them.

/// `parent.name`, with a leading `_` (primitive extension) dropped.
pub(crate) fn child(parent: &str, name: &str) -> String {
    let name = name.strip_prefix('_').unwrap_or(name);
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `expr[index]`.
pub(crate) fn indexed(expr: &str, index: usize) -> String {
    format!("{expr}[{index}]")
}

/// Converts a JSON pointer relative to a resource (`/name/0/family`) into a
/// FHIRPath expression below `base` (`Patient.name[0].family`).
pub(crate) fn pointer_to_fhirpath(base: &str, pointer: &str) -> String {
    let mut out = base.to_string();
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&segment);
            out.push(']');
        } else {
            out = child(&out, &segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_fhirpath() {
        assert_eq!(pointer_to_fhirpath("Patient", ""), "Patient");
        assert_eq!(pointer_to_fhirpath("Patient", "/name/0/family"), "Patient.name[0].family");
        assert_eq!(pointer_to_fhirpath("Patient", "/_birthDate/extension/1/url"), "Patient.birthDate.extension[1].url");
        assert_eq!(pointer_to_fhirpath("Bundle.entry[2].resource", "/status"), "Bundle.entry[2].resource.status");
        assert_eq!(pointer_to_fhirpath("X", "/a~1b"), "X.a/b");
    }
}
