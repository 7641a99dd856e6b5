//! The parameters of the RFC 6749 style form endpoints (token, introspection, revocation):
//! the query string and an `application/x-www-form-urlencoded` body, read strictly, under
//! canonical names. A recognised parameter may appear at most once, in one place or across
//! both (RFC 6749 §3.2); an empty value counts as omitted (§3.1); secrets never come from
//! the query string, because URLs end up in logs.

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

/// An endpoint's parameters under their canonical names, each at most once. Only
/// recognised names are kept, so there are a dozen at most: a list searched in order
/// finds one sooner than a map would hash its name.
pub(crate) struct Params(Vec<(&'static str, String)>);

impl Params {
    /// Reads the query string and the body by `rules`.
    pub(crate) fn collect(
        rules: &ParamRules,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, TokenError> {
        let mut params = Vec::new();
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
        let at = self.0.iter().position(|(kept, _)| *kept == name)?;
        Some(self.0.swap_remove(at).1)
    }
}

/// RFC 6749 §3.1: an empty parameter counts as omitted; §3.2: none may repeat.
fn insert_once(
    params: &mut Vec<(&'static str, String)>,
    name: &'static str,
    value: String,
) -> Result<(), TokenError> {
    if value.is_empty() {
        return Ok(());
    }
    if params.iter().any(|(kept, _)| *kept == name) {
        return Err(TokenError::InvalidRequest(
            "a parameter was given more than once",
        ));
    }
    params.push((name, value));
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn canonical(name: &str) -> Option<&'static str> {
        match name {
            "a" => Some("a"),
            "b" | "alias_of_b" => Some("b"),
            "secret" => Some("secret"),
            _ => None,
        }
    }

    const RULES: ParamRules = ParamRules {
        canonical,
        query_allowed: &["a"],
        secrets: &["secret"],
        query_refused: "b belongs in the body",
    };

    fn form_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers
    }

    fn collect(query: &str, body: &str) -> Result<Params, TokenError> {
        Params::collect(&RULES, Some(query), &form_headers(), body.as_bytes())
    }

    #[test]
    fn each_parameter_is_taken_once_under_its_canonical_name() -> Result<(), TokenError> {
        let mut params = collect("a=1&ignored=x", "alias_of_b=2&secret=s&b=&other=y")?;
        assert_eq!(params.take("b").as_deref(), Some("2"));
        assert_eq!(params.take("b"), None);
        assert_eq!(params.take("secret").as_deref(), Some("s"));
        assert_eq!(params.take("a").as_deref(), Some("1"));
        assert_eq!(params.take("a"), None);
        Ok(())
    }

    #[test]
    fn a_repeated_parameter_is_refused_wherever_it_repeats() {
        for (query, body) in [
            ("", "b=1&b=2"),
            ("", "b=1&alias_of_b=2"),
            ("a=1", "a=2"),
            ("a=1&a=2", ""),
        ] {
            assert!(
                matches!(
                    collect(query, body),
                    Err(TokenError::InvalidRequest(
                        "a parameter was given more than once"
                    ))
                ),
                "{query:?} and {body:?} should be refused"
            );
        }
        // An empty value counts as omitted, so it does not count as a first occurrence.
        assert!(collect("", "b=&b=2").is_ok());
    }

    #[test]
    fn secrets_and_body_parameters_are_refused_in_the_query_string() {
        assert!(matches!(
            collect("secret=s", ""),
            Err(TokenError::InvalidRequest(
                "secrets must not be sent in the query string"
            ))
        ));
        assert!(matches!(
            collect("b=1", ""),
            Err(TokenError::InvalidRequest("b belongs in the body"))
        ));
    }
}
