//! The command-line runner under Ctrl-C: the first SIGINT stops the flow
//! gracefully (it drains and exits 0); a second one cancels it.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(slow: bool) -> Child {
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
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "started");
    // Let the flow get going.
    std::thread::sleep(Duration::from_millis(200));
    child
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
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status, stderr);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the child did not end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn one_ctrl_c_stops_gracefully() {
    let child = start(false);
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
    // A slow sink behind a fast source: draining would take minutes.
    let child = start(true);
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&child);
    let (status, stderr) = finish(child);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("stopping: draining what is in flight"),
        "{stderr}"
    );
    assert!(stderr.contains("cancelling"), "{stderr}");
    assert!(stderr.contains("flow `endless`: cancelled"), "{stderr}");
}
