//! Encoding a stateful handler's state for its snapshots (see
//! [`Stateful::snapshot`](super::Stateful::snapshot)): compact binary
//! (postcard), the encoding the journals use.
//!
//! ```
//! use obzenflow::stage::state;
//! let counts = vec![("EV".to_owned(), 3u64)];
//! let bytes = state::encode(&counts).unwrap();
//! let back: Vec<(String, u64)> = state::decode(&bytes).unwrap();
//! assert_eq!(back, counts);
//! ```

use super::StageError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes a state.
pub fn encode<S: Serialize + ?Sized>(state: &S) -> Result<Vec<u8>, StageError> {
    postcard::to_allocvec(state)
        .map_err(|error| StageError::fatal(format!("cannot encode the state: {error}")))
}

/// Decodes a state [`encode`] gave.
pub fn decode<S: DeserializeOwned>(bytes: &[u8]) -> Result<S, StageError> {
    postcard::from_bytes(bytes).map_err(|error| {
        StageError::fatal(format!(
            "cannot decode the snapshot of the state (was the state's type changed?): {error}"
        ))
    })
}
