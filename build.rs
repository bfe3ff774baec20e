//! Embeds the bundled Rhai library from scripts/ into the binary, and gives the static
//! release link its function order (assets/link-order.txt). It never fails the build: a
//! missing folder bundles nothing, a missing order file orders nothing.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=scripts");
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    link_order(Path::new(&root));
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

/// The static release build (x86_64 glibc, `crt-static` in its RUSTFLAGS, linked by rust-lld
/// as README.md's command does) puts the functions an idle `serve` and the demo's checks run
/// first in the code, together: the kernel maps code in 64 KiB pieces, and scattered over
/// the whole binary those few functions kept 6 MB of it resident (BENCHMARKS.md, "Idle
/// memory"). `tests/link-order.sh` writes the list; a name it no longer matches is skipped
/// by the linker, and `tests/static-check.sh` fails when too many are. `HOSTLER_LINK_MAP`
/// names a file for the linker's map, which that check reads.
fn link_order(root: &Path) {
    println!("cargo:rerun-if-env-changed=HOSTLER_LINK_MAP");
    let order = root.join("assets/link-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let static_release = var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("PROFILE") == "release"
        && var("CARGO_ENCODED_RUSTFLAGS").contains("crt-static");
    if !static_release {
        return;
    }
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    } else {
        println!(
            "cargo:warning=no {}: the code is not ordered",
            order.display()
        );
    }
    if let Ok(map) = std::env::var("HOSTLER_LINK_MAP") {
        println!("cargo:rustc-link-arg-bins=-Wl,-Map={map}");
    }
}
