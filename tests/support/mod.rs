//! Helpers shared by the integration tests.

/// Yields to the runtime until `done` holds; a bounded wait, so that a bug
/// fails the test instead of hanging it.
pub(crate) async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..1_000_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the condition was not reached");
}
