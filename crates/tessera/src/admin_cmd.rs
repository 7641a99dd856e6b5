//! The admin commands (`tessera client ...`, `tessera shopper ...`): each opens the store,
//! calls one [`Admin`] method, prints the result for a person or, with `--json`, for a
//! script, and closes the store. They work beside a running server on the same store.

use std::io::{IsTerminal as _, Read as _};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use serde_json::json;
use tessera_core::admin::{Admin, NewClient, NewShopper};
use tessera_core::client::{ClientRecord, Grant, GrantSet};
use tessera_core::{Secret, Store, StoreError, SystemClock};

use crate::cli::{
    Cli, ClientCommand, ClientCreateArgs, ClientIdArgs, ShopperCommand, ShopperCreateArgs,
};
use crate::output::{print, print_json};

/// Longest password read from standard input, so a wrong pipe cannot exhaust memory.
const MAX_PASSWORD_BYTES: u64 = 4096;

/// Runs a `tessera client` command.
pub async fn client(cli: &Cli, command: &ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Create(args) => {
            // Checked before the store is opened, so a refused request changes nothing.
            let new = new_client(args)?;
            let opened = Opened::open(cli).await?;
            let result = create_client(&opened.admin, new, args.json).await;
            opened.close(result).await
        }
        ClientCommand::List(args) => {
            let opened = Opened::open(cli).await?;
            let result = list_clients(&opened.admin, args.json).await;
            opened.close(result).await
        }
        ClientCommand::RotateSecret(args) => {
            let opened = Opened::open(cli).await?;
            let result = rotate_secret(&opened.admin, args).await;
            opened.close(result).await
        }
        ClientCommand::Disable(args) => {
            let opened = Opened::open(cli).await?;
            let result = disable(&opened.admin, args).await;
            opened.close(result).await
        }
    }
}

/// Runs a `tessera shopper` command.
pub async fn shopper(cli: &Cli, command: &ShopperCommand) -> anyhow::Result<()> {
    let ShopperCommand::Create(args) = command;
    // Read before the store is opened: a missing password changes nothing.
    let password = if args.password_stdin {
        Some(read_password().await?)
    } else {
        None
    };
    let opened = Opened::open(cli).await?;
    let result = create_shopper(&opened.admin, args, password).await;
    opened.close(result).await
}

/// The store an admin command works on, closed cleanly when the command is done.
struct Opened {
    store: Arc<dyn Store>,
    admin: Admin,
}

impl Opened {
    async fn open(cli: &Cli) -> anyhow::Result<Self> {
        let store = crate::store::open(cli).await?;
        let admin = Admin::new(Arc::clone(&store), Arc::new(SystemClock));
        Ok(Self { store, admin })
    }

    /// Closes the store and passes the command's result on.
    async fn close(self, result: anyhow::Result<()>) -> anyhow::Result<()> {
        self.store.close().await;
        result
    }
}

/// Turns `client create` flags into a [`NewClient`], refusing combinations that could not
/// work.
fn new_client(args: &ClientCreateArgs) -> anyhow::Result<NewClient> {
    let mut new = NewClient::named(args.name.trim());
    if new.name.is_empty() {
        bail!("--name must not be empty");
    }
    new.public = args.public;
    new.resource_server = args.resource_server;
    if args.grants.is_empty() {
        if args.public {
            // The client credentials grant needs a secret (RFC 6749 §4.4), so a public
            // client's default leaves it out rather than granting what cannot be used.
            let defaults = GrantSet::default_for_new_client().iter();
            new.grants = GrantSet::from_grants(defaults.filter(|g| *g != Grant::ClientCredentials));
        }
    } else {
        if args.public && args.grants.contains(&Grant::ClientCredentials) {
            bail!(
                "a public client cannot use the client_credentials grant, which needs a \
                 secret (RFC 6749 §4.4); drop --public or that --grant"
            );
        }
        new.grants = GrantSet::from_grants(args.grants.iter().copied());
    }
    if let Some(locale) = &args.locale {
        new.default_locale.clone_from(locale);
    }
    if let Some(currency) = &args.currency {
        new.default_currency.clone_from(currency);
    }
    new.theme_id.clone_from(&args.theme_id);
    new.password_encoding = args.password_encoding;
    if let Some(ttl) = args.access_token_ttl {
        new.access_token_ttl = ttl;
    }
    if let Some(ttl) = args.refresh_token_ttl {
        new.refresh_token_ttl = ttl;
    }
    if new.access_token_ttl > new.refresh_token_ttl {
        bail!(
            "the access token lifetime ({} s) exceeds the refresh token (session) lifetime \
             ({} s), which caps it; lower --access-token-ttl or raise --refresh-token-ttl",
            new.access_token_ttl,
            new.refresh_token_ttl
        );
    }
    Ok(new)
}

