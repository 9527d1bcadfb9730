//! The module graph of each crate (`xtask/src`, `xtask/ops/src`,
//! `xtask/bench/src`, `xtask/common/src`, `backend/src`), read from the code:
//! no file imports a module that (through others) imports it back, and no
//! command module is imported by anything but `main.rs` or its own folder's
//! dispatcher. Commands sit above the mechanics they use; a newcomer reads
//! the tree top down.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// The files that are commands (each has a `run`): nothing but `main.rs`
/// and the `mod.rs` of their own folder may import them.
const XTASK_COMMANDS: &[&str] = &["release/mod.rs", "release/version.rs"];

/// The operations tool's commands.
const OPS_COMMANDS: &[&str] = &[
    "window/mod.rs",
    "window/runbook.rs",
    "window/job.rs",
    "window/status.rs",
    "window/adopt.rs",
    "window/backup.rs",
    "window/restore.rs",
    "migrations/mod.rs",
    "copy/mod.rs",
];

/// The benchmarks' commands.
const BENCH_COMMANDS: &[&str] = &["copy.rs", "api.rs", "backfill.rs"];

#[test]
fn xtask_modules_form_no_cycle_and_commands_are_leaves() {
    for (krate, commands) in [
        ("xtask", XTASK_COMMANDS),
        ("xtask/ops", OPS_COMMANDS),
        ("xtask/bench", BENCH_COMMANDS),
        ("xtask/common", &[][..]),
    ] {
        commands_are_leaves(krate, commands);
    }
}

fn commands_are_leaves(krate: &str, commands: &[&str]) {
    let graph = Graph::read(&src(krate));
    assert_eq!(
        graph.cycles(),
        Vec::<Vec<String>>::new(),
        "import cycles in {krate}"
    );
    // Folders too: a file of one folder importing a file of another that
    // (through any file) imports back runs up the layers.
    assert_eq!(
        graph.rooms().cycles(),
        Vec::<Vec<String>>::new(),
        "folders of {krate} that import each other: an arrow runs back up"
    );
    let mut upward = Vec::new();
    for (from, tos) in &graph.edges {
        for to in tos.iter().filter(|t| commands.contains(&t.as_str())) {
            let own_dispatcher =
                Path::new(to).parent() == Path::new(from).parent() && from.ends_with("mod.rs");
            if from != "main.rs" && from != "lib.rs" && !own_dispatcher {
                upward.push(format!("{krate}: {from} imports the command {to}"));
            }
        }
    }
    assert_eq!(upward, Vec::<String>::new());
}

#[test]
fn backend_modules_form_no_cycle() {
    let graph = Graph::read(&src("backend"));
    assert_eq!(graph.cycles(), Vec::<Vec<String>>::new(), "import cycles");
}

#[test]
fn no_source_file_is_over_500_lines_of_code() {
    let mut long = Vec::new();
    for krate in [
        "xtask",
        "xtask/ops",
        "xtask/bench",
        "xtask/common",
        "backend",
        "backend/contract",
    ] {
        for (name, text) in files(&src(krate)) {
            // Unit tests at the end of a file do not count.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let lines = code.lines().count();
            if lines > 500 {
                long.push(format!("{krate}/src/{name}: {lines} lines"));
            }
        }
    }
    assert_eq!(long, Vec::<String>::new(), "split these by concern");
}

fn src(krate: &str) -> PathBuf {
    crate::support::repo_root().join(krate).join("src")
}

/// Every `.rs` file below `root`, by its path relative to it.
fn files(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("reading the source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path.strip_prefix(root).expect("below root");
                let text = fs::read_to_string(&path).expect("a source file");
                out.insert(name.to_string_lossy().replace('\\', "/"), text);
            }
        }
    }
    out
}

