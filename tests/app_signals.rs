//! The command-line runner under Ctrl-C: the first SIGINT stops the flow
//! gracefully (it drains and exits 0); a second one cancels it. And its
//! HTTP endpoints, read with a real client while the flow runs.

#![cfg(unix)]

#[path = "support/http.rs"]
mod client;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// Starts the child and waits for its first line; returns it with a reader
/// of the rest of its standard output (one reader, so no line is lost).
fn start(slow: bool) -> (Child, BufReader<ChildStdout>) {
    start_with(slow, &["--no-serve"])
}

fn start_with(slow: bool, args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_app_endless"));
    if slow {
        command.env("APP_ENDLESS_SLOW", "1");
    }
    spawn(command.arg("--memory").args(args))
}

/// Starts `command` (the runner) and waits for its first line.
fn spawn(command: &mut Command) -> (Child, BufReader<ChildStdout>) {
    let mut child = command
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

fn get(url: &str) -> (u16, String) {
    let (status, _, body) = client::request("GET", url);
    (status, body)
}

#[test]
fn the_runner_serves_metrics_topology_and_health_while_the_flow_runs() {
    let (mut child, _stdout) = start_with(false, &["--serve", "127.0.0.1:0"]);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    // "serving http://127.0.0.1:PORT/metrics, ..."
    let addr = line
        .strip_prefix("serving http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("the runner says where it serves: {line}"))
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let (status, health) = get(&format!("http://{addr}/health"));
    assert_eq!(status, 200, "{health}");
    assert!(health.contains("\"flow\": \"endless\""), "{health}");
    assert!(health.contains("\"healthy\": true"), "{health}");
    // The endless source keeps producing: two scrapes see the count grow.
    let produced = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix(
                    "obzenflow_stage_events_out_total{flow=\"endless\",stage=\"numbers\",kind=\"source\"} ",
                )
            })
            .unwrap_or_else(|| panic!("{metrics}"))
            .parse()
            .unwrap()
    };
    let (status, first) = get(&format!("http://{addr}/metrics"));
    assert_eq!(status, 200);
    let mut later = produced(&first);
    for _ in 0..1_000 {
        later = produced(&get(&format!("http://{addr}/metrics")).1);
        if later > produced(&first) {
            break;
        }
    }
    assert!(later > produced(&first), "the count grows while it runs");
    assert!(
        first.contains("obzenflow_stage_processing_seconds_bucket{"),
        "{first}"
    );
    let (status, topology) = get(&format!("http://{addr}/topology"));
    assert_eq!(status, 200);
    assert!(topology.contains("\"doubled\""), "{topology}");

    interrupt(&child);
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    // The summary has the processing-time column.
    assert!(rest.contains("p50/p99 each"), "{rest}");
    assert!(rest.contains("flow `endless`: stopped"), "{rest}");
}

#[test]
fn an_address_given_to_serve_that_is_taken_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_app_endless"))
        .args(["--memory", "--serve", &addr])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("error: cannot serve on {addr}: ")),
        "{stderr}"
    );
}

