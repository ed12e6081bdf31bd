//! The library's modules import one way (issue 13): no module reaches, directly or through
//! others, back into a module that imports it. Read from the sources, so that a new
//! `use crate::…` that closes a cycle fails here, with the files that make each edge.
//!
//! An edge `a → b` is any `crate::b` path (in a `use`, a grouped `use crate::{b, …}`, or an
//! inline path) in a file of top-level module `a`, outside `#[cfg(test)]` items (inline, or
//! files declared `#[cfg(test)] mod name;`) and outside comments. Submodules count as their top-level module (`redshift/loader.rs` is
//! `redshift`), so a cycle inside one directory is allowed; across directories it is not.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` items: an inline
/// module or function is cut from the attribute to its matching closing brace (wherever it
/// sits in the file), a `#[cfg(test)] mod name;` declaration up to its `;`.
fn code(text: &str) -> String {
    let uncommented: String =
        text.lines().map(|line| line.find("//").map_or(line, |i| &line[..i])).collect::<Vec<_>>().join("\n");
    let mut out = String::with_capacity(uncommented.len());
    let mut rest = uncommented.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = match (item.find('{'), item.find(';')) {
            (Some(open), semi) if semi.is_none_or(|s| open < s) => {
                let mut depth = 0;
                let mut end = item.len();
                for (i, c) in item[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (_, Some(semi)) => semi + 1,
            _ => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Files that are modules declared `#[cfg(test)] mod name;` (`name.rs` beside the declaring
/// file, or `name/mod.rs`): test code, outside the graph.
fn test_only_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut test_only = BTreeSet::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs") => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        let mut rest = text.as_str();
        while let Some(at) = rest.find("#[cfg(test)]") {
            rest = &rest[at + "#[cfg(test)]".len()..];
            let declaration = rest.trim_start();
            if let Some(name) = declaration.strip_prefix("mod ").and_then(|d| d.split_once(';')).map(|(n, _)| n.trim())
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            {
                test_only.insert(dir.join(format!("{name}.rs")));
                test_only.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    test_only
}

/// The first path segment of every `crate::` path in `code`.
fn imported_modules(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::X, b, c::{…}}`: the first segment of each top-level element.
            let (mut depth, mut start) = (1, 0);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        found.insert(ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
                if depth == 0 {
                    found.insert(ident(&group[start..j]));
                    break;
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.remove("");
    found
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let test_only = test_only_files(&files);
    let mut graph = Graph::new();
    for file in files.into_iter().filter(|f| !test_only.contains(f)) {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let entry = graph.entry(module.clone()).or_default();
        for imported in imported_modules(&code(&fs::read_to_string(&file).unwrap())) {
            if imported != module {
                entry.entry(imported).or_default().insert(rel.clone());
            }
        }
    }
    graph
}

/// One cycle through `start`, if there is one (depth-first search).
fn cycle_through(graph: &Graph, start: &str) -> Option<Vec<String>> {
    fn walk(graph: &Graph, node: &str, start: &str, path: &mut Vec<String>, seen: &mut BTreeSet<String>) -> bool {
        for next in graph.get(node).into_iter().flat_map(|edges| edges.keys()) {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_library_has_no_import_cycle() {
    let graph = graph();
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_through(&graph, m))
        .map(|cycle| {
            let mut shown = String::new();
            for (i, from) in cycle.iter().enumerate() {
                let to = &cycle[(i + 1) % cycle.len()];
                shown.push_str(&format!("\n  {from} → {to} in {:?}", graph[from][to]));
            }
            shown
        })
        .collect();
    assert!(cycles.is_empty(), "import cycles in shared/src:{}", cycles.join("\n"));
}

#[test]
fn the_reader_sees_grouped_and_inline_paths() {
    let code = code(
        "use crate::{batch::X, config::{A, B}, value};\nfn f() { crate::temporal::now(); }\n// crate::ignored\n#[cfg(test)]\nmod tests { use crate::plan; }",
    );
    let found: Vec<String> = imported_modules(&code).into_iter().collect();
    assert_eq!(found, ["batch", "config", "temporal", "value"]);
}

#[test]
fn code_after_a_test_module_in_the_middle_of_a_file_is_read() {
    let code = code(
        "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n    fn f() { if x { crate::c::g(); } }\n}\nfn h() { crate::d::k(); }\n#[cfg(test)]\nmod scripted;\nuse crate::e;",
    );
    let found: Vec<String> = imported_modules(&code).into_iter().collect();
    assert_eq!(found, ["a", "d", "e"]);
}

#[test]
fn a_cycle_is_found() {
    let mut graph = Graph::new();
    graph.entry("a".into()).or_default().entry("b".into()).or_default().insert("a.rs".into());
    graph.entry("b".into()).or_default().entry("c".into()).or_default().insert("b.rs".into());
    graph.entry("c".into()).or_default().entry("a".into()).or_default().insert("c.rs".into());
    assert_eq!(cycle_through(&graph, "a"), Some(vec!["a".into(), "b".into(), "c".into()]));
    graph.get_mut("c").unwrap().clear();
    assert_eq!(cycle_through(&graph, "a"), None);
}
