//! The command-line runner for a user's `main` (feature `app`).
//!
//! ```no_run
//! use obzenflow::prelude::*;
//! use obzenflow::stage::{console, from_iter};
//!
//! fn main() -> std::process::ExitCode {
//!     obzenflow::app::run(|app| flow! {
//!         name: "numbers",
//!         journals: app.journals(),
//!         stages: {
//!             numbers = source!(u32 => from_iter(0..10u32));
//!             out = sink!(u32 => console());
//!         },
//!         topology: { numbers |> out; }
//!     })
//! }
//! ```
//!
//! Options: `--journal-dir DIR` (disk journals, the default is
//! `target/obzenflow`), `--memory` (no disk journals), `--replay-from RUN_DIR`
//! (replay an archived run), `--resume-from RUN_DIR` (continue an
//! interrupted run where it stopped), `--inspect RUN_DIR` (print its journals as JSON
//! lines), `--verify` (with `--replay-from`: compare every
//! stage with the archive), `--allow-incomplete`, `--repeat-sink-effects`,
//! `--stop-timeout SECONDS` (for Ctrl-C), `--log-level LEVEL`; with the
//! feature `http`, `--serve ADDR` (where to serve `/metrics`, `/topology` and
//! `/health`; by default `127.0.0.1:9464`, loopback only) and `--no-serve`.
//! `--errors-to FILE` writes the run's error lane there as JSON lines.
//! Without the feature `http`, `--serve` says which feature to enable.
//!
//! A program extends the runner with its own options and subcommands
//! ([`Program::arg`], [`Program::subcommand`], with [`clap`], re-exported
//! here), reads them when it builds its flow ([`App::matches`]), and gets
//! the flow and its report after the run ([`Program::run_with`]).
//!
//! While it runs, a progress line shows what the sources have read; Ctrl-C
//! stops gracefully and a second Ctrl-C cancels. At the end it prints the
//! per-stage summary (events, errors, busy time, processing time per event,
//! what each middleware layer did), the run directory and the exact command
//! that replays and verifies the run.

use crate::flow::journals::{Journals, disk, memory};
use crate::flow::replay::ReplayOptions;
use crate::flow::{FlowError, FlowHandle, FlowReport};
use crate::supervise::StageKind;
pub use clap;
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// What the runner was asked to do, for the code that builds the flow.
#[derive(Clone, Debug)]
pub struct App {
    matches: ArgMatches,
    journal_dir: Option<PathBuf>,
    replay_from: Option<PathBuf>,
    resume_from: Option<PathBuf>,
    verify: bool,
    replay: ReplayOptions,
    stop_timeout: Duration,
}

impl App {
    /// The journals the command line asked for: disk journals under
    /// `--journal-dir` (by default), or memory only with `--memory`.
    pub fn journals(&self) -> Journals {
        match &self.journal_dir {
            Some(dir) => disk(dir.clone()),
            None => memory(),
        }
    }

    /// The archived run being replayed, if any.
    pub fn replay_from(&self) -> Option<&std::path::Path> {
        self.replay_from.as_deref()
    }

    /// The interrupted run being resumed, if any.
    pub fn resume_from(&self) -> Option<&std::path::Path> {
        self.resume_from.as_deref()
    }

    /// The whole command line as clap parsed it: the program's own options
    /// (added with [`Program::arg`]) beside the runner's.
    pub fn matches(&self) -> &ArgMatches {
        &self.matches
    }

    /// The value of the program's option `id`, if it was given (or has a
    /// default): `app.value::<String>("postgres")`.
    pub fn value<T: Clone + Send + Sync + 'static>(&self, id: &str) -> Option<&T> {
        self.matches.try_get_one::<T>(id).ok().flatten()
    }

    /// Whether the program's flag `id` (an `ArgAction::SetTrue` option) was given.
    pub fn flag(&self, id: &str) -> bool {
        self.matches
            .try_get_one::<bool>(id)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
    }
}

/// The heading of the runner's own options in `--help`, below the program's.
const RUNNER_OPTIONS: &str = "Runner options";

