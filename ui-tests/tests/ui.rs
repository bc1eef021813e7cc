//! Every compile-fail and compile-pass case of the macros, in one trybuild run
//! (one build of the dependencies for all cases).
//!
//! A compile-fail case whose error proposes code says how to apply it, in
//! lines `// mended: <what is written> ==> <what the error proposes>`. The
//! case with those replacements made is written to `mended/` and must
//! compile: every hint is checked by applying it. The mended programs are
//! built as modules of one program, `mended/all.rs` (one build and one link
//! for all of them, not one each); an error in one names its file.

use std::fs;
use std::path::Path;

/// The marker of a mend line in a compile-fail case.
const MEND: &str = "// mended: ";

#[test]
fn ui() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    write_mended(root);
    let cases = trybuild::TestCases::new();
    cases.pass("pass/*.rs");
    cases.pass("mended/all.rs");
    cases.compile_fail("fail/*.rs");
}

/// Writes the mended program of every compile-fail case that has mend lines.
fn write_mended(root: &Path) {
    let mended = root.join("mended");
    let _ = fs::remove_dir_all(&mended);
    fs::create_dir_all(&mended).expect("ui-tests/mended");
    let mut entries: Vec<_> = fs::read_dir(root.join("fail"))
        .expect("ui-tests/fail")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    entries.sort();
    let mut all = String::from(
        "//! The mended program of every compile-fail case, each a module.\n#![allow(dead_code, unused)]\n\n",
    );
    for path in entries {
        let source = fs::read_to_string(&path).expect("case");
        let mends: Vec<(&str, &str)> = source
            .lines()
            .filter_map(|line| line.trim_start().strip_prefix(MEND))
            .map(|mend| {
                mend.split_once(" ==> ").unwrap_or_else(|| {
                    panic!(
                        "{}: a mend line reads `{MEND}<old> ==> <new>`",
                        path.display()
                    )
                })
            })
            .collect();
        if mends.is_empty() {
            continue;
        }
        let mut program: String = source
            .lines()
            .filter(|line| !line.trim_start().starts_with(MEND))
            .map(|line| format!("{line}\n"))
            .collect();
        for (old, new) in mends {
            let old = old.replace("\\n", "\n");
            assert!(
                program.contains(&old),
                "{}: the mend's `{old}` is not in the case",
                path.display()
            );
            program = program.replacen(&old, &new.replace("\\n", "\n"), 1);
        }
        let name = path.file_stem().expect("name").to_string_lossy();
        fs::write(mended.join(format!("{name}.rs")), program).expect("mended case");
        all.push_str(&format!("#[path = \"{name}.rs\"]\nmod {name};\n"));
    }
    all.push_str("\nfn main() {}\n");
    fs::write(mended.join("all.rs"), all).expect("mended/all.rs");
}
