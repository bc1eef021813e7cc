//! A child process for the crash test: runs a disk-journaled flow with an
//! endless source until it is killed. Usage: `crash_writer BASE_DIR`.

#[path = "../support/crash_flow.rs"]
mod crash_flow;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(base) = std::env::args().nth(1) else {
        eprintln!("usage: crash_writer BASE_DIR");
        std::process::exit(2);
    };
    let mut flow = crash_flow::crash_flow(base);
    // Said once the run directory and its manifest exist: the test kills
    // the writer while it writes, not while it starts.
    if let Err(error) = flow.start() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
    println!("started");
    let _ = flow.wait().await;
}
