//! The token MAC key file: where it lives by default, reading it, and creating it on first
//! start with mode 0600 so that two processes starting at once agree on one key.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tessera_core::token::TokenKeys;

/// Name of the key file created beside the SQLite database.
const KEY_FILE_NAME: &str = "tessera.key";

/// Where the key file lives when `--token-key-file` is not given: beside the SQLite
/// database file, or in `./tessera-data/` for stores that are not a local file.
pub fn default_path(sqlite_file: Option<&Path>) -> PathBuf {
    match sqlite_file.map(Path::parent) {
        Some(Some(folder)) if !folder.as_os_str().is_empty() => folder.join(KEY_FILE_NAME),
        Some(_) => PathBuf::from(KEY_FILE_NAME),
        None => Path::new("tessera-data").join(KEY_FILE_NAME),
    }
}

/// Reads the key file at `path`, creating it with one fresh key when it does not exist.
pub fn load_or_create(path: &Path) -> anyhow::Result<TokenKeys> {
    match fs::metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if create(path)? {
                tracing::info!(path = %path.display(), "created a new token key file");
            }
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read key file {}", path.display()));
        }
    }
    read(path)
}

/// Reads and parses an existing key file, warning when others may read it.
fn read(path: &Path) -> anyhow::Result<TokenKeys> {
    let metadata =
        fs::metadata(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        // Not refused: secrets mounted by orchestrators are often 0644 inside a private
        // volume. But whoever can read this file can mint tokens, so say so loudly.
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "the token key file is accessible to group or others; anyone who can read it can \
             forge tokens (chmod 600 it)"
        );
    }
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    TokenKeys::parse(&text).with_context(|| format!("invalid key file {}", path.display()))
}

/// Creates the key file with a fresh key. The text is written to a private temporary file
/// first and then hard-linked into place, which fails if the name exists: a concurrent
/// reader never sees a half-written file, and when another process wins the race its key
/// is kept. Returns whether this call created the file.
fn create(path: &Path) -> anyhow::Result<bool> {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
        _ => PathBuf::from("."),
    };
    crate::store::create_private_folder(&folder)?;
    let text = TokenKeys::generate_file().context("cannot generate a token key")?;
    let suffix = tessera_core::id::random_hex(8).context("cannot name a temporary file")?;
    let temporary = folder.join(format!(
        ".{KEY_FILE_NAME}.{}.{suffix}.tmp",
        std::process::id()
    ));
    let written = write_private(&temporary, text.expose().as_bytes());
    let linked = written.and_then(|()| fs::hard_link(&temporary, path));
    // The temporary name is removed whatever happened; failing to remove it is harmless.
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            sync_folder(&folder);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot create key file {}", path.display())),
    }
}

/// Writes `bytes` to a new file readable and writable by its owner only, and syncs it.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a new directory entry durable; best effort, as not every filesystem allows
/// syncing a directory.
fn sync_folder(folder: &Path) {
    if let Ok(dir) = fs::File::open(folder) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_key_file_sits_beside_the_database() {
        assert_eq!(
            default_path(Some(Path::new("/var/lib/tessera/t.db"))),
            PathBuf::from("/var/lib/tessera/tessera.key")
        );
        assert_eq!(
            default_path(Some(Path::new("t.db"))),
            PathBuf::from("tessera.key")
        );
        assert_eq!(
            default_path(None),
            PathBuf::from("tessera-data/tessera.key")
        );
    }

    #[test]
    fn a_missing_key_file_is_created_private_and_then_reused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nested").join("tessera.key");
        let first = load_or_create(&path)?;
        let mode = fs::metadata(&path)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let folder_mode = fs::metadata(dir.path().join("nested"))?
            .permissions()
            .mode();
        assert_eq!(folder_mode & 0o777, 0o700);
        let second = load_or_create(&path)?;
        assert_eq!(first.signing_key_id(), second.signing_key_id());
        let leftovers = fs::read_dir(path.parent().unwrap_or(dir.path()))?.count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        Ok(())
    }

    #[test]
    fn a_losing_creator_keeps_the_existing_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("tessera.key");
        assert!(create(&path)?);
        let before = fs::read_to_string(&path)?;
        assert!(!create(&path)?);
        assert_eq!(fs::read_to_string(&path)?, before);
        Ok(())
    }

    #[test]
    fn a_corrupt_key_file_is_refused_with_its_path() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("tessera.key");
        fs::write(&path, "not a key\n")?;
        let error = load_or_create(&path).err().map(|e| format!("{e:#}"));
        assert!(
            error.as_deref().is_some_and(|e| e.contains("tessera.key")),
            "{error:?}"
        );
        Ok(())
    }
}
