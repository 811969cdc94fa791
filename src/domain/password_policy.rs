//! The password policy of 003 §6.2: length limits, character classes, no common
//! passwords, nothing taken from the user's own details. Pure functions, no I/O; the
//! caller builds a [`PasswordPolicy`] from config and checks a new password with it
//! before hashing. Password history (R007) needs the stored hashes and lives elsewhere.
//!
//! `common_passwords.txt` holds the 30,000 entries of the "passwords" frequency list in
//! `zxcvbn/frequency_lists.py` of the `zxcvbn` 4.5.0 package on PyPI (MIT licence,
//! © 2016 Daniel Wolf; a port of Dropbox's zxcvbn, also MIT), lower-cased,
//! deduplicated and sorted, one per line.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::DomainError;

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// The common-password list as a lookup table. Built once on first use; it is fixed data,
/// not config, so one table serves every server in the process.
static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| COMMON_PASSWORDS.lines().filter(|l| !l.is_empty()).collect());

/// The shortest stem (password minus its trailing digits and symbols) that is looked up
/// in the common list: shorter ones would refuse too much ("abc1!xyz…" ending aside).
const MIN_COMMON_STEM_CHARS: usize = 4;

/// The shortest username, email local part or name that a password may not contain:
/// shorter ones are substrings of too many good passwords.
const MIN_PERSONAL_CHARS: usize = 3;

/// 003 §6.2. Built from config by the caller.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values, not bytes).
    pub min_length: usize,
    /// Most characters (Unicode scalar values, not bytes).
    pub max_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_digit: bool,
    /// A character that is neither a letter nor a digit; whitespace counts.
    pub require_special: bool,
    /// Refuse passwords on the built-in common-password list (see [`is_common`]).
    pub refuse_common: bool,
}

impl Default for PasswordPolicy {
    /// The values of 003 §6.2: 8 to 128 characters, all four character classes, no
    /// common passwords.
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
            require_uppercase: true,
            require_lowercase: true,
            require_digit: true,
            require_special: true,
            refuse_common: true,
        }
    }
}

/// What the password must not contain.
pub struct PersonalInfo<'a> {
    pub username: &'a str,
    pub email: &'a str,
    /// Given name, family name, display name…; blanks and names shorter than three
    /// characters are ignored.
    pub names: &'a [&'a str],
}

impl PasswordPolicy {
    /// Checks a new password against the policy, in this order: length, character
    /// classes, common passwords, personal information. The first rule broken is
    /// reported as `DomainError::Invalid` on field `password`, its message naming the
    /// rule (never echoing the password).
    pub fn check(&self, password: &str, personal: &PersonalInfo<'_>) -> Result<(), DomainError> {
        let refuse = |message: &str| Err(DomainError::invalid("password", message));

        let length = password.chars().count();
        if length < self.min_length {
            return refuse(&format!("must be at least {} characters", self.min_length));
        }
        if length > self.max_length {
            return refuse(&format!("must be at most {} characters", self.max_length));
        }

        if self.require_uppercase && !password.chars().any(char::is_uppercase) {
            return refuse("must contain an uppercase letter");
        }
        if self.require_lowercase && !password.chars().any(char::is_lowercase) {
            return refuse("must contain a lowercase letter");
        }
        if self.require_digit && !password.chars().any(char::is_numeric) {
            return refuse("must contain a digit");
        }
        if self.require_special && !password.chars().any(is_special) {
            return refuse("must contain a special character (not a letter or digit)");
        }

        if self.refuse_common && is_common(password) {
            return refuse("is one of the most commonly used passwords");
        }

        if let Some(message) = personal_info_violation(&password.to_lowercase(), personal) {
            return refuse(message);
        }
        Ok(())
    }
}

/// Whether the password is on the built-in common-password list, ignoring case. A
/// password is also common when, with its trailing digits and symbols removed, what is
/// left has at least four characters and is on the list ("Password123!" → "password"):
/// otherwise the character-class rules would let every "Password1!" variant through.
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    if COMMON.contains(lower.as_str()) {
        return true;
    }
    let stem = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    stem.len() < lower.len()
        && stem.chars().count() >= MIN_COMMON_STEM_CHARS
        && COMMON.contains(stem)
}

fn is_special(c: char) -> bool {
    !c.is_alphabetic() && !c.is_numeric()
}

