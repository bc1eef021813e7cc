//! Helpers shared by the integration tests.

/// Yields to the runtime until `done` holds; bounded (a minute), so that a
/// bug fails the test instead of hanging it. The bound is wall-clock time,
/// not a count of yields: how many yields the flow under test needs
/// depends on how busy the machine is (the test binary's other tests run
/// beside it), and a debug build on two cores needed more than a million.
pub(crate) async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the condition was not reached within a minute");
}
