//! The command-line runner under Ctrl-C: the first SIGINT stops the flow
//! gracefully (it drains and exits 0); a second one cancels it.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// Starts the child and waits for its first line; returns it with a reader
/// of the rest of its standard output (one reader, so no line is lost).
fn start(slow: bool) -> (Child, BufReader<ChildStdout>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_app_endless"));
    if slow {
        command.env("APP_ENDLESS_SLOW", "1");
    }
    let mut child = command
        .arg("--memory")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    // The runner listens for Ctrl-C before it builds the flow, which prints this.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "started");
    (child, stdout)
}

fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child (at most 20 s), returning its exit status and stderr.
fn finish(mut child: Child) -> (std::process::ExitStatus, String) {
    let mut stderr = child.stderr.take().unwrap();
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = done.send((child.wait(), text));
    });
    let (status, text) = ended
        .recv_timeout(Duration::from_secs(20))
        .expect("the child ended within 20 s");
    (status.unwrap(), text)
}

#[test]
fn one_ctrl_c_stops_gracefully() {
    let (child, _stdout) = start(false);
    interrupt(&child);
    let (status, stderr) = finish(child);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("stopping: draining what is in flight"),
        "{stderr}"
    );
    assert!(stderr.contains("flow `endless`: stopped"), "{stderr}");
}

#[test]
fn a_second_ctrl_c_cancels() {
    // A sink that takes a second an event, with a backlog: draining would take long.
    let (mut child, mut stdout) = start(true);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "consuming");
    interrupt(&child);
    // Signals that arrive together may be delivered as one: send the second
    // once the runner says it is stopping.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("stopping: draining what is in flight") {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the runner ended first: {seen}"
        );
        seen.push_str(&line);
    }
    interrupt(&child);
    stderr.read_to_string(&mut seen).unwrap();
    assert!(child.wait().unwrap().success(), "{seen}");
    assert!(seen.contains("cancelling"), "{seen}");
    assert!(seen.contains("flow `endless`: cancelled"), "{seen}");
}
