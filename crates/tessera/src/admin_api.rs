//! The administration API's listener for `tessera serve --admin-listen`: reads the admin
//! token (from --admin-token-file, else the TESSERA_ADMIN_TOKEN environment variable,
//! never from a flag value) and binds the address.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use tessera_core::Secret;
use tessera_core::session_admin::AdminToken;
use tokio::net::TcpListener;

use crate::cli::{ADMIN_TOKEN_ENV, ServeArgs};

/// The admin token, when --admin-listen asks for the admin API; `None` otherwise. Checked
/// before anything is bound, so a missing or weak token stops the start-up cleanly.
pub fn token(args: &ServeArgs) -> anyhow::Result<Option<AdminToken>> {
    let Some(address) = args.admin_listen else {
        if args.admin_token_file.is_some() {
            tracing::warn!("--admin-token-file has no effect without --admin-listen");
        }
        return Ok(None);
    };
    let secret = match &args.admin_token_file {
        Some(path) => read_token_file(path)?,
        None => match std::env::var(ADMIN_TOKEN_ENV) {
            Ok(value) if !value.trim().is_empty() => Secret::new(value.trim()),
            _ => bail!(
                "--admin-listen {address} needs an admin token: give --admin-token-file PATH \
                 (or TESSERA_ADMIN_TOKEN_FILE), or set {ADMIN_TOKEN_ENV}"
            ),
        },
    };
    AdminToken::new(&secret)
        .map(Some)
        .map_err(|why| anyhow::anyhow!("{why}"))
}

/// Reads the token from the first line of `path`, warning when others may read the file.
fn read_token_file(path: &Path) -> anyhow::Result<Secret> {
    let metadata = fs::metadata(path)
        .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "the admin token file is accessible to group or others; anyone who can read it \
             can revoke sessions (chmod 600 it)"
        );
    }
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        bail!("the admin token file {} is empty", path.display());
    }
    Ok(Secret::new(token))
}

/// Binds the admin address, if --admin-listen asks for the admin API.
pub async fn bind(args: &ServeArgs) -> anyhow::Result<Option<TcpListener>> {
    let Some(address) = args.admin_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} for the admin API"))?;
    Ok(Some(listener))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_file_gives_its_first_line_without_surrounding_space() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("admin.token");
        fs::write(&path, "  a-long-enough-admin-token  \nsecond line\n")?;
        assert_eq!(
            read_token_file(&path)?.expose(),
            "a-long-enough-admin-token"
        );
        fs::write(&path, "\n")?;
        assert!(read_token_file(&path).is_err());
        assert!(read_token_file(&dir.path().join("missing")).is_err());
        Ok(())
    }
}
