//! The structure of the code: no import cycle between files, and no two
//! top-level modules that import each other apart from the shared `node`.
//!
//! Each actor publishes what others read in a module of its own that
//! imports nothing of the actor, so `Node` sits below every actor and no
//! two files import each other, directly or around a circle. The check is
//! here, in the repository: every `crate::`, `super::` and `self::` path of
//! a crate's `src/` (in `use` lines and in code, `{…}` groups expanded) is
//! an edge from its file to the file of the deepest module the path names,
//! and so is a `use child::…` of a child module (a parent's re-exports;
//! a file's `#[cfg(test)]` tests are left out); a strongly connected
//! component of more than one file is a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's module files: module path (`["http", "client_ip"]`) → file.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut p = prefix.to_vec();
                match stem {
                    "lib" if prefix.is_empty() => {}
                    "main" if prefix.is_empty() => continue, // a crate of its own (it says `diem::`)
                    "mod" => {}
                    _ => p.push(stem.to_owned()),
                }
                out.insert(p, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The text without comments (a `//` inside a string cuts a line short,
/// which only loses paths, never invents one).
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths of a `use`-like tree starting at `s` (after `crate::` etc.),
/// each as its segments; `{a, b::c}` groups expanded.
fn paths(s: &str) -> Vec<Vec<String>> {
    fn tree(
        s: &mut std::iter::Peekable<std::str::Chars<'_>>,
        prefix: Vec<String>,
        out: &mut Vec<Vec<String>>,
    ) {
        let mut path = prefix;
        loop {
            while s.peek().is_some_and(|c| c.is_whitespace()) {
                s.next();
            }
            if s.peek() == Some(&'{') {
                s.next();
                loop {
                    tree(s, path.clone(), out);
                    while s.peek().is_some_and(|c| c.is_whitespace()) {
                        s.next();
                    }
                    match s.next() {
                        Some(',') => continue,
                        _ => return,
                    }
                }
            }
            let ident: String =
                std::iter::from_fn(|| s.next_if(|c| c.is_alphanumeric() || *c == '_')).collect();
            if ident.is_empty() || ident == "self" {
                out.push(path);
                return;
            }
            path.push(ident);
            if s.peek() == Some(&':') {
                s.next();
                if s.next_if_eq(&':').is_none() {
                    out.push(path);
                    return;
                }
            } else {
                out.push(path);
                return;
            }
        }
    }
    let mut out = Vec::new();
    tree(&mut s.chars().peekable(), Vec::new(), &mut out);
    out
}

/// The files each file imports.
fn imports(mods: &BTreeMap<Vec<String>, PathBuf>) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut edges = BTreeMap::new();
    for (module, file) in mods {
        let text = code(&std::fs::read_to_string(file).unwrap_or_default());
        // A file's unit tests (`#[cfg(test)] mod tests`, at its end) are
        // not part of the build: their `super::` is the file itself.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut to = BTreeSet::new();
        for (anchor, base) in [
            ("crate::", Vec::new()),
            ("super::", module[..module.len().saturating_sub(1)].to_vec()),
            ("self::", module.clone()),
        ] {
            for (at, _) in text.match_indices(anchor) {
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                for path in paths(&text[at + anchor.len()..]) {
                    let mut full = base.clone();
                    full.extend(path);
                    // The deepest module the path names.
                    while !full.is_empty() && !mods.contains_key(&full) {
                        full.pop();
                    }
                    if let Some(target) = mods.get(&full).filter(|t| *t != file) {
                        to.insert(target.clone());
                    }
                }
            }
        }
        // A child module named without an anchor — `pub use child::Item;`,
        // the curated re-exports of a parent file — is an edge too.
        for line in text.lines().map(str::trim) {
            let Some(rest) = ["use ", "pub use ", "pub(crate) use "]
                .iter()
                .find_map(|p| line.strip_prefix(p))
            else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !rest[name.len()..].starts_with("::") {
                continue;
            }
            let mut child = module.clone();
            child.push(name);
            if let Some(target) = mods.get(&child).filter(|t| *t != file) {
                to.insert(target.clone());
            }
        }
        edges.insert(file.clone(), to);
    }
    edges
}

/// The strongly connected components of more than one file (Tarjan).
fn cycles(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        found: Vec<Vec<PathBuf>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a PathBuf) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
}

/// The import cycles of the crate whose sources are in `src`.
fn cycles_in(src: &Path) -> Vec<Vec<PathBuf>> {
    cycles(&imports(&modules(src)))
}

#[test]
fn no_file_level_import_cycle() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for src in [repo.join("src"), repo.join("supervisors/src")] {
        let mods = modules(&src);
        assert!(mods.len() > 5, "the modules of {} were found", src.display());
        let edges = imports(&mods);
        assert!(
            edges.values().map(BTreeSet::len).sum::<usize>() > mods.len(),
            "the imports of {} were read",
            src.display()
        );
        let found = cycles(&edges);
        assert!(
            found.is_empty(),
            "file-level import cycles in {}:\n{found:#?}",
            src.display()
        );
    }
}

