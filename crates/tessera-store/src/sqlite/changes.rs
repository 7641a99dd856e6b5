//! The `<database>-changes` file: an 8-byte little-endian counter that every process on
//! one SQLite file bumps after a write other processes must hear of, so that each can tell
//! with one `pread` whether another one wrote ([`ChangeSignal`]).
//!
//! A bump takes an exclusive advisory lock on the file, reads the counter and writes it
//! plus the number of writes it reports (the writer thread bumps once per committed batch,
//! by the writes of the batch that other processes must hear of). A process remembers the
//! value it last saw or wrote (`expected`): finding any other value means another process
//! bumped it meanwhile. A look that finds the expected value takes no lock (it runs on every
//! lookup, on every worker thread); only a look that finds another one waits for a bump of
//! this process in progress, before it decides. Every doubt (an I/O error, a
//! garbled or truncated file) counts as a foreign change, since a spurious one only costs
//! cache hits. The counter need not survive a crash: no cache does either.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tessera_core::StoreError;
use tessera_core::store::ChangeSignal;

const COUNTER_BYTES: usize = 8;

/// This process's handle on the `-changes` file.
#[derive(Debug)]
pub(crate) struct ChangeFile {
    path: PathBuf,
    file: File,
    /// The counter as this process last saw or wrote it. Set only under `bumping`, and
    /// only after `foreign` counts whatever the new value reveals, so a look that finds the
    /// counter equal to it knows `foreign` is up to date.
    expected: AtomicU64,
    /// Changes made by other processes (or suspected), ever.
    foreign: AtomicU64,
    /// Held by a bump from before it reads the counter until `expected` has taken its own
    /// increment in, and by a look that found an unexpected value, so such a look never
    /// finds this process's bump alone and takes it for another process's write (which
    /// empties the lookup cache). It also serialises this process's bumps: the advisory
    /// lock belongs to the open file, which all of them share, so it does not keep them
    /// apart.
    bumping: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent at every point a panic could unwind through.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `<database>-changes`.
pub(crate) fn path_for(database: &Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push("-changes");
    PathBuf::from(path)
}

impl ChangeFile {
    /// Opens the file beside `database`, creating it (mode 0600) if missing. Bumps made
    /// before now are nobody's concern.
    pub(crate) fn open(database: &Path) -> io::Result<Self> {
        let path = path_for(database);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        let expected = read_counter(&file)?;
        Ok(Self {
            path,
            file,
            expected: AtomicU64::new(expected),
            foreign: AtomicU64::new(0),
            bumping: Mutex::new(()),
        })
    }

    /// Tells other processes this one made `writes` changes, with one bump of that size.
    /// Blocking (the lock may be held by another process for a moment): the writer thread
    /// calls it once per committed batch.
    pub(crate) fn bump(&self, writes: u64) -> Result<(), StoreError> {
        self.bump_blocking(writes).map_err(|error| {
            tracing::error!(
                path = %self.path.display(),
                %error,
                "cannot bump the change counter; answering the write as unavailable"
            );
            StoreError::Unavailable(format!(
                "cannot bump the change counter {}: {error}",
                self.path.display()
            ))
        })
    }

    fn bump_blocking(&self, writes: u64) -> io::Result<()> {
        let _bumping = lock(&self.bumping);
        match self.locked_increment(writes) {
            Ok(found) => {
                if found != self.expected.load(Ordering::SeqCst) {
                    self.foreign.fetch_add(1, Ordering::SeqCst);
                }
                self.expected
                    .store(found.wrapping_add(writes), Ordering::SeqCst);
                Ok(())
            }
            Err(error) => {
                self.foreign.fetch_add(1, Ordering::SeqCst);
                Err(error)
            }
        }
    }

    /// Under the file lock, reads the counter and writes it plus `writes`; returns what it
    /// read.
    fn locked_increment(&self, writes: u64) -> io::Result<u64> {
        self.file.lock()?;
        let incremented = read_counter(&self.file).and_then(|found| {
            self.file
                .write_all_at(&found.wrapping_add(writes).to_le_bytes(), 0)
                .map(|()| found)
        });
        let unlocked = self.file.unlock();
        let found = incremented?;
        unlocked?;
        Ok(found)
    }
}

impl ChangeSignal for ChangeFile {
    fn foreign_changes(&self) -> u64 {
        // No file lock: a bump writes 8 bytes at once, and a torn read only adds a
        // spurious change. The counter only grows, so finding the value this process
        // expects means nobody bumped it since, and `foreign` already counts everything
        // before.
        if read_counter(&self.file).is_ok_and(|found| found == self.expected.load(Ordering::SeqCst))
        {
            return self.foreign.load(Ordering::SeqCst);
        }
        // Another value, or none: read again once no bump of this process is under way,
        // so that it is either wholly before the read or wholly after it.
        let _bumping = lock(&self.bumping);
        match read_counter(&self.file) {
            Ok(found) if found == self.expected.load(Ordering::SeqCst) => {}
            Ok(found) => {
                self.foreign.fetch_add(1, Ordering::SeqCst);
                self.expected.store(found, Ordering::SeqCst);
            }
            Err(_) => {
                self.foreign.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.foreign.load(Ordering::SeqCst)
    }
}

/// The counter; bytes missing from a short file read as zero.
fn read_counter(file: &File) -> io::Result<u64> {
    let mut bytes = [0; COUNTER_BYTES];
    let mut filled = 0;
    while filled < COUNTER_BYTES {
        match file.read_at(&mut bytes[filled..], filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer thread bumps after every batch while lookups look at the counter: none
    /// of those looks may take this process's own bumps for another process's writes.
    #[test]
    fn own_bumps_are_never_taken_for_foreign_writes() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::TempDir::new()?;
        let changes = std::sync::Arc::new(ChangeFile::open(&dir.path().join("tessera.db"))?);
        let bumper = std::thread::spawn({
            let changes = std::sync::Arc::clone(&changes);
            move || -> Result<(), StoreError> {
                for _ in 0..20_000 {
                    changes.bump(1)?;
                }
                Ok(())
            }
        });
        while !bumper.is_finished() {
            assert_eq!(changes.foreign_changes(), 0);
        }
        bumper.join().map_err(|_| "the bumping thread panicked")??;
        assert_eq!(changes.foreign_changes(), 0);

        // A bump by another process, which has a handle of its own, still counts.
        ChangeFile::open(&dir.path().join("tessera.db"))?.bump(1)?;
        assert_eq!(changes.foreign_changes(), 1);
        Ok(())
    }
}
