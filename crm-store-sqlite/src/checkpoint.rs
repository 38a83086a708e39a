//! Background WAL checkpoints for file-backed stores.
//!
//! In WAL mode every commit appends pages to the `-wal` file, and SQLite's
//! automatic checkpoint copies them back into the database file — on the
//! committing connection, inside its `COMMIT`, with an `fsync`. Under a bulk
//! write (an import of 100 000 rows) that is a third of the writer's time.
//! Here a thread with a connection of its own runs `PRAGMA
//! wal_checkpoint(PASSIVE)` instead: after every [`ROWS_PER_CHECKPOINT`]
//! written rows, and within [`IDLE_CHECKPOINT`] of any other write. A
//! passive checkpoint never blocks readers or the writer; the writer's own
//! automatic checkpoint stays on at a higher threshold
//! ([`WRITER_AUTOCHECKPOINT_PAGES`]) so the WAL stays bounded even if this
//! thread falls behind.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Rows written (inserted, updated or deleted) after which the writer asks
/// for a checkpoint.
pub const ROWS_PER_CHECKPOINT: usize = 1000;

/// How soon after a smaller write its pages are checkpointed.
pub const IDLE_CHECKPOINT: Duration = Duration::from_millis(500);

/// The writer connection's `wal_autocheckpoint`, in pages: a safety net
/// well above what the background checkpoints leave in the WAL (about
/// 62 MiB with the 8 KiB pages of a database this store creates).
pub const WRITER_AUTOCHECKPOINT_PAGES: i64 = 8000;

/// The checkpoint thread and what the writer tells it.
pub(crate) struct Checkpointer {
    signal: Option<SyncSender<()>>,
    dirty: Arc<AtomicBool>,
    rows: AtomicUsize,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection to the database at `path` and starts the thread.
    pub(crate) fn start(path: &Path) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let (signal, wake) = sync_channel(1);
        let dirty = Arc::new(AtomicBool::new(false));
        let flag = dirty.clone();
        let thread = std::thread::Builder::new()
            .name("crm-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &wake, &flag))
            .map_err(crate::thread_error)?;
        Ok(Checkpointer {
            signal: Some(signal),
            dirty,
            rows: AtomicUsize::new(0),
            thread: Some(thread),
        })
    }

    /// Called by the writer after each commit with the number of rows it
    /// wrote.
    pub(crate) fn committed(&self, rows: usize) {
        self.dirty.store(true, Ordering::Release);
        let total = self.rows.fetch_add(rows, Ordering::AcqRel) + rows;
        if total >= ROWS_PER_CHECKPOINT {
            self.rows.store(0, Ordering::Release);
            if let Some(s) = &self.signal {
                // A full channel means a checkpoint is already due.
                let _ = s.try_send(());
            }
        }
    }
}

fn run(conn: &Connection, wake: &Receiver<()>, dirty: &AtomicBool) {
    loop {
        match wake.recv_timeout(IDLE_CHECKPOINT) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => {
                if !dirty.load(Ordering::Acquire) {
                    continue;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        dirty.store(false, Ordering::Release);
        // Failures (a busy checkpointer lock, an I/O error the writer will
        // also meet) only delay the checkpoint; the writer's automatic
        // checkpoint remains.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.signal.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
