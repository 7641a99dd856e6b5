//! Shoppers: end users of a storefront, known by an external reference id (a partner's
//! own id for them) and optionally by a username and password.

use unicode_normalization::UnicodeNormalization as _;

use crate::clock::Timestamp;

/// A stored shopper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShopperRecord {
    /// Tessera's id for the shopper (`userId`).
    pub id: String,
    /// The partner's id for the shopper, unique in the store.
    pub external_reference_id: Option<String>,
    /// Login name, unique in the store, normalised by [`normalize_username`].
    pub username: Option<String>,
    /// Argon2id PHC string; `None` when the shopper cannot log in with a password.
    pub password_hash: Option<String>,
    /// Preferred locale; the client's default when `None`.
    pub locale: Option<String>,
    /// Preferred currency; the client's default when `None`.
    pub currency: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// E-mail address, as the partner gave it.
    pub email: Option<String>,
    /// When the shopper was created.
    pub created_at: Timestamp,
}

/// The one rule for usernames, applied alike when a shopper is created and when one signs
/// in, so the stored and the presented name agree:
///
/// 1. surrounding white space (Unicode `White_Space`) is dropped;
/// 2. letters are lower-cased (Unicode default case mapping);
/// 3. the result is put in Unicode Normalization Form C.
///
/// This is the order of RFC 8265 §3.4 (the PRECIS `UsernameCaseMapped` profile: case
/// mapping, then NFC). So `  Ann@Example.com `, `ann@example.com`, and `José` written
/// with a precomposed `é` or with `e` and a combining acute accent are each one shopper.
///
/// NFC rather than NFKC: NFC only unifies different encodings of the very same character
/// (macOS input and some keyboards send `e` + U+0301 where others send `é`), which no
/// person can tell apart. NFKC also folds distinct "compatibility" characters into others
/// (`ﬁ` into `fi`, full-width `Ａ` into `A`, `²` into `2`, `ℌ` into `H`), changing what
/// was typed and making more names collide; RFC 8265 chose NFC for the same reason.
/// Neither form unifies look-alikes from different scripts, and this rule does not either:
/// a username with a Cyrillic `а` is a different shopper from one with a Latin `a`.
pub fn normalize_username(raw: &str) -> String {
    raw.trim().to_lowercase().nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use unicode_normalization::is_nfc;

    #[test]
    fn usernames_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_username("  Ann@Example.COM \t"),
            "ann@example.com"
        );
        // Unicode white space too: a no-break space and an ideographic space.
        assert_eq!(normalize_username("\u{a0}ann\u{3000}"), "ann");
    }

    #[test]
    fn canonically_equivalent_usernames_are_one_username() {
        let precomposed = "Jos\u{e9}";
        let decomposed = "Jose\u{301}";
        assert_ne!(precomposed, decomposed);
        assert_eq!(normalize_username(precomposed), "jos\u{e9}");
        assert_eq!(normalize_username(decomposed), "jos\u{e9}");
        assert_eq!(normalize_username("JOSE\u{301}"), "jos\u{e9}");
    }

    #[test]
    fn compatibility_characters_and_look_alikes_stay_distinct() {
        // NFC, not NFKC: a ligature is not its letters, and full width is not ASCII.
        assert_eq!(normalize_username("\u{fb01}x"), "\u{fb01}x");
        assert_ne!(normalize_username("\u{ff21}nn"), "ann");
        // Cyrillic a (U+0430) is not Latin a.
        assert_ne!(normalize_username("\u{430}nn"), normalize_username("ann"));
        assert_ne!(normalize_username("\u{410}NN"), normalize_username("ANN"));
    }

    proptest! {
        #[test]
        fn the_rule_is_idempotent_and_ends_in_nfc(raw in "\\PC{0,12}") {
            let once = normalize_username(&raw);
            prop_assert!(is_nfc(&once));
            prop_assert_eq!(normalize_username(&once), once.clone());
        }

        #[test]
        fn composed_and_decomposed_forms_agree(raw in "[a-zA-Z\u{c0}-\u{17f}\u{300}-\u{36f} ]{0,12}") {
            use unicode_normalization::UnicodeNormalization as _;
            let decomposed: String = raw.nfd().collect();
            let composed: String = raw.nfc().collect();
            prop_assert_eq!(normalize_username(&decomposed), normalize_username(&composed));
        }
    }
}
