//! The layers keep their direction (README, *Layout*): `src/store/` persists and
//! imports no domain module (`agenda`, `booking`, `billing`, `catalog`, `messaging`,
//! `mappings`) nor the API; `src/fhir/` (parsing, checking, the CapabilityStatement)
//! imports nothing of the store. The domain registers its rules with the store as
//! write hooks instead (`booking::hooks`), and its transaction scripts are free
//! functions taking the store first: no `impl Store` block outside `src/store/`.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each line of the Rust files under `folder` (but not under `except`) for which
/// `hit` holds, as `file:line: text`.
fn lines_where(folder: &str, except: Option<&str>, hit: impl Fn(&str) -> bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join(folder), &mut files);
    let mut out = Vec::new();
    for file in files.iter().filter(|f| except.is_none_or(|e| !f.starts_with(root.join(e)))) {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            if hit(line) {
                out.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    out
}

/// Each line of code (comments dropped) of `folder` that names one of `forbidden`.
fn offending(folder: &str, forbidden: &[&str]) -> Vec<String> {
    lines_where(folder, None, |line| {
        let code = line.split("//").next().unwrap_or_default();
        forbidden.iter().any(|f| code.contains(f))
    })
}

#[test]
fn the_store_imports_no_domain_module() {
    let domain = ["agenda", "booking", "billing", "catalog", "messaging", "mappings", "demo", "api"];
    let forbidden: Vec<String> = domain.iter().map(|m| format!("crate::{m}")).collect();
    let forbidden: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let found = offending("src/store", &forbidden);
    assert!(found.is_empty(), "src/store imports the domain:\n{}", found.join("\n"));
}

#[test]
fn fhir_imports_nothing_of_the_store() {
    let found = offending("src/fhir", &["crate::store"]);
    assert!(found.is_empty(), "src/fhir imports the store:\n{}", found.join("\n"));
}

/// The store's one type gets its methods in `src/store/` only: a domain's
/// transaction script is a free function taking `store: &Store` first.
#[test]
fn only_the_store_implements_store() {
    let impl_store = |line: &str| {
        let rest = line.trim_start().strip_prefix("impl Store");
        rest.is_some_and(|r| !r.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    };
    let found = lines_where("src", Some("src/store"), impl_store);
    assert!(
        found.is_empty(),
        "impl Store outside src/store (write free functions taking `store: &Store` first):\n{}",
        found.join("\n")
    );
}