/// File → files it imports (by `use` trees and inline `crate::`/`super::` paths).
struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn read(root: &Path) -> Graph {
        let sources = files(root);
        let modules: BTreeMap<Vec<String>, String> = sources
            .keys()
            .map(|file| (module_path(file), file.clone()))
            .collect();
        let mut edges = BTreeMap::new();
        for (file, text) in &sources {
            let here = module_path(file);
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let targets: BTreeSet<String> = imported_paths(code)
                .into_iter()
                .filter_map(|path| resolve(&modules, &here, &path))
                .filter_map(|path| deepest_module(&modules, &path))
                .filter(|target| target != file)
                .collect();
            edges.insert(file.clone(), targets);
        }
        Graph { edges }
    }

    /// The same imports between the top-level rooms: a folder (`window`)
    /// or a file beside them (`config.rs`).
    fn rooms(&self) -> Graph {
        let room = |file: &str| file.split('/').next().unwrap_or(file).to_owned();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, tos) in &self.edges {
            let entry = edges.entry(room(from)).or_default();
            entry.extend(tos.iter().map(|to| room(to)).filter(|to| *to != room(from)));
        }
        Graph { edges }
    }

    /// Strongly connected components of more than one file.
    fn cycles(&self) -> Vec<Vec<String>> {
        let mut cycles = Vec::new();
        let mut seen = BTreeSet::new();
        for start in self.edges.keys() {
            if seen.contains(start) {
                continue;
            }
            let forward = self.reachable(start);
            let component: Vec<String> = forward
                .iter()
                .filter(|other| self.reachable(other).contains(start))
                .cloned()
                .collect();
            seen.extend(component.iter().cloned());
            if component.len() > 1 {
                cycles.push(component);
            }
        }
        cycles
    }

    fn reachable(&self, from: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::from([from.to_owned()]);
        let mut todo = vec![from.to_owned()];
        while let Some(file) = todo.pop() {
            for next in self.edges.get(&file).into_iter().flatten() {
                if found.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        found
    }
}

/// `window/engine.rs` → `[window, engine]`; `window/mod.rs` → `[window]`.
fn module_path(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "main" | "lib")
    ) {
        parts.pop();
    }
    parts
}

/// Every `crate::…`, `super::…` and relative path in `code`'s `use`
/// statements (trees expanded), and every inline `crate::…`/`super::…` path.
fn imported_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for line_start in code.match_indices("use ").map(|(at, _)| at) {
        let before = &code[..line_start];
        let line_head = before.rsplit('\n').next().unwrap_or_default().trim();
        if !matches!(line_head, "" | "pub" | "pub(crate)" | "pub(super)") {
            continue;
        }
        let tree = code[line_start + 4..].split(';').next().unwrap_or_default();
        expand(&strip_comments(tree), Vec::new(), &mut paths);
    }
    for prefix in ["crate::", "super::"] {
        for (at, _) in code.match_indices(prefix) {
            let tail: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let path: Vec<String> = tail
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            // `super::{…}` opens a `use` tree, read above.
            if path.len() > 1 {
                paths.push(path);
            }
        }
    }
    paths
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let mut base = prefix;
        base.extend(
            tree[..open]
                .split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        for item in split_top_level(inner) {
            expand(item, base.clone(), out);
        }
    } else {
        let name = tree.split(" as ").next().unwrap_or(tree);
        let mut path = prefix;
        path.extend(
            name.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "self")
                .map(String::from),
        );
        out.push(path);
    }
}

fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// A path as seen from `here` (the module of a file), made absolute; None
/// for paths into other crates.
fn resolve(
    modules: &BTreeMap<Vec<String>, String>,
    here: &[String],
    path: &[String],
) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "super" => {
            let mut base = here.to_vec();
            base.pop();
            let mut rest = rest;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            Some(base)
        }
        // `use child::Item` in a module that declares `mod child`.
        _ => {
            let mut child = here.to_vec();
            child.push(first.clone());
            modules.contains_key(&child).then(|| {
                child.extend(rest.iter().cloned());
                child
            })
        }
    }
}

/// The file of the longest module prefix of `path`.
fn deepest_module(modules: &BTreeMap<Vec<String>, String>, path: &[String]) -> Option<String> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).cloned())
}

/// `cargo xtask migrate` builds the operations tool alone; `cargo test
/// --workspace` builds it with everything else. Each crate of its graph must
/// get the same features both ways, or `make check` compiles it (and all
/// that depends on it) twice: the list in xtask/ops/Cargo.toml requests
/// what the rest of the workspace turns on.
#[test]
fn the_operations_tool_shares_the_workspace_features() {
    let alone = features(&["-p", "secrets-ops", "-e", "normal,build"]);
    let workspace = features(&["--workspace", "-e", "normal,build,dev"]);
    let differ: Vec<String> = alone
        .iter()
        .filter(|(krate, set)| workspace.get(*krate) != Some(set))
        .map(|(krate, set)| {
            let whole = workspace.get(krate).cloned().unwrap_or_default();
            format!("{krate}: alone {set:?}, in the workspace {whole:?}")
        })
        .collect();
    assert_eq!(
        differ,
        Vec::<String>::new(),
        "request the workspace's features of these crates in xtask/ops/Cargo.toml"
    );
}

/// `cargo tree`'s crates (name and version) with their features.
fn features(selection: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .arg("tree")
        .args(selection)
        .args(["--offline", "--prefix", "none", "--format", "{p}|{f}"])
        .current_dir(crate::support::repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut crates: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line = line.replace(" (*)", "");
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        let name = package
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        crates.entry(name).or_default().extend(
            features
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(String::from),
        );
    }
    crates
}