async fn create_client(admin: &Admin, new: NewClient, json: bool) -> anyhow::Result<()> {
    let (client, secret) = admin
        .create_client(new)
        .await
        .context("cannot create the client")?;
    if json {
        print_json(&json!({
            "client_id": client.id,
            "client_secret": secret.as_ref().map(Secret::expose),
        }))
    } else {
        let grants = grant_names(client.grants);
        let text = match &secret {
            Some(secret) => format!(
                "Created confidential client \"{}\".\n  \
                 client_id:     {}\n  \
                 client_secret: {}\n  \
                 grants:        {grants}\n{}\
                 The secret is stored only as a hash and will not be shown again; keep it \
                 somewhere safe now.\n",
                client.name,
                client.id,
                secret.expose(),
                if client.resource_server {
                    "  resource server: may introspect every client's access tokens\n"
                } else {
                    ""
                },
            ),
            None => format!(
                "Created public client \"{}\" (it holds no secret).\n  \
                 client_id: {}\n  \
                 grants:    {grants}\n",
                client.name, client.id,
            ),
        };
        print(&text)
    }
}

async fn list_clients(admin: &Admin, json: bool) -> anyhow::Result<()> {
    let clients = admin.clients().await.context("cannot list clients")?;
    if json {
        let listed: Vec<serde_json::Value> = clients.iter().map(client_json).collect();
        return print_json(&serde_json::Value::Array(listed));
    }
    if clients.is_empty() {
        return print("No clients yet. Create one with `tessera client create --name NAME`.\n");
    }
    let header = ["CLIENT_ID", "NAME", "TYPE", "STATUS", "CREATED", "GRANTS"];
    let rows: Vec<[String; 6]> = clients
        .iter()
        .map(|c| {
            [
                c.id.clone(),
                c.name.clone(),
                client_type(c).to_owned(),
                if c.disabled { "disabled" } else { "enabled" }.to_owned(),
                c.created_at.to_iso8601(),
                grant_names(c.grants),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header_cells = header.map(str::to_owned);
    for row in std::iter::once(&header_cells).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    print(&text)
}

async fn rotate_secret(admin: &Admin, args: &ClientIdArgs) -> anyhow::Result<()> {
    let id = &args.client_id;
    let secret = match admin.rotate_client_secret(id).await {
        Ok(Some(secret)) => secret,
        Ok(None) => bail!("no client has the id `{id}` (see `tessera client list`)"),
        Err(StoreError::Conflict(_)) => {
            bail!("client `{id}` is public: it has no secret to rotate")
        }
        Err(e) => return Err(e).context("cannot rotate the client secret"),
    };
    if args.json {
        print_json(&json!({ "client_id": id, "client_secret": secret.expose() }))
    } else {
        print(&format!(
            "Rotated the secret of client {id}; the old secret no longer works.\n  \
             client_secret: {}\n\
             The secret is stored only as a hash and will not be shown again; keep it \
             somewhere safe now.\n",
            secret.expose()
        ))
    }
}

async fn disable(admin: &Admin, args: &ClientIdArgs) -> anyhow::Result<()> {
    let id = &args.client_id;
    let found = admin
        .disable_client(id)
        .await
        .context("cannot disable the client")?;
    if !found {
        bail!("no client has the id `{id}` (see `tessera client list`)");
    }
    if args.json {
        print_json(&json!({ "client_id": id, "disabled": true }))
    } else {
        print(&format!(
            "Disabled client {id}: it can no longer authenticate and its tokens no longer \
             work.\n"
        ))
    }
}

async fn create_shopper(
    admin: &Admin,
    args: &ShopperCreateArgs,
    password: Option<Secret>,
) -> anyhow::Result<()> {
    let new = NewShopper {
        external_reference_id: args.external_reference_id.clone(),
        username: args.username.clone(),
        password,
        locale: args.locale.clone(),
        currency: args.currency.clone(),
        ..NewShopper::default()
    };
    let shopper = match admin.create_shopper(new).await {
        Ok(shopper) => shopper,
        Err(StoreError::Conflict(_)) => bail!("{}", taken_message(args)),
        Err(e) => return Err(e).context("cannot create the shopper"),
    };
    if args.json {
        return print_json(&json!({ "user_id": shopper.id }));
    }
    let mut text = format!(
        "Created shopper.\n  user_id:               {}\n",
        shopper.id
    );
    if let Some(reference) = &shopper.external_reference_id {
        text.push_str(&format!("  external_reference_id: {reference}\n"));
    }
    if let Some(username) = &shopper.username {
        text.push_str(&format!("  username:              {username}\n"));
    }
    print(&text)
}

/// What to say when the store refuses a shopper as a duplicate.
fn taken_message(args: &ShopperCreateArgs) -> String {
    match (&args.external_reference_id, &args.username) {
        (Some(reference), Some(username)) => format!(
            "a shopper with external reference id `{reference}` or username `{username}` \
             already exists"
        ),
        (Some(reference), None) => {
            format!("a shopper with external reference id `{reference}` already exists")
        }
        (None, Some(username)) => format!("a shopper with username `{username}` already exists"),
        (None, None) => "that shopper already exists".to_owned(),
    }
}

/// Reads the password from standard input, dropping one trailing newline. Refuses a
/// terminal, where the password would be echoed as it is typed.
async fn read_password() -> anyhow::Result<Secret> {
    if std::io::stdin().is_terminal() {
        bail!(
            "--password-stdin reads the password from a pipe, not a terminal, e.g. \
             printf '%s' \"$PASSWORD\" | tessera shopper create ... --password-stdin"
        );
    }
    let bytes = tokio::task::spawn_blocking(|| {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_PASSWORD_BYTES + 1)
            .read_to_end(&mut bytes)
            .map(|_| bytes)
    })
    .await
    .context("the password reader stopped")?
    .context("cannot read the password from standard input")?;
    if bytes.len() as u64 > MAX_PASSWORD_BYTES {
        bail!("the password on standard input is longer than {MAX_PASSWORD_BYTES} bytes");
    }
    let mut text =
        String::from_utf8(bytes).context("the password on standard input is not UTF-8")?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        bail!("the password on standard input is empty");
    }
    Ok(Secret::new(text))
}

fn client_type(client: &ClientRecord) -> &'static str {
    if client.is_public() {
        "public"
    } else if client.resource_server {
        "resource-server"
    } else {
        "confidential"
    }
}