/// The runner's command line, after the program's own options (`own`),
/// which `--help` lists first.
fn command(own: Vec<Arg>) -> Command {
    let command = Command::new(std::env::args().next().unwrap_or_else(|| "flow".to_owned()))
        .args(own)
        .next_help_heading(RUNNER_OPTIONS);
    #[cfg(feature = "http")]
    let command = command
        .arg(
            Arg::new("serve")
                .long("serve")
                .value_name("ADDR")
                .default_value(crate::flow::http::DEFAULT_ADDR)
                .help("Serve /metrics, /topology and /health on ADDR while the flow runs"),
        )
        .arg(
            Arg::new("no-serve")
                .long("no-serve")
                .action(ArgAction::SetTrue)
                .conflicts_with("serve")
                .help("Do not serve /metrics, /topology and /health"),
        );
    // Accepted without the feature, so that using them says what to enable.
    #[cfg(not(feature = "http"))]
    let command = command
        .arg(
            Arg::new("serve")
                .long("serve")
                .value_name("ADDR")
                .help("Serve /metrics, /topology and /health (needs obzenflow's feature `http`)"),
        )
        .arg(
            Arg::new("no-serve")
                .long("no-serve")
                .action(ArgAction::SetTrue)
                .hide(true),
        );
    command
        .about("Runs an ObzenFlow flow")
        .arg(
            Arg::new("journal-dir")
                .long("journal-dir")
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf))
                .default_value("target/obzenflow")
                .help("Write every stage's journal under DIR, one directory per run"),
        )
        .arg(
            Arg::new("memory")
                .long("memory")
                .action(ArgAction::SetTrue)
                .conflicts_with("replay-from")
                .help("Keep journals in memory only (nothing to replay afterwards)"),
        )
        .arg(
            Arg::new("replay-from")
                .long("replay-from")
                .value_name("RUN_DIR")
                .value_parser(value_parser!(PathBuf))
                .help("Replay an archived run: sources read its journals, every other stage runs again"),
        )
        .arg(
            Arg::new("resume-from")
                .long("resume-from")
                .value_name("RUN_DIR")
                .value_parser(value_parser!(PathBuf))
                .conflicts_with_all(["replay-from", "memory"])
                .help("Continue an interrupted run where it stopped, appending to its journals"),
        )
        .arg(
            Arg::new("inspect")
                .long("inspect")
                .value_name("RUN_DIR")
                .value_parser(value_parser!(PathBuf))
                .conflicts_with("replay-from")
                .help("Print every journal of an archived run as JSON lines, and exit"),
        )
        .arg(
            Arg::new("verify")
                .long("verify")
                .action(ArgAction::SetTrue)
                .requires("replay-from")
                .help("With --replay-from: compare every stage's output with the archive"),
        )
        .arg(
            Arg::new("allow-incomplete")
                .long("allow-incomplete")
                .action(ArgAction::SetTrue)
                .requires("replay-from")
                .help("Replay an archive whose run never ended (crashed or killed)"),
        )
        .arg(
            Arg::new("repeat-sink-effects")
                .long("repeat-sink-effects")
                .action(ArgAction::SetTrue)
                .requires("replay-from")
                .help("Let sinks deliver again during a replay"),
        )
        .arg(
            Arg::new("errors-to")
                .long("errors-to")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("After the run, write its error lane to FILE as JSON lines (to fix and drive again)"),
        )
        .arg(
            Arg::new("stop-timeout")
                .long("stop-timeout")
                .value_name("SECONDS")
                .value_parser(value_parser!(f64))
                .default_value("30")
                .help("After Ctrl-C, how long to drain before cancelling"),
        )
        .arg(
            Arg::new("log-level")
                .long("log-level")
                .value_name("LEVEL")
                .value_parser(["error", "warn", "info", "debug", "trace"])
                .default_value("warn")
                .help("The most detailed log lines to print (to standard error)"),
        )
}

/// Parses the command line, builds the flow with `build`, runs it, and
/// returns the process's exit code (0 when it completed or was stopped and,
/// with `--verify`, matched its archive).
pub fn run(build: impl FnOnce(&App) -> FlowHandle) -> ExitCode {
    Program::default().run_then(build, |_| {})
}

