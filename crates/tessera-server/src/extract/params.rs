//! The parameters of the RFC 6749 style form endpoints (token, introspection, revocation):
//! the query string and an `application/x-www-form-urlencoded` body, read strictly, under
//! canonical names. A recognised parameter may appear at most once, in one place or across
//! both (RFC 6749 §3.2); an empty value counts as omitted (§3.1); secrets never come from
//! the query string, because URLs end up in logs.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use tessera_core::TokenError;

use super::form::parse_pairs;

/// What one endpoint accepts.
pub(crate) struct ParamRules {
    /// Maps a parameter name (or an alias) to its canonical name; `None` for names that are
    /// ignored (`format`, `ts`, `t`, anything unknown).
    pub(crate) canonical: fn(&str) -> Option<&'static str>,
    /// Canonical names that may come in the query string.
    pub(crate) query_allowed: &'static [&'static str],
    /// Canonical names that must never come in the query string.
    pub(crate) secrets: &'static [&'static str],
    /// The description when a recognised parameter that is neither comes in the query
    /// string.
    pub(crate) query_refused: &'static str,
}

/// An endpoint's parameters under their canonical names, each at most once.
pub(crate) struct Params(HashMap<&'static str, String>);

impl Params {
    /// Reads the query string and the body by `rules`.
    pub(crate) fn collect(
        rules: &ParamRules,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, TokenError> {
        let mut params = HashMap::new();
        let query_pairs = parse_pairs(query.unwrap_or("").as_bytes())
            .map_err(|e| TokenError::InvalidRequest(e.describe()))?;
        for (name, value) in query_pairs {
            let Some(name) = (rules.canonical)(&name) else {
                continue;
            };
            if rules.secrets.contains(&name) {
                return Err(TokenError::InvalidRequest(
                    "secrets must not be sent in the query string",
                ));
            }
            if !rules.query_allowed.contains(&name) {
                return Err(TokenError::InvalidRequest(rules.query_refused));
            }
            insert_once(&mut params, name, value)?;
        }
        if !body.is_empty() {
            if !is_form(headers) {
                return Err(TokenError::InvalidRequest(
                    "the body must be application/x-www-form-urlencoded",
                ));
            }
            let body_pairs =
                parse_pairs(body).map_err(|e| TokenError::InvalidRequest(e.describe()))?;
            for (name, value) in body_pairs {
                if let Some(name) = (rules.canonical)(&name) {
                    insert_once(&mut params, name, value)?;
                }
            }
        }
        Ok(Self(params))
    }

    /// Takes a parameter out by its canonical name.
    pub(crate) fn take(&mut self, name: &'static str) -> Option<String> {
        self.0.remove(name)
    }
}

/// RFC 6749 §3.1: an empty parameter counts as omitted; §3.2: none may repeat.
fn insert_once(
    params: &mut HashMap<&'static str, String>,
    name: &'static str,
    value: String,
) -> Result<(), TokenError> {
    if value.is_empty() {
        return Ok(());
    }
    if params.insert(name, value).is_some() {
        return Err(TokenError::InvalidRequest(
            "a parameter was given more than once",
        ));
    }
    Ok(())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}
