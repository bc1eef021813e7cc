//! Actions: the effects a transition asks for, run by the caller, in order,
//! after the state has changed.

use super::error::ActionFailed;
use std::convert::Infallible;
use std::future::Future;

/// An effect of a transition, executed asynchronously against the machine's context.
///
/// Handlers stay pure (they only read the context); actions are where the
/// context changes and the world is touched.
///
/// ```
/// use obzenflow::fsm::FsmAction;
///
/// enum Counter { Add(u32) }
///
/// impl FsmAction<u32> for Counter {
///     type Error = std::convert::Infallible;
///     async fn execute(&self, total: &mut u32) -> Result<(), Self::Error> {
///         let Counter::Add(n) = self;
///         *total += n;
///         Ok(())
///     }
/// }
/// ```
pub trait FsmAction<C>: Send {
    /// What a failing action returns.
    type Error;
    /// Runs the action.
    fn execute(&self, context: &mut C) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The action type of a machine that declares none: it has no values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoAction {}

impl<C> FsmAction<C> for NoAction {
    type Error = Infallible;

    // Written out rather than as `async fn`, which would capture the context
    // and so require `C: Send` of every machine without actions.
    #[allow(clippy::manual_async_fn)]
    fn execute(&self, _context: &mut C) -> impl Future<Output = Result<(), Infallible>> + Send {
        async move { match *self {} }
    }
}

/// Executes `actions` one after another, stopping at the first that fails.
///
/// ```
/// # use obzenflow::fsm::{FsmAction, execute_actions};
/// # struct Push(u8);
/// # impl FsmAction<Vec<u8>> for Push {
/// #     type Error = std::convert::Infallible;
/// #     async fn execute(&self, log: &mut Vec<u8>) -> Result<(), Self::Error> { log.push(self.0); Ok(()) }
/// # }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut log = Vec::new();
/// execute_actions(vec![Push(1), Push(2)], &mut log).await.unwrap();
/// assert_eq!(log, [1, 2]);
/// # });
/// ```
pub async fn execute_actions<C, A: FsmAction<C>>(
    actions: Vec<A>,
    context: &mut C,
) -> Result<(), ActionFailed<A::Error>> {
    let total = actions.len();
    for (index, action) in actions.iter().enumerate() {
        action
            .execute(context)
            .await
            .map_err(|source| ActionFailed {
                index,
                total,
                source,
            })?;
    }
    Ok(())
}