fn grant_names(grants: GrantSet) -> String {
    let names: Vec<&str> = grants.iter().map(Grant::name).collect();
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(",")
    }
}

/// A client as `client list --json` shows it: everything but the secret's hash.
fn client_json(client: &ClientRecord) -> serde_json::Value {
    json!({
        "client_id": client.id,
        "name": client.name,
        "public": client.is_public(),
        "resource_server": client.resource_server,
        "disabled": client.disabled,
        "grants": client.grants.iter().map(Grant::name).collect::<Vec<_>>(),
        "access_token_ttl": client.access_token_ttl,
        "refresh_token_ttl": client.refresh_token_ttl,
        "locale": client.default_locale,
        "currency": client.default_currency,
        "theme_id": client.theme_id,
        "password_encoding": client.password_encoding.name(),
        "created_on": client.created_at.to_iso8601(),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use tessera_core::client::PasswordEncoding;

    use super::*;
    use crate::cli::Command;

    fn create_args(args: &[&str]) -> anyhow::Result<ClientCreateArgs> {
        let cli = Cli::try_parse_from(["tessera", "client", "create"].iter().chain(args).copied())?;
        match cli.command {
            Command::Client(ClientCommand::Create(args)) => Ok(args),
            other => bail!("parsed {other:?}"),
        }
    }

    #[test]
    fn a_client_without_grants_gets_every_grant_but_password() -> anyhow::Result<()> {
        let new = new_client(&create_args(&["--name", "shop"])?)?;
        assert_eq!(new.grants, GrantSet::default_for_new_client());
        assert!(!new.grants.contains(Grant::Password));
        assert!(!new.public);
        Ok(())
    }

    #[test]
    fn a_resource_server_is_confidential_and_keeps_its_grants() -> anyhow::Result<()> {
        let new = new_client(&create_args(&["--name", "api", "--resource-server"])?)?;
        assert!(new.resource_server);
        assert!(!new.public);
        assert_eq!(new.grants, GrantSet::default_for_new_client());
        assert!(!new_client(&create_args(&["--name", "shop"])?)?.resource_server);
        assert!(create_args(&["--name", "api", "--resource-server", "--public"]).is_err());
        Ok(())
    }

    #[test]
    fn a_public_client_by_default_leaves_out_client_credentials() -> anyhow::Result<()> {
        let new = new_client(&create_args(&["--name", "spa", "--public"])?)?;
        assert!(new.public);
        assert!(!new.grants.contains(Grant::ClientCredentials));
        assert!(new.grants.contains(Grant::Anonymous));
        Ok(())
    }

    #[test]
    fn a_public_client_asking_for_client_credentials_is_refused() -> anyhow::Result<()> {
        let args = create_args(&["--name", "spa", "--public", "--grant", "client_credentials"])?;
        assert!(new_client(&args).is_err());
        Ok(())
    }

    #[test]
    fn settings_are_carried_into_the_new_client() -> anyhow::Result<()> {
        let new = new_client(&create_args(&[
            "--name",
            "fr",
            "--grant",
            "password",
            "--locale",
            "fr_FR",
            "--currency",
            "EUR",
            "--theme-id",
            "dark",
            "--password-encoding",
            "base64",
            "--access-token-ttl",
            "60",
            "--refresh-token-ttl",
            "600",
        ])?)?;
        assert_eq!(new.grants, GrantSet::from_grants([Grant::Password]));
        assert_eq!(new.default_locale, "fr_FR");
        assert_eq!(new.default_currency, "EUR");
        assert_eq!(new.theme_id.as_deref(), Some("dark"));
        assert_eq!(new.password_encoding, PasswordEncoding::Base64);
        assert_eq!((new.access_token_ttl, new.refresh_token_ttl), (60, 600));
        Ok(())
    }

    #[test]
    fn an_access_token_outliving_its_session_is_refused() -> anyhow::Result<()> {
        let args = create_args(&["--name", "x", "--refresh-token-ttl", "60"])?;
        assert!(new_client(&args).is_err());
        Ok(())
    }
}
