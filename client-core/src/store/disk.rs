//! Disk backend: one redb file, `profile.redb`, in the profile directory.
//!
//! redb commits are atomic and (with the default `Immediate` durability)
//! fsynced before `commit` returns: after a crash the file holds exactly the
//! last committed transaction. redb also holds an exclusive file lock while
//! the database is open; a second open (from another process or from this
//! one) fails and is reported as [`StoreError::ProfileInUse`].

use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, TableDefinition};

use super::StoreError;
use super::backend::{Backend, Pairs, RawBatch, RawOp, ScanOrder, Table, prefix_end};

/// File name of the database inside a profile directory.
pub const PROFILE_FILE: &str = "profile.redb";

const HEADER_KEY: &[u8] = b"header";

type RangeItem<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

fn def(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

/// A profile database file, open and locked.
pub struct DiskBackend {
    db: Database,
    dir: PathBuf,
}

impl fmt::Debug for DiskBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskBackend")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn map_db_err(e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::ProfileInUse,
        redb::DatabaseError::Storage(s) => map_storage(s),
        other => StoreError::Database(other.to_string()),
    }
}

fn map_storage(e: redb::StorageError) -> StoreError {
    match e {
        redb::StorageError::Corrupted(what) => {
            StoreError::corrupt(format!("database file: {what}"))
        }
        redb::StorageError::Io(io) => StoreError::Io(io),
        other => StoreError::Database(other.to_string()),
    }
}

fn map_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(what) => StoreError::corrupt(format!("database file: {what}")),
        redb::Error::Io(io) => StoreError::Io(io),
        redb::Error::DatabaseAlreadyOpen => StoreError::ProfileInUse,
        other => StoreError::Database(other.to_string()),
    }
}

impl DiskBackend {
    /// The directory this backend's file lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens (creating if needed) the database file for a new profile in
    /// `dir`, creating `dir` (mode 0700 on Unix) if it does not exist.
    ///
    /// Fails with [`StoreError::ProfileExists`] if the directory already
    /// holds a profile. A database file without a header is what an
    /// interrupted create leaves behind (the header is written in the same
    /// transaction as the first records); it holds nothing and is reused.
    pub fn create(dir: &Path) -> Result<DiskBackend, StoreError> {
        create_private_dir(dir)?;
        let path = dir.join(PROFILE_FILE);
        let db = guarded(|| builder().create(&path).map_err(map_db_err))?;
        let backend = DiskBackend {
            db,
            dir: dir.to_path_buf(),
        };
        if backend.get(Table::Meta, HEADER_KEY)?.is_some() {
            return Err(StoreError::ProfileExists {
                path: dir.to_path_buf(),
            });
        }
        // Create every table so readers never meet a missing one.
        let mut txn = backend.db.begin_write().map_err(map_err)?;
        durable(&mut txn)?;
        for t in Table::ALL {
            txn.open_table(def(t)).map_err(map_err)?;
        }
        txn.commit().map_err(map_err)?;
        Ok(backend)
    }

    /// Opens the database of an existing profile in `dir`.
    pub fn open(dir: &Path) -> Result<DiskBackend, StoreError> {
        let path = dir.join(PROFILE_FILE);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(StoreError::corrupt(format!(
                    "{} is not a file",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::ProfileMissing {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(StoreError::Io(e)),
        }
        let db = guarded(|| builder().open(&path).map_err(map_db_err))?;
        let backend = DiskBackend {
            db,
            dir: dir.to_path_buf(),
        };
        if backend.get(Table::Meta, HEADER_KEY)?.is_none() {
            return Err(StoreError::ProfileMissing {
                path: dir.to_path_buf(),
            });
        }
        Ok(backend)
    }
}

/// Runs a redb operation, turning a panic into [`StoreError::Corrupt`].
/// redb panics on some kinds of damaged pages instead of returning an
/// error; a damaged profile file is input the user does not control, so it
/// must end in a typed error, not a crash.
fn guarded<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(StoreError::corrupt(
            "the profile database is damaged (its storage engine could not read it)",
        ))
    })
}

