//! What both stores' sweeps share (`SessionAdminStore::sweep_sessions` and `sweep_tokens`):
//! a batch is read as each row's key with whether it is dead, and only the dead keys are
//! then deleted.

/// The keys of the rows a sweep batch read dead, as `key` binds them.
pub(crate) fn dead_keys<'k, K, B>(examined: &'k [(K, bool)], key: impl Fn(&'k K) -> B) -> Vec<B> {
    examined
        .iter()
        .filter(|(_, dead)| *dead)
        .map(|(found, _)| key(found))
        .collect()
}
