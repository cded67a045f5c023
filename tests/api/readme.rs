//! The README as a reader meets it: its first screen holds the two commands, its
//! layout table names what is in the tree, and every `sh` block marked
//! `<!-- run -->` (in README.md, then in each file of docs/) runs, in order, with
//! bash, curl and jq, against a gateway on the demo data, with the tokens
//! `serve --demo` prints under the names its output gives them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{Backend, TestApp};

const MARK: &str = "<!-- run -->";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `sh` blocks marked `<!-- run -->` of a Markdown text, in order.
fn marked_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() != MARK {
            continue;
        }
        let fence = lines.next().unwrap_or_default();
        assert_eq!(fence.trim(), "```sh", "a {MARK} mark must stand right above a ```sh block");
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        blocks.push(body.join("\n"));
    }
    blocks
}

/// Runs `blocks` in order, as one reader pasting them into one shell: each in
/// `bash -euo pipefail`, in `dir`, with the variables the blocks before it set.
/// Panics with the block and its output at the first that fails.
fn run_in_order(file: &str, blocks: &[String], env: &[(String, String)], dir: &Path) {
    let state = dir.join(".tour-state.sh");
    for (i, block) in blocks.iter().enumerate() {
        let script = format!(
            "set -a\nif [ -f {state} ]; then source {state}; fi\n{block}\nexport -p > {state}\n",
            state = state.display()
        );
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{file}: block {} of {} failed ({}):\n```sh\n{block}\n```\nstdout:\n{}\nstderr:\n{}",
            i + 1,
            blocks.len(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What the blocks find in their shell: the FHIR base as `B`, and each demo token
/// under the variable `serve --demo` prints it as (`ADMIN`, `BOOKING`, …).
fn tour_env(app: &TestApp) -> Vec<(String, String)> {
    let mut env = vec![("B".to_string(), app.base.clone())];
    for t in cupola::demo::tokens(&app.auth).expect("demo tokens") {
        env.push((t.var.to_string(), t.token));
    }
    env
}

fn tools_present() {
    for tool in ["bash", "curl", "jq"] {
        let found = Command::new(tool).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
        assert!(found, "the README's tour needs `{tool}` (`.ci/run` installs jq when it is missing)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_and_the_docs_examples_run_against_the_demo_gateway() {
    tools_present();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.demo = true).await;
    let env = tour_env(&app);
    let mut files = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| format!("docs/{}", e.expect("entry").file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let readme_blocks = marked_blocks(&read("README.md")).len();
    assert!(readme_blocks >= 6, "the tour's curl blocks are marked {MARK}: {readme_blocks}");
    for file in files {
        let blocks = marked_blocks(&read(&file));
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            let dir = tempfile::tempdir().expect("dir");
            run_in_order(&file, &blocks, &env, dir.path());
        })
        .await
        .expect("the blocks ran");
    }
}

#[test]
fn the_readme_opens_with_the_two_commands() {
    let readme = read("README.md");
    let first_screen: String = readme.lines().take(15).collect::<Vec<_>>().join("\n");
    for command in ["cargo run -- serve --demo", "cargo test --workspace"] {
        assert!(first_screen.contains(command), "README's first screen lacks `{command}`:\n{first_screen}");
    }
}

/// The first column's paths of the README's layout table.
fn layout_paths(readme: &str) -> Vec<String> {
    let table = readme.split("## Layout").nth(1).expect("a Layout section");
    let table = table.split("\n## ").next().unwrap_or_default();
    let mut paths = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap_or_default();
        paths.extend(first.split('`').skip(1).step_by(2).map(|p| p.trim_end_matches('/').to_string()));
    }
    paths
}

#[test]
fn the_readme_layout_names_what_is_in_the_tree() {
    let paths = layout_paths(&read("README.md"));
    for p in &paths {
        assert!(repo().join(p).exists(), "README's layout names `{p}`, which is not in the tree");
    }
    for top in ["src", "crates", "tests"] {
        for entry in std::fs::read_dir(repo().join(top)).expect("dir") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_dir() {
                let p = format!("{top}/{}", entry.file_name().to_string_lossy());
                assert!(paths.contains(&p), "README's layout does not list `{p}/`");
            }
        }
    }
}

#[test]
fn the_docs_links_lead_somewhere() {
    let mut files = vec![PathBuf::from("README.md"), PathBuf::from("BENCHMARKS.md")];
    for dir in ["docs", "docs/benchmarks"] {
        for e in std::fs::read_dir(repo().join(dir)).expect("dir") {
            let name = e.expect("entry").file_name().to_string_lossy().to_string();
            if name.ends_with(".md") {
                files.push(Path::new(dir).join(name));
            }
        }
    }
    for file in files {
        let text = read(&file.to_string_lossy());
        let here = repo().join(&file).parent().expect("dir").to_path_buf();
        for link in text.split("](").skip(1).filter_map(|s| s.split(')').next()) {
            let target = link.split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            assert!(here.join(target).exists(), "{}: the link ({link}) leads nowhere", file.display());
        }
    }
}