/// [`run`], calling `then` with the report of a run that completed or was
/// stopped (before the summary is printed), to print results of its own.
pub fn run_then(
    build: impl FnOnce(&App) -> FlowHandle,
    then: impl FnOnce(&FlowReport),
) -> ExitCode {
    Program::default().run_then(build, then)
}

/// A program run by the runner, described for its `--help`: what it does
/// and the environment variables it reads.
///
/// ```no_run
/// # use obzenflow::prelude::*;
/// # use obzenflow::stage::{console, from_iter};
/// fn main() -> std::process::ExitCode {
///     obzenflow::app::Program::new("Counts to a number")
///         .env("COUNT_TO", "how far to count (10 by default)")
///         .run(|app| {
///             let to = std::env::var("COUNT_TO").ok().and_then(|n| n.parse().ok()).unwrap_or(10u32);
///             flow! {
///                 name: "count",
///                 journals: app.journals(),
///                 stages: { numbers = source!(u32 => from_iter(0..to)); out = sink!(u32 => console()); },
///                 topology: { numbers |> out; }
///             }
///         })
/// }
/// ```
#[derive(Default)]
pub struct Program {
    about: Option<String>,
    flow: Option<String>,
    environment: Vec<(String, String)>,
    args: Vec<Arg>,
    subcommands: Vec<(Command, Subcommand)>,
}

/// What runs a program's own subcommand instead of the flow.
type Subcommand = Box<dyn FnOnce(&ArgMatches) -> ExitCode>;

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("about", &self.about)
            .field("flow", &self.flow)
            .field("environment", &self.environment)
            .field("args", &self.args.len())
            .field("subcommands", &self.subcommands.len())
            .finish()
    }
}

impl Program {
    /// A program that does what `about` says (the first line of its `--help`).
    pub fn new(about: impl Into<String>) -> Self {
        Program {
            about: Some(about.into()),
            ..Program::default()
        }
    }

    /// Names the flow it runs, for `--help` ("Runs the flow `name`").
    pub fn flow(mut self, name: impl Into<String>) -> Self {
        self.flow = Some(name.into());
        self
    }

    /// Says in `--help` that the program reads the environment variable
    /// `name`, for what.
    pub fn env(mut self, name: impl Into<String>, what: impl Into<String>) -> Self {
        self.environment.push((name.into(), what.into()));
        self
    }

    /// Adds an option of the program's own (a [`clap::Arg`]), listed in
    /// `--help` above the runner's; the flow's builder reads it with
    /// [`App::value`], [`App::flag`] or [`App::matches`].
    ///
    /// ```no_run
    /// use obzenflow::app::{Program, clap::Arg};
    /// # use obzenflow::prelude::*;
    /// # use obzenflow::stage::{console, from_iter};
    /// fn main() -> std::process::ExitCode {
    ///     Program::new("Counts to a number")
    ///         .arg(Arg::new("to").long("to").value_parser(obzenflow::app::clap::value_parser!(u32)).default_value("10"))
    ///         .run(|app| {
    ///             let to = *app.value::<u32>("to").unwrap_or(&10);
    ///             flow! {
    ///                 name: "count",
    ///                 journals: app.journals(),
    ///                 stages: { numbers = source!(u32 => from_iter(0..to)); out = sink!(u32 => console()); },
    ///                 topology: { numbers |> out; }
    ///             }
    ///         })
    /// }
    /// ```
    pub fn arg(mut self, arg: Arg) -> Self {
        self.args.push(arg);
        self
    }

    /// Adds a subcommand of the program's own: when the command line names
    /// it, `run` runs with its options instead of the flow, and its exit
    /// code is the program's.
    pub fn subcommand(
        mut self,
        command: Command,
        run: impl FnOnce(&ArgMatches) -> ExitCode + 'static,
    ) -> Self {
        self.subcommands.push((command, Box::new(run)));
        self
    }

    /// [`run`](fn@run), for this program.
    pub fn run(self, build: impl FnOnce(&App) -> FlowHandle) -> ExitCode {
        self.run_with(build, |_, _| {})
    }