/// The top-level module of a file under `src` (`http/client_ip.rs` →
/// `http`; `lib.rs` → none).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (name != "lib").then_some(name)
}

/// The pairs of top-level modules that import each other, `node` left
/// out (it is the one module every actor shares by design), each with
/// one file on either side that makes the edge.
fn module_pairs(src: &Path) -> Vec<(String, String, PathBuf, PathBuf)> {
    let mut by_module: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for (from, to) in imports(&modules(src)) {
        for target in to {
            if let (Some(a), Some(b)) = (top_module(src, &from), top_module(src, &target)) {
                if a != b && a != "node" && b != "node" {
                    by_module.entry((a, b)).or_insert_with(|| from.clone());
                }
            }
        }
    }
    by_module
        .iter()
        .filter(|((a, b), _)| a < b)
        .filter_map(|((a, b), file)| {
            let back = by_module.get(&(b.clone(), a.clone()))?;
            Some((a.clone(), b.clone(), file.clone(), back.clone()))
        })
        .collect()
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for src in [repo.join("src"), repo.join("supervisors/src")] {
        let pairs = module_pairs(&src);
        assert!(
            pairs.is_empty(),
            "top-level modules of {} that import each other (module, module, a file of each):\n{pairs:#?}",
            src.display()
        );
    }
}

#[test]
fn a_parent_s_re_export_and_its_child_s_super_import_are_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("config")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod config;\n").unwrap();
    // config.rs re-exports its child, which imports a helper of config.rs.
    std::fs::write(
        src.join("config.rs"),
        "mod http;\npub use http::HttpConfig;\npub fn invalid() {}\n",
    )
    .unwrap();
    std::fs::write(src.join("config/http.rs"), "use super::invalid;\n").unwrap();
    let found = cycles_in(src);
    assert_eq!(found.len(), 1, "{found:#?}");
    // With the helper in a leaf file of its own: none.
    std::fs::write(
        src.join("config.rs"),
        "mod http;\nmod value;\npub use http::HttpConfig;\n",
    )
    .unwrap();
    std::fs::write(src.join("config/value.rs"), "pub fn invalid() {}\n").unwrap();
    std::fs::write(src.join("config/http.rs"), "use super::value::invalid;\n").unwrap();
    assert!(cycles_in(src).is_empty(), "{:#?}", cycles_in(src));
}

#[test]
fn the_module_check_finds_two_modules_that_import_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\npub mod node;\n").unwrap();
    std::fs::write(src.join("a.rs"), "pub mod x;\n").unwrap();
    std::fs::write(src.join("a/x.rs"), "use crate::b::Y;\n").unwrap();
    std::fs::write(src.join("node.rs"), "use crate::a::x::X;\n").unwrap();
    // a → b and node → a, a → node: only the first is not through node.
    std::fs::write(src.join("b.rs"), "use crate::node::Node;\n").unwrap();
    assert!(module_pairs(src).is_empty());
    std::fs::write(src.join("b.rs"), "fn f() { crate::a::x::go() }\n").unwrap();
    let pairs = module_pairs(src);
    assert_eq!(pairs.len(), 1, "{pairs:#?}");
    assert_eq!((pairs[0].0.as_str(), pairs[0].1.as_str()), ("a", "b"));
}

#[test]
fn the_cycle_check_finds_a_cycle_through_groups_and_super() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod node;\n").unwrap();
    std::fs::write(src.join("a.rs"), "pub mod actor;\npub mod shared;\n").unwrap();
    // node → a/shared (through a group), a/shared → a/actor (super), a/actor → node.
    std::fs::write(src.join("node.rs"), "use crate::{a::shared::Published, x};\n").unwrap();
    std::fs::write(
        src.join("a/shared.rs"),
        "// crate::node is only a comment\nuse super::actor::Msg;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/actor.rs"),
        "fn f() { let _ = crate::node::Node::new(); }\n",
    )
    .unwrap();
    let found = cycles_in(src);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].len(), 3, "{found:#?}");
    // Without the last edge: none.
    std::fs::write(src.join("a/actor.rs"), "fn f() {}\n").unwrap();
    assert!(cycles_in(src).is_empty());
}

/// Every message diem sends to an actor of its tree goes through a
/// counting handle ([`supervisors::Counted`]): the mailbox figure of `ctl
/// top` is what was sent through them minus what was taken, so a raw send
/// would hide a message (issue 30). `cast` remains for ractor_cluster's own
/// node server, which is not a child of the tree.
#[test]
fn every_send_to_a_tree_actor_is_counted() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut raw = Vec::new();
    for file in modules(&src).into_values() {
        let text = code(&std::fs::read_to_string(&file).unwrap());
        for (n, line) in text.lines().enumerate() {
            let counted = line.contains("Counted::of(");
            for pattern in ["send_message(", "myself.send_after(", "call!(", "cast!("] {
                if line.contains(pattern) && !counted {
                    raw.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(raw.is_empty(), "sends past the counting handles: {raw:#?}");
}
