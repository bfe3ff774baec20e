//! Embeds the bundled Rhai library from scripts/ into the binary. It never fails the build:
//! a missing folder bundles nothing.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=scripts");
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&root).join("scripts");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from("pub static BUNDLED: &[Bundled] = &[\n");
    for p in &names {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        println!("cargo:rerun-if-changed={}", p.display());
        let _ = writeln!(
            out,
            "    Bundled {{ name: {stem:?}, source: include_str!({:?}) }},",
            p.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("bundled.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        println!("cargo:warning=cannot write {}: {e}", dest.display());
    }
}