/// Page cache bound: a profile is small, redb's default (1 GiB) is meant
/// for servers.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

fn builder() -> redb::Builder {
    // `ExclusiveWriter` (the default concurrency mode) locks the whole file:
    // that lock is what turns a second open into `ProfileInUse`.
    let mut b = Database::builder();
    b.set_cache_size(CACHE_BYTES);
    b
}

/// Every commit is fsynced before it returns (`Immediate`) and uses redb's
/// two-phase commit (data and commit slot fsynced before the commit slot is
/// activated), so a crash or torn write at any point leaves the previous
/// commit in force rather than relying on checksums alone.
fn durable(txn: &mut redb::WriteTransaction) -> Result<(), StoreError> {
    txn.set_durability(redb::Durability::Immediate)
        .map_err(|e| StoreError::Database(e.to_string()))?;
    txn.set_two_phase_commit(true);
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir)?;
    Ok(())
}

impl Backend for DiskBackend {
    fn location(&self) -> PathBuf {
        self.dir.clone()
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        guarded(|| {
            let txn = self.db.begin_read().map_err(map_err)?;
            let t = match txn.open_table(def(table)) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(map_err(e)),
            };
            Ok(t.get(key).map_err(map_storage)?.map(|v| v.value().to_vec()))
        })
    }

    fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        order: ScanOrder,
        limit: Option<usize>,
    ) -> Result<Pairs, StoreError> {
        guarded(|| {
            let txn = self.db.begin_read().map_err(map_err)?;
            let t = match txn.open_table(def(table)) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(map_err(e)),
            };
            let end = prefix_end(prefix);
            let upper = match &end {
                Some(end) => Bound::Excluded(end.as_slice()),
                None => Bound::Unbounded,
            };
            let range = t
                .range::<&[u8]>((Bound::Included(prefix), upper))
                .map_err(map_storage)?;
            let limit = limit.unwrap_or(usize::MAX);
            let mut out = Vec::new();
            let mut push = |item: RangeItem<'_>| {
                let (k, v) = item.map_err(map_storage)?;
                out.push((k.value().to_vec(), v.value().to_vec()));
                Ok::<(), StoreError>(())
            };
            match order {
                ScanOrder::Ascending => {
                    for item in range.take(limit) {
                        push(item)?;
                    }
                }
                ScanOrder::Descending => {
                    for item in range.rev().take(limit) {
                        push(item)?;
                    }
                }
            }
            Ok(out)
        })
    }

    fn apply(&mut self, batch: RawBatch) -> Result<(), StoreError> {
        guarded(|| {
            let mut txn = self.db.begin_write().map_err(map_err)?;
            durable(&mut txn)?;
            // Any early return below drops `txn` uncommitted: redb then discards
            // every write of the batch.
            for op in &batch.ops {
                match op {
                    RawOp::Put { table, key, value } => {
                        let mut t = txn.open_table(def(*table)).map_err(map_err)?;
                        t.insert(key.as_slice(), value.as_slice())
                            .map_err(map_storage)?;
                    }
                    RawOp::Delete { table, key } => {
                        let mut t = txn.open_table(def(*table)).map_err(map_err)?;
                        t.remove(key.as_slice()).map_err(map_storage)?;
                    }
                }
            }
            txn.commit().map_err(map_err)?;
            Ok(())
        })
    }

    /// redb's [`Database::compact`]: moves live pages down into free ones
    /// and truncates the file after the last live page (with two-phase,
    /// fsynced commits, so a crash during it loses nothing). It does not
    /// overwrite pages it leaves free; see `docs/store.md` for what that
    /// means after a passphrase change.
    fn compact(&mut self) -> Result<(), StoreError> {
        guarded(|| {
            self.db.compact().map_err(map_err)?;
            Ok(())
        })
    }
}