#[test]
fn the_printed_replay_command_survives_the_shell_and_logs_carry_no_colour_codes() {
    let base = std::env::temp_dir().join(format!(
        "obzenflow app; echo not-run {}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&base);
    let (child, _stdout) = spawn(
        Command::new(env!("CARGO_BIN_EXE_app_endless"))
            .args(["--no-serve", "--log-level", "info", "--journal-dir"])
            .arg(&base),
    );
    interrupt(&child);
    let (status, stderr) = finish(child);
    assert!(status.success(), "{stderr}");
    // Standard error is a pipe here, not a terminal.
    assert!(stderr.contains(" INFO "), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    let command = stderr
        .lines()
        .find_map(|line| line.strip_prefix("replay and verify it with: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    let replayed = Command::new("sh").args(["-c", command]).output().unwrap();
    let said = String::from_utf8_lossy(&replayed.stdout);
    assert!(replayed.status.success(), "{command}: {said}");
    assert!(
        !said.contains("not-run"),
        "the shell ran part of the path: {said}"
    );
    assert!(
        said.contains("verification: all 3 stages matched, 0 differences"),
        "{command}: {said}"
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn inspecting_an_archive_or_failing_to_replay_one_creates_nothing() {
    let base = std::env::temp_dir().join(format!("obzenflow-app-reads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let runner = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_app_endless"));
        command.args(["--no-serve", "--journal-dir"]).arg(&base);
        command
    };
    let (child, _stdout) = spawn(&mut runner());
    interrupt(&child);
    let (status, stderr) = finish(child);
    assert!(status.success(), "{stderr}");
    let runs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(base.join("endless"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect()
    };
    let archive = runs();
    assert_eq!(archive.len(), 1);

    let inspected = runner().arg("--inspect").arg(&archive[0]).output().unwrap();
    assert!(inspected.status.success());
    assert!(String::from_utf8_lossy(&inspected.stdout).contains("\"stage\":\"numbers\""));
    assert_eq!(runs(), archive, "inspecting made no run directory");

    let missing = base.join("no such archive");
    let refused = runner()
        .arg("--replay-from")
        .arg(&missing)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains("no such archive"), "{said}");
    assert_eq!(
        runs(),
        archive,
        "a replay refused before it started left nothing"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// `GET /health` on a fresh connection, waiting at most `patience` for the
/// answer: its status line, or why there was none.
fn health(addr: &str, patience: Duration) -> Result<String, String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(patience)).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(answer.trim().to_owned())
}

/// A child process killed if the test fails before it ends it.
struct Reaped(Option<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn the_endpoint_outlives_exhausted_descriptors_and_idle_connections() {
    use std::io::Write;
    // The runner with few file descriptors: it runs out of them long
    // before the idle connections below are all accepted.
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 48 && exec '{}' --memory --serve 127.0.0.1:0",
            env!("CARGO_BIN_EXE_app_endless")
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Reaped(Some(child));
    let running = child.0.as_mut().unwrap();
    let mut stdout = BufReader::new(running.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "started");
    let mut stderr = BufReader::new(running.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("serving http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    assert_eq!(
        health(&addr, Duration::from_secs(5)).as_deref(),
        Ok("HTTP/1.1 200 OK")
    );

    // 150 connections that never finish a request: idle, or half-sent.
    let idle: Vec<std::net::TcpStream> = (0..150)
        .map(|n| {
            let mut stream = std::net::TcpStream::connect(&addr).unwrap();
            if n % 2 == 0 {
                stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: te")
                    .unwrap();
            }
            stream
        })
        .collect();
    // The endpoint answers again once the idle connections ahead of this
    // one are cut off (a bounded number of tries, each bounded in time).
    let started = std::time::Instant::now();
    let mut answer = Err("not asked".to_owned());
    for _ in 0..6 {
        answer = health(&addr, Duration::from_secs(10));
        if answer.as_deref() == Ok("HTTP/1.1 200 OK") {
            break;
        }
    }
    assert_eq!(answer.as_deref(), Ok("HTTP/1.1 200 OK"));
    let waited = started.elapsed();
    drop(idle);

    let mut running = child.0.take().unwrap();
    interrupt(&running);
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(running.wait().unwrap().success(), "{rest}");
    // Running out of descriptors is logged, but at most once per interval
    // (5 s) with a count, not once per failed accept.
    let logged = rest.matches("cannot accept a connection").count();
    assert!(logged >= 1, "the exhaustion is reported: {rest}");
    let most = 2 + waited.as_secs() as usize / 5;
    assert!(logged <= most, "{logged} lines in {waited:?}: {rest}");
    assert!(rest.contains("also_since_last_logged"), "{rest}");
}

#[test]
fn help_lists_what_the_program_does_and_the_environment_it_reads() {
    let output = Command::new(env!("CARGO_BIN_EXE_app_endless"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{help}");
    assert!(help.starts_with("Doubles numbers without end"), "{help}");
    assert!(help.contains("--journal-dir <DIR>"), "{help}");
    assert!(
        help.contains("Environment:\n  APP_ENDLESS_SLOW  set: the sink takes a second an event"),
        "{help}"
    );
}
