//! Embeds the official R4 material and cupola's profiles: writes `embedded.rs`
//! (into `OUT_DIR`) with `include_str!` of every file, so the binary reads no
//! files at run time.

use std::{
    env, fs,
    path::{Path, PathBuf},
};

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn table(name: &str, files: &[PathBuf]) -> String {
    let mut out = format!("pub(crate) const {name}: &[(&str, &str)] = &[\n");
    for f in files {
        let file_name = f.file_name().and_then(|n| n.to_str()).expect("file names are UTF-8");
        out.push_str(&format!("    ({file_name:?}, include_str!({:?})),\n", f.display().to_string()));
    }
    out.push_str("];\n");
    out
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let profiles = manifest.join("../../profiles").canonicalize().expect("profiles/ folder next to crates/");
    let r4 = profiles.join("r4");
    let definitions = r4.join("definitions");
    let cupola = profiles.join("cupola");
    let schema = r4.join("fhir.schema.json");

    let mut out = format!("pub(crate) const SCHEMA: &str = include_str!({:?});\n", schema.display().to_string());
    out.push_str(&table("DEFINITIONS", &json_files(&definitions)));
    let cupola_files = if cupola.is_dir() { json_files(&cupola) } else { Vec::new() };
    out.push_str(&table("CUPOLA_PROFILES", &cupola_files));

    let dest = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("embedded.rs");
    fs::write(&dest, out).expect("write embedded.rs");
    for dir in [&definitions, &cupola, &schema] {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
