//! A flow is a plan until it starts: building it makes nothing, and
//! starting it where the environment refuses (a path under a regular file, a
//! directory the process may not write, a full disk) is a typed error that
//! names the path, with no panic and nothing left behind: no journal thread,
//! no task, no half-made run directory.

#![cfg(target_os = "linux")]

use obzenflow::flow::{FlowBuilder, FlowError, FlowHandle, StartError, journals};
use obzenflow::stage::{collect, from_iter, map};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "obzenflow-flow-start-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A three-stage flow journaled durably under `base`.
fn flow(base: &Path) -> FlowHandle {
    let mut flow = FlowBuilder::new("numbers");
    flow.journals(journals::disk(base));
    let numbers = flow.source("numbers", from_iter(1..=100u32));
    let doubled = flow.transform("doubled", &numbers, map(|n: u32| n * 2));
    flow.sink("out", &doubled, collect().0);
    flow.build().unwrap()
}

/// The journal threads of this process (named `journal <stage>`).
fn journal_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("journal "))
        .count()
}

/// Every file and directory under `dir`.
fn contents(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pending.push(entry.path());
            }
            found.push(entry.path());
        }
    }
    found
}

/// Checks that `error` is of `kind` and names a path under `under`.
fn names_path(error: &StartError, kind: ErrorKind, under: &Path) {
    assert_eq!(error.kind(), kind, "{error}");
    assert!(
        error.path().is_some_and(|path| path.starts_with(under)),
        "{error}"
    );
    assert!(
        error.to_string().contains(&*under.to_string_lossy()),
        "{error}"
    );
}

/// Starts `flow`, expecting the environment to refuse; checks that nothing
/// was left running, and that a second start says the same.
fn refused(mut flow: FlowHandle) -> StartError {
    // The tests of this file run at once; the counts are of the process.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let threads = journal_threads();
    let error = match flow.start() {
        Err(FlowError::CannotStart { error, flow: name }) => {
            assert_eq!(name, "numbers");
            *error
        }
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(journal_threads(), threads, "no journal thread is left");
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        tasks,
        "no task is left"
    );
    match flow.start() {
        Err(FlowError::CannotStart { error: again, .. }) => assert_eq!(*again, error),
        other => panic!("a second start must give the same refusal, got {other:?}"),
    }
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_creates_nothing_and_a_path_under_a_file_is_refused_by_name() {
    let dir = scratch("under-file");
    let file = dir.join("not-a-directory");
    std::fs::write(&file, "x").unwrap();
    let base = file.join("runs");
    let flow = flow(&base);
    let plan = flow.plan();
    assert_eq!(plan.run_base, Some(base.join("numbers")));
    assert!(plan.journals.iter().all(|journal| journal.durable));
    let error = refused(flow);
    assert!(
        matches!(&error, StartError::RunDirectory { base: refused, .. } if *refused == base),
        "{error:?}"
    );
    names_path(&error, ErrorKind::NotADirectory, &file);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_where_the_flows_directory_goes_is_refused_and_left_alone() {
    let dir = scratch("file-in-place");
    // `base/numbers` must be a directory; a file stands there.
    std::fs::write(dir.join("numbers"), "mine").unwrap();
    let error = refused(flow(&dir));
    assert!(
        matches!(error, StartError::RunDirectory { .. }),
        "{error:?}"
    );
    names_path(&error, ErrorKind::NotADirectory, &dir.join("numbers"));
    assert_eq!(contents(&dir), [dir.join("numbers")], "nothing was added");
    assert_eq!(
        std::fs::read_to_string(dir.join("numbers")).unwrap(),
        "mine"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small tmpfs mounted for one test, unmounted when dropped; `None` (with
/// the reason printed) where this process may not mount one.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(name: &str, options: &str) -> Option<Tmpfs> {
        let dir = scratch(name);
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&dir)
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(Tmpfs(dir)),
            Ok(output) => {
                println!(
                    "skipped: cannot mount a tmpfs here (it needs root): {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                None
            }
            Err(error) => {
                println!("skipped: cannot run `mount`: {error}");
                None
            }
        }
    }
}

impl Tmpfs {
    /// Starts a flow journaled here, which finds the disk full when it
    /// opens the journal of stage `stage`.
    fn refuses_the_journal_of(&self, stage: &str) {
        let base = self.0.join("runs");
        let error = refused(flow(&base));
        assert!(
            matches!(&error, StartError::StageJournal { stage: refused, .. } if refused == stage),
            "{error:?}"
        );
        names_path(&error, ErrorKind::StorageFull, &base);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_refused_with_the_journal_that_could_not_be_written() {
    let Some(disk) = Tmpfs::mount("full", "size=64k") else {
        return;
    };
    // Fill it.
    let filler = std::fs::write(disk.0.join("filler"), vec![0u8; 1 << 20]);
    assert_eq!(filler.unwrap_err().kind(), ErrorKind::StorageFull);
    disk.refuses_the_journal_of("numbers");
    assert_eq!(
        contents(&disk.0),
        [disk.0.join("filler")],
        "the run was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_up_midway_tears_down_the_journal_threads_already_started() {
    // Inodes for the mount's root, the run's four directories, and two
    // stage journals (a directory and a segment each): the third stage's
    // journal finds the disk full, after two journal threads started.
    let Some(disk) = Tmpfs::mount("inodes", "size=1m,nr_inodes=9") else {
        return;
    };
    disk.refuses_the_journal_of("out");
    assert_eq!(
        contents(&disk.0),
        Vec::<PathBuf>::new(),
        "the run was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_the_process_may_not_write_is_refused_by_name() {
    let dir = scratch("read-only");
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    set_mode(&locked, 0o555);
    set_mode(&dir, 0o755);
    // Root may write anywhere: the runner is then tried as `nobody`.
    let root = std::fs::metadata("/proc/self")
        .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0)
        .unwrap_or(false);
    if root {
        let stderr = runner_refuses(
            Command::new(env!("CARGO_BIN_EXE_app_endless"))
                .arg("--no-serve")
                .arg("--journal-dir")
                .arg(&locked)
                .current_dir(&dir)
                .uid_nobody(),
        );
        assert!(
            stderr.contains(&format!(
                "error: flow `endless` cannot start: cannot create its run directory under {}",
                locked.display()
            )) && stderr.contains("Permission denied"),
            "{stderr}"
        );
    } else {
        let error = refused(flow(&locked));
        assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    }
    assert_eq!(contents(&locked), Vec::<PathBuf>::new());
    set_mode(&locked, 0o755);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the runner, which must exit 1 without panicking; its stderr.
fn runner_refuses(command: &mut Command) -> String {
    let output = command.env_remove("RUST_BACKTRACE").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs a command as the unprivileged user `nobody`.
trait AsNobody {
    fn uid_nobody(&mut self) -> &mut Self;
}

impl AsNobody for Command {
    fn uid_nobody(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        self.gid(65534).uid(65534)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_reports_an_unusable_journal_directory_without_panicking() {
    let stderr = runner_refuses(Command::new(env!("CARGO_BIN_EXE_app_endless")).args([
        "--no-serve",
        "--journal-dir",
        "/dev/null/x",
    ]));
    assert!(
        stderr.contains(
            "error: flow `endless` cannot start: cannot create its run directory under /dev/null/x: journal file /dev/null/x/endless/"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("Not a directory"), "{stderr}");
}
