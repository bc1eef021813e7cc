//! Compile cost of `flow!`: a generated 100-stage flow written with `flow!`
//! and the same flow written with the builder API by hand, each `cargo check`ed
//! after a one-line change, in the same run (same machine, same warm target
//! directory). Goal: `flow!` at most 2x the hand-written builder.
//!
//! Run: `cargo bench --bench compile_flow`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STAGES: usize = 100;
const ROUNDS: usize = 5;

fn manifest(name: &str, obzenflow: &Path) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nobzenflow = {{ path = {:?} }}\n\n[workspace]\n",
        obzenflow
    )
}

/// source -> 98 transforms -> sink, declared with `flow!`.
fn with_macro(edit: usize) -> String {
    let mut stages = String::from("            s0 = source!(u64 => from_iter(0..10u64));\n");
    let mut chain = String::from("s0");
    for i in 1..STAGES - 1 {
        let _ = writeln!(
            stages,
            "            s{i} = transform!(u64 -> u64 => map(|x: u64| x + {}));",
            i + edit
        );
        let _ = write!(chain, " |> s{i}");
    }
    let last = STAGES - 1;
    let _ = writeln!(stages, "            s{last} = sink!(u64 => console());");
    let _ = write!(chain, " |> s{last}");
    format!(
        "use obzenflow::flow;\nuse obzenflow::stage::{{console, from_iter, map}};\n\n\
         fn main() {{\n    let flow = flow! {{\n        name: \"generated\",\n        stages: {{\n{stages}        }},\n        \
         topology: {{\n            {chain};\n        }}\n    }};\n    println!(\"{{}}\", flow.topology().stages.len());\n}}\n"
    )
}

/// The same flow with the builder API.
fn with_builder(edit: usize) -> String {
    let mut body = String::from("    let s0 = flow.source(\"s0\", from_iter(0..10u64));\n");
    for i in 1..STAGES - 1 {
        let _ = writeln!(
            body,
            "    let s{i} = flow.transform(\"s{i}\", &s{}, map(|x: u64| x + {}));",
            i - 1,
            i + edit
        );
    }
    let last = STAGES - 1;
    let _ = writeln!(
        body,
        "    flow.sink(\"s{last}\", &s{}, console());",
        last - 1
    );
    format!(
        "use obzenflow::flow::FlowBuilder;\nuse obzenflow::stage::{{console, from_iter, map}};\n\n\
         fn main() {{\n    let mut flow = FlowBuilder::new(\"generated\");\n{body}    \
         let flow = flow.build().expect(\"valid\");\n    println!(\"{{}}\", flow.topology().stages.len());\n}}\n"
    )
}

fn check(dir: &Path, target: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new(env!("CARGO"))
        .args(["check", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo check failed in {}", dir.display());
    started.elapsed()
}

fn measure(
    name: &str,
    source: fn(usize) -> String,
    root: &Path,
    target: &Path,
    obzenflow: &Path,
) -> Duration {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("src")).expect("create the crate");
    std::fs::write(dir.join("Cargo.toml"), manifest(name, obzenflow)).expect("write Cargo.toml");
    std::fs::write(dir.join("src/main.rs"), source(0)).expect("write main.rs");
    check(&dir, target);
    let mut times: Vec<Duration> = (1..=ROUNDS)
        .map(|edit| {
            std::fs::write(dir.join("src/main.rs"), source(edit)).expect("edit main.rs");
            check(&dir, target)
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
}

fn main() {
    if std::env::args().any(|arg| arg == "--test" || arg == "--list") {
        return;
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let obzenflow = workspace.join("obzenflow");
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile_flow");
    let target = root.join("target");
    let builder = measure("flow_builder", with_builder, &root, &target, &obzenflow);
    let macro_ = measure("flow_macro", with_macro, &root, &target, &obzenflow);
    println!(
        "compile_flow: {STAGES}-stage flow, cargo check after a one-line change (median of {ROUNDS}): \
         flow! {:.2} s, builder by hand {:.2} s, ratio {:.2} (goal: at most 2.00)",
        macro_.as_secs_f64(),
        builder.as_secs_f64(),
        macro_.as_secs_f64() / builder.as_secs_f64()
    );
}