    fn command(&mut self) -> Command {
        let mut command = command(std::mem::take(&mut self.args));
        let about = match (&self.about, &self.flow) {
            (Some(about), Some(flow)) => Some(format!("{about}\n(runs the flow `{flow}`)")),
            (Some(about), None) => Some(about.clone()),
            (None, Some(flow)) => Some(format!("Runs the flow `{flow}`")),
            (None, None) => None,
        };
        if let Some(about) = about {
            command = command.about(about);
        }
        for (subcommand, _) in &self.subcommands {
            command = command.subcommand(subcommand.clone());
        }
        if !self.environment.is_empty() {
            let width = self
                .environment
                .iter()
                .map(|(name, _)| name.len())
                .max()
                .unwrap_or(0);
            let lines: Vec<String> = self
                .environment
                .iter()
                .map(|(name, what)| format!("  {name:width$}  {what}"))
                .collect();
            command = command.after_help(format!("Environment:\n{}", lines.join("\n")));
        }
        command
    }

    /// [`run_then`], for this program.
    pub fn run_then(
        self,
        build: impl FnOnce(&App) -> FlowHandle,
        then: impl FnOnce(&FlowReport),
    ) -> ExitCode {
        self.run_with(build, |_, report| then(report))
    }

    /// Parses the command line, runs the program's subcommand if one was
    /// named, and otherwise builds the flow with `build`, runs it, and calls
    /// `after` with the flow (to verify, inspect or export it) and the
    /// report of a run that completed or was stopped, before the summary.
    pub fn run_with(
        mut self,
        build: impl FnOnce(&App) -> FlowHandle,
        after: impl FnOnce(&FlowHandle, &FlowReport),
    ) -> ExitCode {
        let matches = self.command().get_matches();
        if let Some((name, sub)) = matches.subcommand()
            && let Some(index) = self
                .subcommands
                .iter()
                .position(|(command, _)| command.get_name() == name)
        {
            let (_, run) = self.subcommands.swap_remove(index);
            return run(sub);
        }
        run_program(matches, build, after)
    }
}

