//! The population the `scale` scenario imports: user `i` is always the same
//! person (so the bench knows any user's email and password without storing
//! them), with names varied enough that a prefix filter can match a handful
//! of rows among a million, and skewed like real names so one can match many.

use std::io::Write;

/// The password of every user the bench logs in as.
pub use crate::scenarios::PASSWORD;

/// First names; eight of 48 start with "Ma", so `ma` is a broad prefix (~17 %).
const FIRST: [&str; 48] = [
    "Maria", "Mark", "Martin", "Mateo", "Maya", "Marta", "Malik", "Manon", "Ada", "Alan", "Amir",
    "Anna", "Bea", "Boris", "Chen", "Clara", "Dario", "Dina", "Elif", "Emil", "Farah", "Felix",
    "Grace", "Hugo", "Ines", "Ivan", "Jana", "Jonas", "Kenji", "Lea", "Linus", "Lucia", "Nadia",
    "Nils", "Olga", "Omar", "Paula", "Pedro", "Quinn", "Rosa", "Sami", "Sofia", "Tariq", "Ute",
    "Vera", "Wim", "Yara", "Zoe",
];

/// Surnames are three of these: 13,824 of them, so names rarely repeat.
const SYLLABLES: [&str; 24] = [
    "ba", "del", "ko", "lin", "mar", "no", "pe", "ri", "san", "to", "ve", "wi", "ash", "bro",
    "cha", "dor", "fen", "gal", "hal", "ist", "jor", "kel", "lum", "mor",
];

const DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];

/// Users who can log in: every twentieth, whose imported hash is an Argon2id
/// hash of [`PASSWORD`] (so a login costs what it costs a native user).
pub fn knows_password(i: u64) -> bool {
    i % 20 == 7
}

/// One person of the population.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub email: String,
    pub username: String,
    pub display_name: String,
    pub external_id: String,
}

/// SplitMix64: a fixed, fast, well-mixed sequence from a seed.
struct Mix(u64);

impl Mix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

fn base36(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// User `i`. The username ends in `i` in base 36, so it is unique.
pub fn person(i: u64) -> Person {
    let mut mix = Mix(i);
    let first = FIRST[mix.below(FIRST.len())];
    let surname: String = (0..3)
        .map(|_| SYLLABLES[mix.below(SYLLABLES.len())])
        .collect();
    let mut capitalised = surname.clone();
    capitalised[..1].make_ascii_uppercase();
    let username = format!("{}.{surname}.{}", first.to_lowercase(), base36(i));
    Person {
        email: format!("{username}@{}", DOMAINS[mix.below(DOMAINS.len())]),
        display_name: format!("{first} {capitalised}"),
        username,
        external_id: format!("legacy-{i}"),
    }
}

/// Writes users `from..to` as import lines; `other_hash` is the stored hash
/// of everyone who does not log in (never verified, so never computed).
pub fn write_lines(
    path: &std::path::Path,
    from: u64,
    to: u64,
    login_hash: &str,
    other_hash: &str,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in from..to {
        let p = person(i);
        let hash = if knows_password(i) {
            login_hash
        } else {
            other_hash
        };
        let line = serde_json::json!({
            "email": p.email,
            "password_hash": hash,
            "email_verified": true,
            "display_name": p.display_name,
            "username": p.username,
            "external_id": p.external_id,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// The ListUsers filters, chosen once on the whole population and sent alike
/// to the near-empty and the loaded database.
#[derive(Debug, Clone)]
pub struct Filters {
    /// `username="..."`: one user present in both.
    pub exact: String,
    pub username_narrow: String,
    pub username_broad: String,
    pub name_narrow: String,
    pub name_broad: String,
}

impl Filters {
    /// Narrow prefixes are those of `pivot`'s names that match about ten of
    /// users `0..n`; broad ones match about a sixth of them.
    pub fn choose(n: u64, pivot: u64) -> Self {
        let mut usernames: Vec<String> = Vec::with_capacity(n as usize);
        let mut names: Vec<String> = Vec::with_capacity(n as usize);
        for i in 0..n {
            let p = person(i);
            usernames.push(p.username);
            names.push(p.display_name.to_lowercase());
        }
        usernames.sort_unstable();
        names.sort_unstable();
        let p = person(pivot);
        Self {
            exact: format!("username=\"{}\"", p.username),
            username_narrow: format!("username:\"{}*\"", narrow(&usernames, &p.username)),
            username_broad: "username:\"ma*\"".to_owned(),
            name_narrow: format!(
                "display_name:\"{}*\"",
                narrow(&names, &p.display_name.to_lowercase())
            ),
            name_broad: "display_name:\"Ma*\"".to_owned(),
        }
    }
}

/// How many of the sorted `all` start with `prefix`.
fn count(all: &[String], prefix: &str) -> usize {
    let from = all.partition_point(|s| s.as_str() < prefix);
    all[from..].partition_point(|s| s.starts_with(prefix))
}

/// The longest prefix of `of` matching 5 to 15 of `all`, or failing that the
/// shortest matching at most 15 (a character boundary each time).
fn narrow(all: &[String], of: &str) -> String {
    let prefixes: Vec<&str> = of
        .char_indices()
        .map(|(at, c)| &of[..at + c.len_utf8()])
        .collect();
    let counted: Vec<(&str, usize)> = prefixes.iter().map(|p| (*p, count(all, p))).collect();
    counted
        .iter()
        .rev()
        .find(|(_, n)| (5..=15).contains(n))
        .or_else(|| counted.iter().find(|(_, n)| *n <= 15))
        .map_or_else(|| of.to_owned(), |(p, _)| (*p).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_is_the_same_every_time_and_usernames_are_unique() {
        assert_eq!(person(12345), person(12345));
        let names: std::collections::HashSet<String> =
            (0..5000).map(|i| person(i).username).collect();
        assert_eq!(names.len(), 5000);
        let longest = person(9_999_999);
        assert!(longest.username.len() <= 32, "{}", longest.username);
    }

    #[test]
    fn a_narrow_prefix_matches_a_handful_and_the_pivot() {
        let n = 20_000;
        let f = Filters::choose(n, 3);
        let prefix = f
            .username_narrow
            .trim_start_matches("username:\"")
            .trim_end_matches("*\"");
        let matching = (0..n)
            .filter(|i| person(*i).username.starts_with(prefix))
            .count();
        assert!((1..=15).contains(&matching), "{prefix}: {matching}");
        assert!(person(3).username.starts_with(prefix));
        let broad = (0..n)
            .filter(|i| person(*i).username.starts_with("ma"))
            .count();
        assert!(broad > n as usize / 10, "{broad}");
    }
}
