//! The single writer thread and group commit.
//!
//! Writes go through one thread that drains every pending write request
//! into a single write transaction, commits it with
//! `Durability::Immediate` (fsync), and only then answers each request:
//! many concurrent sends and acknowledgements cost one fsync, and the
//! `users` and `mailbox` tables are opened once per batch. Reads run on the
//! blocking pool in their own read transactions and never wait for writes.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;

use redb::{Database, Durability, ReadTransaction, ReadableDatabase, WriteTransaction};
use tokio::sync::oneshot;

use super::RedbStore;
use super::schema::{MAILBOX, MailboxTable, USERS, UsersTable, be};
use crate::store::StoreError;

/// Most write requests folded into one transaction.
const MAX_BATCH: usize = 4096;

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Apply = Box<dyn FnOnce(&mut Batch<'_>) -> (Completion, Result<(), StoreError>) + Send>;

/// A write request: applies itself to the batch's transaction, and returns
/// how to answer once the batch's commit is known.
pub(super) struct Job {
    apply: Apply,
}

/// One batch's write transaction, with the two tables every send and
/// acknowledgement touches opened once per batch rather than once per job.
pub(super) struct Batch<'t> {
    txn: &'t WriteTransaction,
    mail: Option<(UsersTable<'t>, MailboxTable<'t>)>,
}

impl<'t> Batch<'t> {
    /// The `users` and `mailbox` tables, open until a job needs the bare
    /// transaction.
    fn mail(&mut self) -> Result<&mut (UsersTable<'t>, MailboxTable<'t>), StoreError> {
        let tables = match self.mail.take() {
            Some(t) => t,
            None => (
                self.txn.open_table(USERS).map_err(be("open users"))?,
                self.txn.open_table(MAILBOX).map_err(be("open mailbox"))?,
            ),
        };
        Ok(self.mail.insert(tables))
    }

    /// The transaction, after closing the cached tables (a table can be
    /// open only once in a transaction).
    fn txn(&mut self) -> &'t WriteTransaction {
        self.mail = None;
        self.txn
    }
}

/// The writer thread's loop: waits for a job, takes every job already
/// queued (up to [`MAX_BATCH`]), runs them as one batch. Ends when every
/// sender is gone.
pub(super) fn writer_loop(db: Arc<Database>, rx: mpsc::Receiver<Job>) {
    let mut queue: VecDeque<Job> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => return,
            }
        }
        while queue.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => break,
            }
        }
        run_batch(&db, &mut queue);
    }
}

/// Applies queued jobs to one transaction until one fails, commits, answers
/// them. A job that fails aborts the batch (all applied jobs get the error);
/// jobs not yet applied stay queued for the next batch. The commit is
/// fsync'd (`Durability::Immediate`).
fn run_batch(db: &Database, queue: &mut VecDeque<Job>) {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            fail_all(queue, be("begin write")(e));
            return;
        }
    };
    let mut done: Vec<Completion> = Vec::with_capacity(queue.len());
    let mut failed = None;
    {
        let mut batch = Batch {
            txn: &txn,
            mail: None,
        };
        while let Some(job) = queue.pop_front() {
            let (completion, result) = (job.apply)(&mut batch);
            done.push(completion);
            if let Err(e) = result {
                failed = Some(e);
                break;
            }
        }
    }
    let outcome = match failed {
        Some(e) => {
            let _ = txn.abort();
            Err(e)
        }
        None => commit(txn),
    };
    if let Err(e) = &outcome {
        tracing::error!(error = %e, batch = done.len(), "store write batch failed");
    }
    for c in done {
        c(outcome.clone());
    }
}

fn commit(mut txn: WriteTransaction) -> Result<(), StoreError> {
    txn.set_durability(Durability::Immediate)
        .map_err(be("set durability"))?;
    txn.commit().map_err(be("commit"))
}

fn fail_all(queue: &mut VecDeque<Job>, e: StoreError) {
    tracing::error!(error = %e, "store write transaction could not start");
    // Dropping a job drops its reply channel; the caller sees the failure.
    queue.clear();
}

impl RedbStore {
    /// Queues a write job now (before the future is first polled, so
    /// requests keep their submission order) and resolves after its batch
    /// commits durably.
    pub(super) fn write<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(op, move |b: &mut Batch<'_>| f(b.txn()))
    }

    /// [`Self::write`] for a job on the `users` and `mailbox` tables, which
    /// the batch keeps open across such jobs.
    pub(super) fn write_mail<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut UsersTable<'_>, &mut MailboxTable<'_>) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        self.submit(op, move |b: &mut Batch<'_>| {
            let (users, mailbox) = b.mail()?;
            f(users, mailbox)
        })
    }

    fn submit<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let apply: Apply = Box::new(move |batch| match f(batch) {
            Ok(v) => (
                Box::new(move |commit: Result<(), StoreError>| {
                    let _ = reply.send(commit.map(|()| v));
                }) as Completion,
                Ok(()),
            ),
            Err(e) => {
                let e2 = e.clone();
                (
                    Box::new(move |_| {
                        let _ = reply.send(Err(e2));
                    }) as Completion,
                    Err(e),
                )
            }
        });
        let job = Job { apply };
        let queued = match &self.jobs {
            Some(jobs) => jobs.send(job).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        };
        async move {
            queued?;
            answer.await.map_err(|_| StoreError::Backend {
                op,
                detail: "write batch aborted".into(),
            })?
        }
    }

    /// Runs `f` in a read transaction on the blocking pool.
    pub(super) fn read<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        async move {
            tokio::task::spawn_blocking(move || {
                let txn = db.begin_read().map_err(be(op))?;
                f(&txn)
            })
            .await
            .map_err(be(op))?
        }
    }
}
