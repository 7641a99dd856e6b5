//! Replays every seed of `fuzz/corpus/<target>/` through the parser its fuzz target
//! drives, feeding it exactly as the target in `fuzz/fuzz_targets/` does, so the nasty
//! inputs of RELIABILITY.md run on stable Rust in every test run (P17: parsers never
//! panic). A file that makes a parser panic fails the test with its name.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use tessera_core::token::TokenKeys;
use tessera_server::parsers::{
    ParsedAuthorization, parse_authorization, parse_bearer_request, parse_form, parse_token_form,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A seed file: its path and its bytes.
type Seed = (PathBuf, Vec<u8>);

/// The key file of `fuzz/fuzz_targets/token.rs`, which the token seeds are signed with.
const FUZZ_KEYS: &str = "k2 QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE\n\
                         k1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";

fn corpus(target: &str) -> Result<Vec<Seed>, Box<dyn std::error::Error>> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(&folder)? {
        let path = entry?.path();
        let bytes = std::fs::read(&path)?;
        seeds.push((path, bytes));
    }
    seeds.sort();
    assert!(seeds.len() >= 20, "{}: too few seeds", folder.display());
    Ok(seeds)
}

/// Runs `parse` on every seed of `target`, collecting the names of those that panic.
fn replay(target: &str, parse: impl Fn(&[u8])) -> TestResult {
    let mut panicked = Vec::new();
    for (path, bytes) in corpus(target)? {
        if catch_unwind(AssertUnwindSafe(|| parse(&bytes))).is_err() {
            panicked.push(path.display().to_string());
        }
    }
    assert!(panicked.is_empty(), "panicked on {panicked:?}");
    Ok(())
}

#[test]
fn the_basic_header_seeds_never_panic() -> TestResult {
    replay("basic_header", |data| {
        let mut value = b"Basic ".to_vec();
        value.extend_from_slice(data);
        let _ = parse_authorization(&value);
        let _ = parse_authorization(data);
    })
}

#[test]
fn the_bearer_header_seeds_never_panic() -> TestResult {
    replay("bearer_header", |data| {
        let (header, query) = match data.iter().position(|&b| b == b'\n') {
            Some(at) => (&data[..at], std::str::from_utf8(&data[at + 1..]).ok()),
            None => (data, None),
        };
        let _ = parse_bearer_request(Some(header), query);
        let _ = parse_bearer_request(None, std::str::from_utf8(data).ok());
    })
}

#[test]
fn the_form_body_seeds_never_panic() -> TestResult {
    replay("form_body", |data| {
        let _ = parse_form(data);
        let _ = parse_token_form(None, data);
    })
}

#[test]
fn the_token_seeds_never_panic_and_only_the_valid_ones_verify() -> TestResult {
    let keys = TokenKeys::parse(FUZZ_KEYS)?;
    let mut verified = Vec::new();
    for (path, bytes) in corpus("token")? {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            std::str::from_utf8(&bytes)
                .ok()
                .map(|token| keys.verify(token).is_ok())
        }));
        match outcome {
            Ok(Some(true)) => verified.push(
                path.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            Ok(_) => {}
            Err(_) => panic!("panicked on {}", path.display()),
        }
    }
    verified.sort();
    assert_eq!(verified, ["valid_access_k1", "valid_refresh_k2"]);
    Ok(())
}

#[test]
fn the_parsers_read_well_formed_input_as_the_server_does() {
    assert_eq!(
        parse_authorization(b"bAsIc  YSUyQmI6czplK2M="),
        ParsedAuthorization::Basic {
            client_id: "a+b".to_owned(),
            has_secret: true
        }
    );
    assert_eq!(
        parse_authorization(b"Basic bm9jb2xvbg=="),
        ParsedAuthorization::MalformedBasic
    );
    assert_eq!(
        parse_authorization(b"Bearer x\r\ny"),
        ParsedAuthorization::NotAHeaderValue
    );
    assert_eq!(parse_bearer_request(Some(b"Bearer abc"), None), Ok(3));
    assert!(parse_bearer_request(Some(b"Bearer abc"), Some("token=abd")).is_err());
    assert_eq!(
        parse_form(b"a=b+c&d=%26"),
        Ok(vec![
            ("a".to_owned(), "b c".to_owned()),
            ("d".to_owned(), "&".to_owned())
        ])
    );
    assert_eq!(parse_form(b"a=%zz"), Err("malformed percent-encoding"));
    assert_eq!(parse_token_form(None, b"token=t&client_id=c"), Ok(true));
    assert!(parse_token_form(None, b"token=a&token=b").is_err());
}
