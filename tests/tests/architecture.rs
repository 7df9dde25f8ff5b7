//! The shape of the source tree (issue 11), checked so it stays that way: no import cycles
//! between modules, no `#[path]` includes, and no source file over ~600 lines of non-test code.
//! Reads the sources as text; needs no lab.
//!
//! A cycle is two modules, neither inside the other, that reach each other through `use`
//! (`crate::`, `super::`, `self::` paths; the first `#[cfg(test)]` of a file ends what counts).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Crates whose modules are checked.
const CRATES: [&str; 5] = ["crds", "shell", "controller", "speaker", "kubectl-ferrolb"];

/// Most lines of non-test code in one file (the "~600"). Tests beside the code
/// (`x/tests.rs`, `#[cfg(test)] mod` files) do not count.
const MAX_LINES: usize = 650;

type ModPath = Vec<String>;

struct Module {
    file: PathBuf,
    /// Declared `#[cfg(test)]` by its parent, or inside a test module.
    test_only: bool,
    /// The text before the file's first `#[cfg(test)]`.
    code: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` -> [a, b]; `src/lib.rs`, `src/main.rs` -> [].
fn mod_path(src: &Path, file: &Path) -> ModPath {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: ModPath = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Names of the child modules a file declares under `#[cfg(test)]`.
fn test_children(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut cfg_test = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("#[cfg(test)]") {
            cfg_test = true;
            continue;
        }
        if cfg_test {
            let decl = line
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub(super) ")
                .trim_start_matches("pub ");
            if let Some(name) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                out.insert(name.trim().to_string());
            }
        }
        cfg_test = line.starts_with("#[");
    }
    out
}

fn modules(krate: &str) -> BTreeMap<ModPath, Module> {
    let src = repo().join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let texts: BTreeMap<ModPath, (PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("readable source");
            (mod_path(&src, &f), (f, text))
        })
        .collect();
    let mut test_only: BTreeSet<ModPath> = BTreeSet::new();
    for (path, (_, text)) in &texts {
        for child in test_children(text) {
            let mut p = path.clone();
            p.push(child);
            test_only.insert(p);
        }
    }
    texts
        .into_iter()
        .map(|(path, (file, text))| {
            let test = (1..=path.len()).any(|n| test_only.contains(&path[..n]))
                || path.iter().any(|p| p == "tests");
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            let m = Module {
                file,
                test_only: test,
                code,
            };
            (path, m)
        })
        .collect()
}

/// The module a `use` path names (its longest prefix that is a module), seen from `from`.
fn target(from: &ModPath, path: &str, mods: &BTreeMap<ModPath, Module>) -> Option<ModPath> {
    let mut parts = path.split("::").peekable();
    let mut base: ModPath = match *parts.peek()? {
        "crate" => Vec::new(),
        "super" | "self" => from.clone(),
        _ => return None,
    };
    while let Some(p) = parts.peek() {
        match *p {
            "crate" | "self" => {}
            "super" => {
                base.pop();
            }
            _ => break,
        }
        parts.next();
    }
    base.extend(parts.map(|p| {
        p.trim_matches(|c: char| !c.is_alphanumeric() && c != '_')
            .to_string()
    }));
    while !base.is_empty() && !mods.contains_key(&base) {
        base.pop();
    }
    Some(base)
}

/// The paths one `use` statement names: `a::{b::C, d}` -> `a::b::C`, `a::d` (one level of
/// braces is enough to find the module).
fn use_paths(stmt: &str) -> Vec<String> {
    let stmt: String = stmt.chars().filter(|c| !c.is_whitespace()).collect();
    match stmt.split_once('{') {
        None => vec![stmt],
        Some((prefix, rest)) => rest
            .split(',')
            .map(|item| format!("{prefix}{}", item.trim_matches(|c| c == '{' || c == '}')))
            .collect(),
    }
}

/// `use` edges between non-test modules, neither inside the other.
fn edges(mods: &BTreeMap<ModPath, Module>) -> BTreeSet<(ModPath, ModPath)> {
    let inside = |a: &ModPath, b: &ModPath| b.starts_with(a) || a.starts_with(b);
    let mut out = BTreeSet::new();
    for (from, m) in mods.iter().filter(|(_, m)| !m.test_only) {
        for stmt in m.code.split("use ").skip(1) {
            for path in use_paths(stmt.split(';').next().unwrap_or("")) {
                if let Some(to) = target(from, &path, mods)
                    && !mods[&to].test_only
                    && !inside(from, &to)
                {
                    out.insert((from.clone(), to));
                }
            }
        }
    }
    out
}

/// Pairs of modules that reach each other (through any chain of edges).
fn cycles(edges: &BTreeSet<(ModPath, ModPath)>) -> Vec<(ModPath, ModPath)> {
    let mut next: BTreeMap<&ModPath, Vec<&ModPath>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
    }
    let reach = |from: &ModPath| {
        let mut seen: BTreeSet<&ModPath> = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(m) = todo.pop() {
            for n in next.get(m).into_iter().flatten() {
                if seen.insert(n) {
                    todo.push(n);
                }
            }
        }
        seen.into_iter().cloned().collect::<BTreeSet<ModPath>>()
    };
    let mut out = Vec::new();
    for (a, b) in edges {
        if reach(b).contains(a) {
            out.push((a.clone(), b.clone()));
        }
    }
    out
}

#[test]
fn no_import_cycles_between_modules() {
    let mut found = Vec::new();
    for krate in CRATES {
        let mods = modules(krate);
        assert!(mods.len() > 1, "{krate}: no modules found");
        for (a, b) in cycles(&edges(&mods)) {
            found.push(format!(
                "{krate}: {} -> {} -> ...",
                a.join("::"),
                b.join("::")
            ));
        }
    }
    assert!(
        found.is_empty(),
        "modules that import each other:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_sees_a_cycle() {
    // The codec <-> route cycle this issue removed, as two files would have it.
    let module = |file: &str, code: &str| Module {
        file: file.into(),
        test_only: false,
        code: code.into(),
    };
    let p = |s: &str| s.split("::").map(String::from).collect::<ModPath>();
    let mods = BTreeMap::from([
        (p("bgp"), module("bgp/mod.rs", "mod codec; mod route;")),
        (
            p("bgp::codec"),
            module("bgp/codec.rs", "use super::route::Prefix;"),
        ),
        (
            p("bgp::route"),
            module("bgp/route.rs", "use crate::bgp::codec::{Update, Message};"),
        ),
    ]);
    assert_eq!(cycles(&edges(&mods)).len(), 2);
}

#[test]
fn no_path_includes() {
    for krate in CRATES {
        for (path, m) in modules(krate) {
            let text = std::fs::read_to_string(&m.file).expect("readable");
            assert!(
                !text.contains("#[path"),
                "{krate}::{}: a #[path] include; share code through a crate",
                path.join("::")
            );
        }
    }
}

#[test]
fn no_source_file_is_too_long() {
    let mut long = Vec::new();
    for krate in CRATES {
        for m in modules(krate).values().filter(|m| !m.test_only) {
            let lines = m.code.lines().count();
            if lines > MAX_LINES {
                long.push(format!(
                    "{}: {lines} lines of non-test code",
                    m.file.display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split along a seam):\n{}",
        long.join("\n")
    );
}
