//! [`Ticket`]: the promise an append returns, and [`Failure`], the log's first I/O error,
//! which every later ticket carries.

use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;

use crate::persist::PersistError;

/// What the writer thread answers a queued record or command with.
pub(super) type Ack = oneshot::Sender<Result<(), Arc<PersistError>>>;

/// Completes when a record (or a command) is as durable as the fsync mode promises.
#[derive(Debug)]
#[must_use = "a write is acknowledged only once its ticket completes"]
pub struct Ticket(TicketState);

#[derive(Debug)]
enum TicketState {
    Done,
    Failed(Arc<PersistError>),
    Pending(oneshot::Receiver<Result<(), Arc<PersistError>>>),
}

impl Ticket {
    /// A ticket that is already complete (no log, or a record already written).
    pub fn done() -> Self {
        Self(TicketState::Done)
    }

    /// A ticket that failed: the log refused the write.
    pub(super) fn failed(failure: Arc<PersistError>) -> Self {
        Self(TicketState::Failed(failure))
    }

    /// A ticket the writer thread completes through `Ack`.
    pub(super) fn pending() -> (Ack, Self) {
        let (ack, rx) = oneshot::channel();
        (ack, Self(TicketState::Pending(rx)))
    }

    /// Waits, blocking the thread. Not for async tasks: use [`Ticket::wait_async`].
    pub fn wait(self) -> Result<(), PersistError> {
        match self.0 {
            TicketState::Done => Ok(()),
            TicketState::Failed(e) => Err(PersistError::Failed(e)),
            TicketState::Pending(rx) => answer(rx.blocking_recv()),
        }
    }

    /// Waits without blocking the thread.
    pub async fn wait_async(self) -> Result<(), PersistError> {
        match self.0 {
            TicketState::Done => Ok(()),
            TicketState::Failed(e) => Err(PersistError::Failed(e)),
            TicketState::Pending(rx) => answer(rx.await),
        }
    }
}

fn answer(
    received: Result<Result<(), Arc<PersistError>>, oneshot::error::RecvError>,
) -> Result<(), PersistError> {
    match received {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(PersistError::Failed(e)),
        Err(_) => Err(PersistError::WriterStopped),
    }
}

/// The log's first I/O failure, shared by appenders and the writer thread. A log that
/// missed a write must not accept later ones, so once set it refuses everything after.
#[derive(Debug, Clone, Default)]
pub(super) struct Failure(Arc<OnceLock<Arc<PersistError>>>);

impl Failure {
    /// The failure, if the log has failed.
    pub(super) fn get(&self) -> Option<&Arc<PersistError>> {
        self.0.get()
    }

    /// Records `error` unless a failure came first; returns the first.
    pub(super) fn record(&self, error: PersistError) -> Arc<PersistError> {
        tracing::error!(%error, "write-ahead log failed; refusing further writes");
        self.0.get_or_init(|| Arc::new(error)).clone()
    }

    /// What a queued record or command is answered with.
    pub(super) fn reply(&self, ack: Ack) {
        let _ = ack.send(match self.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        });
    }
}
