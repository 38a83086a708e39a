//! The writer connection and the thread that runs owned change sets on it.
//!
//! SQLite calls block. [`Store::apply`](crm_core::store::Store::apply) runs
//! its transaction on the caller's thread; `apply_owned` hands the change set
//! to a thread of the store's own and the caller's task waits without
//! blocking, so it can prepare its next write meanwhile (a bulk import
//! validates and builds batch N+1 while batch N is written). Jobs run one
//! after the other in the order they were sent; every other write takes the
//! same connection's mutex, so writes stay serialised.

use crate::checkpoint::Checkpointer;
use crate::error;
use crm_core::store::StoreError;
use rusqlite::{Connection, TransactionBehavior};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// The writer connection and what it tells the checkpointer.
pub(crate) struct Writer {
    /// Background WAL checkpoints (file-backed stores); dropped, and its
    /// thread joined, before the connection closes.
    checkpointer: Option<Checkpointer>,
    conn: Mutex<Connection>,
}

impl Writer {
    pub(crate) fn new(conn: Connection, checkpointer: Option<Checkpointer>) -> Writer {
        Writer {
            checkpointer,
            conn: Mutex::new(conn),
        }
    }

    /// The connection, waiting for it when another write holds it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// Runs `f` in an IMMEDIATE transaction and commits when it succeeds;
    /// rolls back otherwise.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error::backend)?;
        let before = tx.total_changes();
        let out = f(&tx)?;
        let rows = usize::try_from(tx.total_changes().saturating_sub(before)).unwrap_or(0);
        tx.commit().map_err(error::backend)?;
        if let Some(c) = &self.checkpointer {
            c.committed(rows);
        }
        Ok(out)
    }
}

/// Locks a connection's mutex.
pub(crate) fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding a connection leaves no transaction open (the
    // transaction guard rolls back on unwind), so the connection is usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type Job = Box<dyn FnOnce() + Send>;

/// The thread running `apply_owned` jobs; stopped and joined on drop.
pub(crate) struct WriterThread {
    jobs: Option<flume::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl WriterThread {
    pub(crate) fn start() -> std::io::Result<WriterThread> {
        let (jobs, queue) = flume::unbounded::<Job>();
        let thread = std::thread::Builder::new()
            .name("crm-sqlite-writer".into())
            .spawn(move || {
                for job in queue.iter() {
                    // A panicking job drops its reply sender, which its
                    // caller reports as an error; later jobs still run.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            })?;
        Ok(WriterThread {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the thread and waits for its result without blocking the
    /// caller's thread.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = flume::bounded(1);
        let job: Job = Box::new(move || {
            let _ = reply.send(f());
        });
        let sent = self.jobs.as_ref().map(|j| j.send(job).is_ok());
        if sent != Some(true) {
            return Err(stopped());
        }
        answer
            .recv_async()
            .await
            .unwrap_or_else(|_| Err(panicked()))
    }
}

fn stopped() -> StoreError {
    StoreError::Backend {
        backend: crate::BACKEND,
        source: "the SQLite writer thread has stopped".into(),
    }
}

/// A job dropped its reply without answering: it panicked (and its
/// transaction rolled back); the thread goes on with the next job.
fn panicked() -> StoreError {
    StoreError::Backend {
        backend: crate::BACKEND,
        source: "the write panicked on the SQLite writer thread and was rolled back".into(),
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        // Closing the queue ends the thread once the queued jobs ran.
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
