//! The request target a gateway asks about, parsed in one place for Envoy's
//! ext_authz and for HTTP forward auth, before any `{path.N}` is read or any
//! decision made.
//!
//! A decision must be about the resource the upstream will act on. Upstream
//! frameworks normalise paths (RFC 3986 §6.2.2: percent-decoding of unreserved
//! characters, §5.2.4: removal of dot segments) and servers add their own
//! readings (`;` path parameters in Tomcat and Jetty, `\` as a separator,
//! decoding `%2F` into a separator, merging `//`). So a path is accepted only
//! when it is already in the normal form and holds none of those: then every
//! reading of it is the same, the one decided on. Anything else is refused,
//! never repaired, so that what was decided and what the upstream receives
//! cannot differ.

use std::fmt;

/// The longest request target considered (Envoy's default limit for all of a
/// request's headers is 60 KiB).
pub const MAX_TARGET_BYTES: usize = 64 * 1024;

/// The path of an origin-form request target (RFC 9112 §3.2.1) in RFC 3986
/// normal form, without its query: no dot segment (plain or percent-encoded),
/// no empty segment but a trailing one, no `;`, no backslash, no encoded `/`,
/// `\` or `;`, no encoded control character, no percent-escape of an
/// unreserved character and no lowercase hex in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath(String);

/// Why a request target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRejection {
    #[error("the request target is longer than {MAX_TARGET_BYTES} bytes")]
    TooLong,
    #[error("the request target is not in origin form (`/path?query`)")]
    NotOriginForm,
    #[error("the request target holds byte {0:#04x}: only printable ASCII is allowed")]
    Byte(u8),
    #[error("the request target holds a fragment (`#`)")]
    Fragment,
    #[error("the path holds `{0}`, which a path segment may not")]
    Character(char),
    #[error("the path holds a backslash, which some servers read as `/`")]
    Backslash,
    #[error("the path holds `;` (path parameters, which some servers remove)")]
    Semicolon,
    #[error("the path holds a malformed percent-escape")]
    BadEscape,
    #[error("the path holds an encoded `/`, `\\` or `;` (`%2F`, `%5C`, `%3B`)")]
    EncodedSeparator,
    #[error("the path holds an encoded control character")]
    EncodedControl,
    #[error("the path holds a `.` or `..` segment (possibly percent-encoded)")]
    DotSegment,
    #[error("the path holds an empty segment (`//`)")]
    EmptySegment,
    #[error(
        "the path is not in normal form: a percent-escape of an unreserved character, \
         or lowercase hex in one (RFC 3986 §6.2.2)"
    )]
    NotNormal,
}

impl RequestPath {
    /// Parses a request target as a gateway sent it (`/path?query`); bytes,
    /// since a header may hold anything. The query is checked for bytes only
    /// and dropped: no decision reads it.
    pub fn parse(target: &[u8]) -> Result<Self, PathRejection> {
        if target.len() > MAX_TARGET_BYTES {
            return Err(PathRejection::TooLong);
        }
        if let Some(&b) = target.iter().find(|b| !(0x21..=0x7e).contains(*b)) {
            return Err(PathRejection::Byte(b));
        }
        if target.contains(&b'#') {
            return Err(PathRejection::Fragment);
        }
        let path = match target.iter().position(|&b| b == b'?') {
            Some(end) => target.get(..end).unwrap_or_default(),
            None => target,
        };
        let Some(rest) = path.strip_prefix(b"/") else {
            return Err(PathRejection::NotOriginForm);
        };
        let segments: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
        let last = segments.len().saturating_sub(1);
        for (i, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                // `/` alone, or a trailing `/`, is one empty last segment.
                if i == last {
                    continue;
                }
                return Err(PathRejection::EmptySegment);
            }
            check_segment(segment)?;
        }
        // Printable ASCII throughout, so this never falls back.
        let text = String::from_utf8(path.to_vec()).map_err(|_| PathRejection::NotOriginForm)?;
        Ok(Self(text))
    }

    /// The path, e.g. `/users/0193-abc/avatar`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The N-th segment (from 1), when it is a plain name: unreserved
    /// characters only (`A-Z a-z 0-9 - . _ ~`), so that a `{path.N}` value
    /// never carries a separator, an escape or anything else a resource name
    /// might read specially.
    pub fn plain_segment(&self, n: usize) -> Option<&str> {
        let segment = self
            .0
            .split('/')
            .filter(|s| !s.is_empty())
            .nth(n.checked_sub(1)?)?;
        segment.bytes().all(is_unreserved).then_some(segment)
    }
}

impl fmt::Display for RequestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 3986 §2.3.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `pchar` (RFC 3986 §3.3) without `;` and without percent-escapes.
fn is_plain_pchar(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b','
        )
        || matches!(b, b'=' | b':' | b'@')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One non-empty segment: refused if it holds anything but plain `pchar`s and
/// canonical escapes of other bytes, or if it is a dot segment once its
/// unreserved escapes are decoded (`%2e`, `.%2E`).
fn check_segment(segment: &[u8]) -> Result<(), PathRejection> {
    let mut dots_only = true;
    let mut length = 0usize;
    let mut normal = true;
    let mut bytes = segment.iter().copied();
    while let Some(b) = bytes.next() {
        length += 1;
        if b != b'%' {
            match b {
                b'\\' => return Err(PathRejection::Backslash),
                b';' => return Err(PathRejection::Semicolon),
                b if is_plain_pchar(b) => dots_only &= b == b'.',
                other => return Err(PathRejection::Character(char::from(other))),
            }
            continue;
        }
        let (Some(high), Some(low)) = (bytes.next(), bytes.next()) else {
            return Err(PathRejection::BadEscape);
        };
        let (Some(h), Some(l)) = (hex(high), hex(low)) else {
            return Err(PathRejection::BadEscape);
        };
        let value = (h << 4) | l;
        match value {
            b'/' | b'\\' | b';' => return Err(PathRejection::EncodedSeparator),
            0..=0x1f | 0x7f => return Err(PathRejection::EncodedControl),
            v if is_unreserved(v) => normal = false,
            _ => normal &= !(high.is_ascii_lowercase() || low.is_ascii_lowercase()),
        }
        dots_only &= value == b'.';
    }
    if dots_only && length <= 2 {
        return Err(PathRejection::DotSegment);
    }
    if !normal {
        return Err(PathRejection::NotNormal);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
