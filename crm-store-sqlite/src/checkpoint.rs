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
//!
//! The same thread keeps the planner's statistics: after every
//! [`ROWS_PER_ANALYZE`] written rows it runs `PRAGMA optimize`, which
//! analyzes (with a bounded sample) the tables that have no statistics yet
//! or have grown or shrunk a lot since. Without them SQLite guesses, and
//! for "company = ? AND name_key = ? ORDER BY id LIMIT 1" (the duplicate
//! check of every customer created) it guesses the `(company_id, id)` index
//! and walks the whole company: 150 ms instead of 0.1 ms at 80 000
//! customers.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Rows written (inserted, updated or deleted) after which the writer asks
/// for a checkpoint.
pub const ROWS_PER_CHECKPOINT: usize = 1000;

/// Rows written after which the statistics are brought up to date
/// (`PRAGMA optimize`, which does nothing for tables that barely changed).
pub const ROWS_PER_ANALYZE: usize = 10_000;

/// What `PRAGMA optimize` does here: analyze (0x02) with a bounded sample
/// (0x10), looking at every table (0x10000), not only the ones this
/// connection queried.
pub(crate) const OPTIMIZE: &str = "PRAGMA optimize=0x10012";

/// How soon after a smaller write its pages are checkpointed.
pub const IDLE_CHECKPOINT: Duration = Duration::from_millis(500);

/// The writer connection's `wal_autocheckpoint`, in pages: a safety net
/// well above what the background checkpoints leave in the WAL.
pub const WRITER_AUTOCHECKPOINT_PAGES: i64 = 8000;

/// The checkpoint thread and what the writer tells it.
pub(crate) struct Checkpointer {
    signal: Option<SyncSender<()>>,
    dirty: Arc<AtomicBool>,
    rows: AtomicUsize,
    /// Rows written since the statistics were last brought up to date.
    unanalyzed: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection to the database at `path` and starts the thread,
    /// which counts up `stats` whenever it brought the statistics up to
    /// date (see [`refresh_stats`]).
    pub(crate) fn start(path: &Path, stats: Arc<AtomicU64>) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // ANALYZE writes its statistics: it waits this long for the writer,
        // else gives up until the next round.
        conn.busy_timeout(Duration::from_millis(100))?;
        let (signal, wake) = sync_channel(1);
        let dirty = Arc::new(AtomicBool::new(false));
        let unanalyzed = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (dirty.clone(), unanalyzed.clone());
        let thread = std::thread::Builder::new()
            .name("crm-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &wake, &flag, &count, &stats))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer {
            signal: Some(signal),
            dirty,
            rows: AtomicUsize::new(0),
            unanalyzed,
            thread: Some(thread),
        })
    }

    /// Called by the writer after each commit with the number of rows it
    /// wrote.
    pub(crate) fn committed(&self, rows: usize) {
        self.unanalyzed.fetch_add(rows, Ordering::AcqRel);
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

fn run(
    conn: &Connection,
    wake: &Receiver<()>,
    dirty: &AtomicBool,
    unanalyzed: &AtomicUsize,
    stats: &AtomicU64,
) {
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
        if unanalyzed.load(Ordering::Acquire) >= ROWS_PER_ANALYZE {
            let rows = unanalyzed.swap(0, Ordering::AcqRel);
            if conn.execute_batch(OPTIMIZE).is_ok() {
                stats.fetch_add(1, Ordering::AcqRel);
            } else {
                // The writer held on: next round.
                unanalyzed.fetch_add(rows, Ordering::AcqRel);
            }
        }
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

/// A connection loads the statistics with the schema and does not notice
/// another connection's `ANALYZE`. Returns the newer generation when
/// `current` is ahead of the one the connection has `seen`: the caller then
/// makes it load them again and stores the generation.
pub(crate) fn stale(seen: &AtomicU64, current: &AtomicU64) -> Option<u64> {
    let now = current.load(Ordering::Acquire);
    (seen.load(Ordering::Acquire) < now).then_some(now)
}
