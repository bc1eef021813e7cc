//! What every compile-fail case's expected output must (not) contain: rustc's
//! whole output speaks the user's language. Checked over every `.stderr` in
//! `fail/`, so that a new case cannot bring internals back.

use std::fs;
use std::path::Path;

/// Text that would send a user into the library's internals.
const FORBIDDEN: [(&str, &str); 10] = [
    ("__private", "a path of the macros' private module"),
    ("StageRef", "the builder's internal stage reference"),
    ("FsmDefinition", "fsm!'s generated definition"),
    ("Dispatch<", "fsm!'s dispatch type"),
    ("$WORKSPACE", "a quoted line of the library's source"),
    ("$CARGO", "a quoted line of a dependency's source"),
    ("/obzenflow/src/", "a quoted line of the library's source"),
    (
        "todo!()",
        "a proposal to add code that cannot go inside the macro",
    ),
    ("match arm", "a proposal to add a `match` arm inside fsm!"),
    (
        "originates in the macro",
        "an error at the macro's generated code, not at the user's tokens",
    ),
];

/// Cases that hold several independent mistakes on purpose say so in a
/// comment with this text; every other case gives exactly one error.
const SEVERAL: &str = "several mistakes on purpose";

/// Words with which an error proposes code. A case whose output has one
/// carries the mended program (`// mended: ..` lines, see `ui.rs`), which
/// the ui run compiles.
const PROPOSALS: [&str; 11] = [
    "did you mean",
    "similar name",
    "as in `",
    "write `",
    "add `",
    "declare it in `",
    "declare one with `",
    "declare one, as in `",
    "consider ",
    "instead of `",
    "or return `",
];

#[test]
fn every_expected_output_is_in_the_users_language() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fail");
    let mut problems = Vec::new();
    let mut cases = 0;
    for entry in fs::read_dir(&dir).expect("ui-tests/fail") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|ext| ext != "stderr") {
            continue;
        }
        cases += 1;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(&path).expect("stderr");
        let mut found = Vec::new();
        for (needle, what) in FORBIDDEN {
            if text.contains(needle) {
                found.push(format!("{name}: contains `{needle}` ({what})"));
            }
        }
        let errors = text
            .lines()
            .filter(|line| line.starts_with("error"))
            .count();
        let source = fs::read_to_string(path.with_extension("rs")).unwrap_or_default();
        if errors != 1 && !source.contains(SEVERAL) {
            found.push(format!(
                "{name}: {errors} errors for one mistake (a case with several says `{SEVERAL}`)"
            ));
        }
        if let Some(proposal) = PROPOSALS.iter().find(|p| text.contains(**p))
            && !source.contains("// mended: ")
        {
            found.push(format!(
                "{name}: proposes code (`{proposal}`) but the case has no `// mended:` line"
            ));
        }
        problems.extend(found);
    }
    assert!(cases >= 90, "only {cases} compile-fail cases");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