/// The rule broken by a lower-cased password containing the user's details, if any.
fn personal_info_violation(password: &str, personal: &PersonalInfo<'_>) -> Option<&'static str> {
    let contains = |part: &str| {
        let part = part.trim().to_lowercase();
        part.chars().count() >= MIN_PERSONAL_CHARS && password.contains(&part)
    };

    if contains(personal.username) {
        return Some("must not contain your username");
    }

    let email = personal.email.trim();
    let local_part = email.rsplit_once('@').map_or(email, |(local, _)| local);
    if contains(email) || contains(local_part) {
        return Some("must not contain your email address");
    }

    // A full name is checked whole and word by word ("Mary Smith" → "smith").
    let name_parts = personal
        .names
        .iter()
        .flat_map(|name| std::iter::once(*name).chain(name.split_whitespace()));
    for part in name_parts {
        if contains(part) {
            return Some("must not contain your name");
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const STRONG: &str = "vT7#qLm2!xWz";

    const NOBODY: PersonalInfo<'static> = PersonalInfo {
        username: "",
        email: "",
        names: &[],
    };

    fn accepted(policy: &PasswordPolicy, password: &str, personal: &PersonalInfo<'_>) {
        if let Err(err) = policy.check(password, personal) {
            panic!("{password:?} refused: {err}");
        }
    }

    /// The message of the refusal; panics when the password is accepted.
    fn refused(policy: &PasswordPolicy, password: &str, personal: &PersonalInfo<'_>) -> String {
        match policy.check(password, personal) {
            Ok(()) => panic!("{password:?} accepted"),
            Err(DomainError::Invalid { field, message }) => {
                assert_eq!(field, "password");
                message
            }
            Err(other) => panic!("{password:?}: unexpected error {other:?}"),
        }
    }

    #[test]
    fn default_is_003_values() {
        let p = PasswordPolicy::default();
        assert_eq!((p.min_length, p.max_length), (8, 128));
        assert!(p.require_uppercase && p.require_lowercase && p.require_digit);
        assert!(p.require_special && p.refuse_common);
    }

    #[test]
    fn strong_password_accepted() {
        accepted(&PasswordPolicy::default(), STRONG, &NOBODY);
        accepted(
            &PasswordPolicy::default(),
            "Horse battery 9 staple",
            &NOBODY,
        );
    }

    #[test]
    fn exactly_min_length_accepted_one_less_refused() {
        let policy = PasswordPolicy::default();
        accepted(&policy, "vT7#qLm2", &NOBODY);
        assert_eq!(
            refused(&policy, "vT7#qLm", &NOBODY),
            "must be at least 8 characters"
        );
        let policy = PasswordPolicy {
            min_length: 12,
            ..PasswordPolicy::default()
        };
        accepted(&policy, "vT7#qLm2!xWz", &NOBODY);
        assert_eq!(
            refused(&policy, "vT7#qLm2!xW", &NOBODY),
            "must be at least 12 characters"
        );
    }

    #[test]
    fn exactly_max_length_accepted_one_more_refused() {
        let policy = PasswordPolicy::default();
        let max = format!("{STRONG}{}", "k".repeat(128 - STRONG.len()));
        assert_eq!(max.chars().count(), 128);
        accepted(&policy, &max, &NOBODY);
        assert_eq!(
            refused(&policy, &format!("{max}k"), &NOBODY),
            "must be at most 128 characters"
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let policy = PasswordPolicy::default();
        // 8 characters, 13 bytes.
        let eight = "Ünï1!çøé";
        assert_eq!(eight.chars().count(), 8);
        assert!(eight.len() > 8);
        accepted(&policy, eight, &NOBODY);
        // 7 characters but more than 8 bytes: still too short.
        let seven = "Ünï1!çø";
        assert!(seven.len() >= 8);
        assert_eq!(
            refused(&policy, seven, &NOBODY),
            "must be at least 8 characters"
        );
        // 128 characters, far more than 128 bytes: not too long.
        let long = format!("{eight}{}", "é".repeat(120));
        assert_eq!(long.chars().count(), 128);
        accepted(&policy, &long, &NOBODY);
        assert_eq!(
            refused(&policy, &format!("{long}é"), &NOBODY),
            "must be at most 128 characters"
        );
    }

    #[test]
    fn uppercase_required() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            refused(&policy, "vt7#qlm2!xwz", &NOBODY),
            "must contain an uppercase letter"
        );
        // Non-ASCII uppercase counts.
        accepted(&policy, "vt7#qlm2!xwÉ", &NOBODY);
    }

    #[test]
    fn lowercase_required() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            refused(&policy, "VT7#QLM2!XWZ", &NOBODY),
            "must contain a lowercase letter"
        );
        accepted(&policy, "VT7#QLM2!XWß", &NOBODY);
    }

    #[test]
    fn digit_required() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            refused(&policy, "vTq#qLmz!xWz", &NOBODY),
            "must contain a digit"
        );
    }

    #[test]
    fn special_required() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            refused(&policy, "vT7qqLm2axWz", &NOBODY),
            "must contain a special character (not a letter or digit)"
        );
        // Whitespace counts as special.
        accepted(&policy, "vT7qqLm2 xWz", &NOBODY);
    }

    #[test]
    fn length_is_checked_before_classes_and_classes_before_common() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            refused(&policy, "abc", &NOBODY),
            "must be at least 8 characters"
        );
        assert_eq!(
            refused(&policy, "password", &NOBODY),
            "must contain an uppercase letter"
        );
    }

    #[test]
    fn common_passwords_refused() {
        for password in ["password", "qwerty123", "letmein", "iloveyou", "dragon"] {
            assert!(is_common(password), "{password}");
        }
        assert!(is_common("PaSsWoRd"));
        assert!(is_common("QWERTY123"));
        assert!(!is_common(STRONG));
        assert!(!is_common("vtqlmxwz"));
    }

    #[test]
    fn common_password_with_trailing_digits_and_symbols_refused() {
        assert!(is_common("Password123!"));
        assert!(is_common("Summer2024!"));
        assert!(is_common("Dragon1?"));
        // Only trailing characters are stripped, and the stem must be long enough.
        assert!(!is_common("1!Summerxq"));
        assert!(!is_common("Qaz123!"));

        let policy = PasswordPolicy::default();
        let common = "is one of the most commonly used passwords";
        assert_eq!(refused(&policy, "Password123!", &NOBODY), common);
        assert_eq!(refused(&policy, "Summer2024!", &NOBODY), common);
        assert_eq!(refused(&policy, "Qwerty123!", &NOBODY), common);
    }

    #[test]
    fn username_refused() {
        let policy = PasswordPolicy::default();
        let me = PersonalInfo {
            username: "jsmith",
            ..NOBODY
        };
        assert_eq!(
            refused(&policy, "vT7#JSmith!x", &me),
            "must not contain your username"
        );
        // Shorter than three characters: ignored.
        let me = PersonalInfo {
            username: "vt",
            ..NOBODY
        };
        accepted(&policy, STRONG, &me);
    }

    #[test]
    fn email_refused() {
        let policy = PasswordPolicy::default();
        let me = PersonalInfo {
            email: "Alice.W@example.com",
            ..NOBODY
        };
        let message = "must not contain your email address";
        assert_eq!(refused(&policy, "vT7#alice.w@example.COM", &me), message);
        assert_eq!(refused(&policy, "vT7#ALICE.w!", &me), message);
        accepted(&policy, "vT7#alice!x", &me);

        // A local part shorter than three characters is ignored, the whole address is not.
        let me = PersonalInfo {
            email: "vt@example.com",
            ..NOBODY
        };
        accepted(&policy, STRONG, &me);
        assert_eq!(refused(&policy, "Q7!vt@example.com", &me), message);
    }

    #[test]
    fn names_refused() {
        let policy = PasswordPolicy::default();
        let me = PersonalInfo {
            names: &["Margaret", "", "   ", "Li", "Anne Smithers"],
            ..NOBODY
        };
        let message = "must not contain your name";
        assert_eq!(refused(&policy, "vT7#MARGARET!", &me), message);
        assert_eq!(refused(&policy, "vT7#smithers!", &me), message);
        assert_eq!(refused(&policy, "vT7#anne smithers", &me), message);
        // Blank and short names are ignored.
        accepted(&policy, "vT7#Lixq!zW", &me);
    }

    #[test]
    fn personal_info_checked_after_common() {
        let policy = PasswordPolicy::default();
        let me = PersonalInfo {
            username: "password",
            ..NOBODY
        };
        assert_eq!(
            refused(&policy, "Password1!", &me),
            "is one of the most commonly used passwords"
        );
    }

    #[test]
    fn rules_turned_off_accept_what_the_default_refuses() {
        let default = PasswordPolicy::default();
        let lax = PasswordPolicy {
            min_length: 4,
            max_length: 256,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_special: false,
            refuse_common: false,
        };
        let long = "a".repeat(200);
        for password in ["abcd", long.as_str(), "password", "PASSWORD", "12345678"] {
            refused(&default, password, &NOBODY);
            accepted(&lax, password, &NOBODY);
        }

        // Each class on its own.
        let no_upper = PasswordPolicy {
            require_uppercase: false,
            ..PasswordPolicy::default()
        };
        accepted(&no_upper, "vt7#qlm2!xwz", &NOBODY);
        let no_lower = PasswordPolicy {
            require_lowercase: false,
            ..PasswordPolicy::default()
        };
        accepted(&no_lower, "VT7#QLM2!XWZ", &NOBODY);
        let no_digit = PasswordPolicy {
            require_digit: false,
            ..PasswordPolicy::default()
        };
        accepted(&no_digit, "vTq#qLmz!xWz", &NOBODY);
        let no_special = PasswordPolicy {
            require_special: false,
            ..PasswordPolicy::default()
        };
        accepted(&no_special, "vT7qqLm2axWz", &NOBODY);
        let common_ok = PasswordPolicy {
            refuse_common: false,
            ..PasswordPolicy::default()
        };
        accepted(&common_ok, "Password123!", &NOBODY);
    }

    #[test]
    fn common_list_is_large_sorted_lowercase_unique() {
        let entries: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        assert!(entries.len() >= 10_000, "{} entries", entries.len());
        assert!(COMMON_PASSWORDS.ends_with('\n'));
        for entry in &entries {
            assert!(!entry.trim().is_empty(), "blank line");
            assert_eq!(entry.trim(), *entry, "surrounding whitespace: {entry:?}");
            assert_eq!(entry.to_lowercase(), *entry, "not lower-case: {entry:?}");
        }
        for pair in entries.windows(2) {
            assert!(pair[0] < pair[1], "not sorted or duplicated: {pair:?}");
        }
        assert_eq!(COMMON.len(), entries.len());
    }
}
