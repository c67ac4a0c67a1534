//! The modules form layers: each may use the ones below it, never one above
//! it, so there is no import cycle and `config` is plain data that anything
//! can read. Checked over the `crate::…` paths (and `super::` paths that reach
//! the crate root) of every file under `src/`, tests included; `lib.rs`,
//! `main.rs`, the command line (`cli/`) and other binaries (`bin/`) sit above them all.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// Lowest first. A new module gets its place here, or this test fails.
const LAYERS: [&str; 12] = [
    "domain",
    "config",
    "providers",
    "store",
    "publish",
    "telemetry",
    "processing",
    "admin",
    "ingress",
    "server",
    "shutdown",
    "app",
];

#[test]
fn no_module_imports_a_module_above_it() {
    let mut violations = BTreeSet::new();
    for file in rust_files(Path::new("src")) {
        let relative = file.strip_prefix("src").expect("files are under src");
        let Some(module) = module_of(relative) else { continue };
        let rank = layer(&module).unwrap_or_else(|| panic!("{}: module {module} is not in LAYERS", file.display()));
        let text = std::fs::read_to_string(&file).expect("source files are readable");
        for used in crate_modules(&code_only(&text)) {
            let problem = match layer(&used) {
                Some(other) if other > rank => format!("{module} uses {used}"),
                Some(_) => continue,
                None => format!("{used} is not a module in LAYERS"),
            };
            violations.insert(format!("{}: {problem}", file.display()));
        }
    }
    let violations: Vec<String> = violations.into_iter().collect();
    assert!(violations.is_empty(), "imports against the layer order:\n{}", violations.join("\n"));
}

/// Every file stays small enough to read in one sitting.
#[test]
fn no_source_file_is_over_500_lines() {
    let long: Vec<String> = rust_files(Path::new("src"))
        .into_iter()
        .map(|file| (std::fs::read_to_string(&file).expect("source files are readable").lines().count(), file))
        .filter(|(lines, _)| *lines > 500)
        .map(|(lines, file)| format!("{}: {lines} lines", file.display()))
        .collect();
    assert!(long.is_empty(), "files over 500 lines:\n{}", long.join("\n"));
}

#[test]
fn the_layer_check_reads_grouped_nested_and_inline_paths() {
    let text = "use crate::{\n    config::Config,\n    store::{Store, keys::{Keys}},\n};\nlet x = crate::app::Role;\n";
    assert_eq!(crate_modules(text), ["config", "store", "app"]);
    assert_eq!(crate_modules("use super::Thing; crate::domain::rfc3339(x)"), ["domain"]);
    assert_eq!(code_only("// crate::app\n/// [`crate::app`]\nlet a = 1; // crate::app\n"), "\n\nlet a = 1; \n");
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a readable entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level module a file belongs to; `None` for the crate roots and
/// the binary's modules.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.iter().next()?.to_str().expect("UTF-8 file names");
    let top = first.trim_end_matches(".rs");
    // `bin/` holds other binaries (the benchmark's bare handler): like
    // `main`, they sit above the library.
    (!matches!(top, "lib" | "main" | "cli" | "bin")).then(|| top.to_owned())
}

/// The text without comments (doc links name modules without using them).
fn code_only(text: &str) -> String {
    text.lines().map(|line| line.find("//").map_or(line, |i| &line[..i])).collect::<Vec<_>>().join("\n") + "\n"
}

/// The top-level modules named by `crate::` paths.
fn crate_modules(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => found.extend(group_heads(group)),
            None => found.push(ident(rest).to_owned()),
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// The first segment of each path in a `{a::b, c::{d, e}}` group.
fn group_heads(group: &str) -> Vec<String> {
    let (mut heads, mut depth, mut start) = (Vec::new(), 0, true);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                heads.push(ident(&group[i..]).to_owned());
                start = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident(text: &str) -> &str {
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(text.len());
    &text[..end]
}
