//! The last error a fred client's connection reported (a refused
//! connection, a failed TLS handshake, a password refused), which a command
//! waiting on that connection only sees as a timeout — kept where the
//! limiter's health check reads it, to say why Redis is not deciding.

use std::future::Future;
use std::sync::{Arc, Mutex};

use fred::interfaces::EventInterface;

/// Where a client's last connection error is kept (`None`: none since it
/// was last cleared).
pub(crate) type LastError = Arc<Mutex<Option<String>>>;

/// Keeps each connection error `client` reports in `into`, after `label`,
/// until the client is gone. Listens from the call on (an error of the
/// first connection attempt is not missed); the returned future does the
/// keeping.
pub(crate) fn keep<C: EventInterface>(
    client: &C,
    into: LastError,
    label: String,
) -> impl Future<Output = ()> {
    let mut errors = client.error_rx();
    async move {
        loop {
            match errors.recv().await {
                Ok((e, _)) => {
                    if let Ok(mut last) = into.lock() {
                        *last = Some(format!("{label}{e}"));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