fn run_program(
    matches: ArgMatches,
    build: impl FnOnce(&App) -> FlowHandle,
    after: impl FnOnce(&FlowHandle, &FlowReport),
) -> ExitCode {
    #[cfg(not(feature = "http"))]
    if matches.get_one::<String>("serve").is_some() || matches.get_flag("no-serve") {
        eprintln!(
            "error: --serve needs obzenflow's feature `http`: in Cargo.toml, `obzenflow = {{ version = \"0.1\", features = [\"app\", \"http\"] }}`"
        );
        return ExitCode::from(2);
    }
    let level = matches
        .get_one::<String>("log-level")
        .and_then(|level| level.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let errors_to = matches.get_one::<PathBuf>("errors-to").cloned();
    let app = App {
        matches: matches.clone(),
        journal_dir: if matches.get_flag("memory") {
            None
        } else {
            matches.get_one::<PathBuf>("journal-dir").cloned()
        },
        replay_from: matches.get_one::<PathBuf>("replay-from").cloned(),
        resume_from: matches.get_one::<PathBuf>("resume-from").cloned(),
        verify: matches.get_flag("verify"),
        replay: ReplayOptions {
            allow_incomplete: matches.get_flag("allow-incomplete"),
            repeat_sink_effects: matches.get_flag("repeat-sink-effects"),
        },
        stop_timeout: Duration::from_secs_f64(
            matches
                .get_one::<f64>("stop-timeout")
                .copied()
                .unwrap_or(30.0)
                .max(0.0),
        ),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let inspect = matches.get_one::<PathBuf>("inspect").cloned();
    runtime.block_on(async move {
        let mut ctrl_c = Interrupts::listen();
        let mut flow = build(&app);
        if let Some(run) = inspect {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            return match flow.inspect(&run, &mut out) {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        if let Some(archive) = &app.replay_from
            && let Err(error) = flow.replay_from(archive, app.replay)
        {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
        if let Some(run) = &app.resume_from
            && let Err(error) = flow.resume_from(run, Default::default())
        {
            eprintln!("error: cannot resume: {error}");
            return ExitCode::FAILURE;
        }
        #[cfg(feature = "http")]
        let _server = match serve(&flow, &matches).await {
            Ok(server) => server,
            Err(()) => return ExitCode::FAILURE,
        };
        let outcome = drive(&mut flow, &app, &mut ctrl_c).await;
        // The error lane, with the inputs the failing stages did not keep
        // filled in from the run's journals where it has them.
        let ended = match &outcome {
            Ok(report) => Some(report),
            Err(error) => error.report(),
        };
        let written = match (&errors_to, ended) {
            (Some(path), Some(report)) => {
                let records = flow.error_lane(report).unwrap_or_else(|error| {
                    eprintln!("warning: cannot read the inputs of the error lane from the journals: {error}");
                    report.errors.clone()
                });
                Some((path, crate::flow::report::write_error_lane(&records, path)))
            }
            _ => None,
        };
        match written {
            Some((path, Ok(count))) => {
                eprintln!("{count} error-lane records written to {}", path.display())
            }
            Some((path, Err(error))) => {
                eprintln!(
                    "error: cannot write the error lane to {}: {error}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
            None => {}
        }
        let report = match outcome {
            Ok(report) => report,
            Err(error) => {
                if let Some(report) = error.report() {
                    eprintln!("\n{report}");
                }
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        after(&flow, &report);
        eprintln!("\n{report}");
        if let Some(run) = &report.run_dir {
            let program = std::env::args().next().unwrap_or_else(|| "flow".to_owned());
            eprintln!("run directory: {}", run.display());
            eprintln!(
                "replay and verify it with: {} --replay-from {} --verify",
                shell_quoted(&program),
                shell_quoted(&run.to_string_lossy())
            );
        }
        if app.verify {
            match flow.verify_replay() {
                Ok(verification) => {
                    println!("verification: {verification}");
                    if !verification.matched() {
                        return ExitCode::FAILURE;
                    }
                }
                Err(error) => {
                    eprintln!("error: cannot verify: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        ExitCode::SUCCESS
    })
}

/// `word` as one word for a POSIX shell: as it is when it holds nothing the
/// shell would read specially, in single quotes otherwise.
fn shell_quoted(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Serves the flow's live view where `--serve` says, unless `--no-serve`.
/// An address given on the command line that cannot be bound is an error;
/// the default one being taken (another flow running) only a warning.
#[cfg(feature = "http")]
async fn serve(
    flow: &FlowHandle,
    matches: &clap::ArgMatches,
) -> Result<Option<crate::flow::FlowServer>, ()> {
    if matches.get_flag("no-serve") {
        return Ok(None);
    }
    let Some(addr) = matches.get_one::<String>("serve") else {
        return Ok(None);
    };
    match flow.serve(addr.as_str()).await {
        Ok(server) => {
            eprintln!(
                "serving http://{0}/metrics, http://{0}/topology and http://{0}/health",
                server.local_addr()
            );
            Ok(Some(server))
        }
        Err(error) => {
            let by_default =
                matches.value_source("serve") == Some(clap::parser::ValueSource::DefaultValue);
            if by_default {
                eprintln!(
                    "warning: cannot serve on {addr} ({error}); use --serve ADDR to pick another address"
                );
                Ok(None)
            } else {
                eprintln!("error: cannot serve on {addr}: {error}");
                Err(())
            }
        }
    }
}

/// Ctrl-C notifications, listened for from before the flow is built: a
/// SIGINT that came before the listener would end the process at once.
struct Interrupts {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn listen() -> Self {
        Interrupts {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
        }
    }

    /// The next Ctrl-C.
    async fn next(&mut self) {
        #[cfg(unix)]
        match &mut self.signal {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs the flow with a progress line, stopping gracefully on the first
/// Ctrl-C and cancelling on the second.
async fn drive(
    flow: &mut FlowHandle,
    app: &App,
    ctrl_c: &mut Interrupts,
) -> Result<FlowReport, FlowError> {
    flow.start()?;
    // A bar when every source says how many events it will produce, a
    // counting spinner otherwise.
    let progress = match flow.expected_source_events() {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::new_spinner(),
    };
    progress.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    if let Ok(style) = indicatif::ProgressStyle::with_template(if progress.length().is_some() {
        "{bar:30} {pos}/{len} events read, {msg}"
    } else {
        "{spinner} {pos} events read, {msg}"
    }) {
        progress.set_style(style);
    }
    let sources: Vec<String> = flow
        .topology()
        .stages
        .iter()
        .filter(|stage| stage.kind == StageKind::Source)
        .map(|stage| stage.name.clone())
        .collect();
    let mut interrupts = 0;
    let control = flow.control();
    let mut state = flow.watch();
    while !flow.state().is_terminal() {
        let report = flow.report();
        let read: u64 = report
            .stages
            .iter()
            .filter(|stage| sources.contains(&stage.name))
            .map(|stage| stage.events_out)
            .sum();
        progress.set_position(read);
        progress.set_message(format!("{} in the error lane", report.errors.len()));
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = state.changed() => {}
            () = ctrl_c.next() => {
                interrupts += 1;
                if interrupts == 1 {
                    progress.suspend(|| eprintln!(
                        "stopping: draining what is in flight (up to {:.0} s); Ctrl-C again to cancel",
                        app.stop_timeout.as_secs_f64()
                    ));
                    control.request_stop(app.stop_timeout);
                } else {
                    progress.suspend(|| eprintln!("cancelling"));
                    control.request_cancel();
                }
            }
        }
    }
    progress.finish_and_clear();
    flow.wait().await
}

#[cfg(test)]
mod tests {
    use super::{Program, shell_quoted};
    use clap::{Arg, Command};

    fn program() -> Program {
        Program::new("Delays by hour")
            .flow("hourly-delays")
            .arg(
                Arg::new("postgres")
                    .long("postgres")
                    .value_name("URL")
                    .help("Also write to PostgreSQL"),
            )
            .subcommand(Command::new("list").about("Lists the airports"), |_| {
                std::process::ExitCode::SUCCESS
            })
            .env("OUT", "where to write")
    }

    #[test]
    fn help_names_the_flow_and_lists_the_programs_options_above_the_runners() {
        let help = program().command().render_help().to_string();
        assert!(
            help.starts_with("Delays by hour\n(runs the flow `hourly-delays`)"),
            "{help}"
        );
        let own = help.find("Options:").expect(&help);
        let runner = help.find("Runner options:").expect(&help);
        assert!(own < runner, "{help}");
        let postgres = help.find("--postgres <URL>").expect(&help);
        assert!(own < postgres && postgres < runner, "{help}");
        assert!(help[runner..].contains("--journal-dir <DIR>"), "{help}");
        assert!(help[runner..].contains("--errors-to <FILE>"), "{help}");
        assert!(
            help.contains("list") && help.contains("Lists the airports"),
            "{help}"
        );
        assert!(
            help.contains("Environment:\n  OUT  where to write"),
            "{help}"
        );
    }

    #[test]
    fn the_programs_options_reach_the_app() {
        let mut program = program();
        let matches = program
            .command()
            .try_get_matches_from(["prog", "--postgres", "host=db", "--memory"])
            .unwrap();
        let app = super::App {
            matches,
            journal_dir: None,
            replay_from: None,
            resume_from: None,
            verify: false,
            replay: Default::default(),
            stop_timeout: std::time::Duration::ZERO,
        };
        assert_eq!(
            app.value::<String>("postgres").map(String::as_str),
            Some("host=db")
        );
        assert_eq!(app.value::<String>("no-such-option"), None);
        assert!(app.flag("memory"));
        assert!(!app.flag("verify"));
    }

    #[test]
    fn words_the_shell_would_split_or_run_are_quoted() {
        assert_eq!(
            shell_quoted("target/obzenflow/run-1"),
            "target/obzenflow/run-1"
        );
        assert_eq!(shell_quoted("a b"), "'a b'");
        assert_eq!(shell_quoted("x;rm -rf y"), "'x;rm -rf y'");
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
        assert_eq!(shell_quoted("$HOME"), "'$HOME'");
        assert_eq!(shell_quoted(""), "''");
    }
}
