//! Rebuilds when a migration is added: `sqlx::migrate!` embeds the migrations folder but
//! only tracks the files it has already seen.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
