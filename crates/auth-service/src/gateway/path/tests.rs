//! The path normaliser as a table of the forms attackers use, and as
//! properties over generated variants of paths: whatever is accepted is
//! already what RFC 3986 normalisation, and every server-specific reading,
//! make of it; so a decision on it is the decision on the normalised path,
//! or the request is refused.

use super::{PathRejection as R, RequestPath, is_unreserved};
use proptest::prelude::*;

fn parse(s: &str) -> Result<RequestPath, R> {
    RequestPath::parse(s.as_bytes())
}

const ADA: &str = "0193a1b2-0000-7000-8000-00000000000a";

#[test]
fn accepts_normal_paths_and_drops_the_query() {
    for (target, path) in [
        ("/", "/"),
        ("/users", "/users"),
        ("/users/", "/users/"),
        (
            "/users/0193-abc/avatar?size=2&x=/../y",
            "/users/0193-abc/avatar",
        ),
        ("/files/a%20b/caf%C3%A9", "/files/a%20b/caf%C3%A9"),
        (
            "/identity.user.v1.UserService/GetUser",
            "/identity.user.v1.UserService/GetUser",
        ),
        ("/a/.../b~c/d:e@f!$&'()*+,=", "/a/.../b~c/d:e@f!$&'()*+,="),
        ("/x?", "/x"),
    ] {
        assert_eq!(
            parse(target).map(|p| p.to_string()),
            Ok(path.to_owned()),
            "{target}"
        );
    }
}

#[test]
fn refuses_every_form_a_server_reads_differently() {
    let own = format!("/users/{ADA}");
    let cases: Vec<(String, R)> = vec![
        (format!("{own}/../bob"), R::DotSegment),
        (format!("{own}/%2e%2e/bob"), R::DotSegment),
        (format!("{own}/%2E%2E/bob"), R::DotSegment),
        (format!("{own}/.%2e/bob"), R::DotSegment),
        (format!("{own}/%2e./bob"), R::DotSegment),
        (format!("{own}/./../bob"), R::DotSegment),
        (format!("{own}/."), R::DotSegment),
        (format!("{own}/..;/bob"), R::Semicolon),
        (format!("{own};x=1"), R::Semicolon),
        (format!("{own}%3B"), R::EncodedSeparator),
        (format!("{own}%2f..%2fbob"), R::EncodedSeparator),
        (format!("{own}%2F..%2Fbob"), R::EncodedSeparator),
        (format!("{own}%5c..%5cbob"), R::EncodedSeparator),
        (format!("{own}\\..\\bob"), R::Backslash),
        (format!("{own}//bob"), R::EmptySegment),
        ("//users".to_owned(), R::EmptySegment),
        (format!("{own}%00"), R::EncodedControl),
        (format!("{own}%0d%0a"), R::EncodedControl),
        (format!("{own}%"), R::BadEscape),
        (format!("{own}%4"), R::BadEscape),
        (format!("{own}%zz"), R::BadEscape),
        ("/users/%61da".to_owned(), R::NotNormal),
        ("/users/%7e".to_owned(), R::NotNormal),
        ("/users/a%3fb".to_owned(), R::NotNormal),
        ("/users/a b".to_owned(), R::Byte(b' ')),
        ("/users/a\tb".to_owned(), R::Byte(b'\t')),
        ("/users/caf\u{e9}".to_owned(), R::Byte(0xc3)),
        ("/users/a\"b".to_owned(), R::Character('"')),
        ("/users/{a}".to_owned(), R::Character('{')),
        ("/users/a#b".to_owned(), R::Fragment),
        ("users/a".to_owned(), R::NotOriginForm),
        ("http://h/users/a".to_owned(), R::NotOriginForm),
        ("*".to_owned(), R::NotOriginForm),
        (String::new(), R::NotOriginForm),
        (
            format!("/{}", "a".repeat(super::MAX_TARGET_BYTES)),
            R::TooLong,
        ),
    ];
    for (target, why) in cases {
        assert_eq!(parse(&target), Err(why), "{target:?}");
    }
    // Raw bytes, as nginx's `$request_uri` passes them: refused, even in the query.
    assert_eq!(
        RequestPath::parse(b"/users/a?note=\xff"),
        Err(R::Byte(0xff))
    );
    assert_eq!(RequestPath::parse(b"/users/a\0"), Err(R::Byte(0)));
}

#[test]
fn path_segments_for_placeholders_are_plain_names() {
    let p = parse("/users/0193-abc/a%20b/x:y/avatar/").unwrap();
    assert_eq!(p.plain_segment(1), Some("users"));
    assert_eq!(p.plain_segment(2), Some("0193-abc"));
    assert_eq!(p.plain_segment(3), None, "an escape");
    assert_eq!(p.plain_segment(4), None, "a sub-delimiter");
    assert_eq!(p.plain_segment(5), Some("avatar"));
    assert_eq!(p.plain_segment(6), None, "the trailing slash is no segment");
    assert_eq!(p.plain_segment(0), None);
}

// ---- Reference readings of a path, written independently of the parser. ----

fn percent_decode(s: &str, only_unreserved: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let escaped = s
            .get(i + 1..i + 3)
            .filter(|h| b[i] == b'%' && h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .filter(|&v| !only_unreserved || is_unreserved(v));
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// RFC 3986 §5.2.4 on segments.
fn remove_dot_segments(segments: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let n = segments.len();
    for (i, s) in segments.into_iter().enumerate() {
        match s.as_slice() {
            b"." | b".." => {
                if s == b".." {
                    out.pop();
                }
                // A final dot segment leaves a trailing slash.
                if i + 1 == n {
                    out.push(Vec::new());
                }
            }
            _ => out.push(s),
        }
    }
    out
}

fn path_part(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or_default()
}

/// RFC 3986 §6.2.2 and §5.2.4: unreserved escapes decoded, hex uppercased,
/// dot segments removed.
fn rfc3986_normalise(target: &str) -> String {
    let decoded = String::from_utf8_lossy(&percent_decode(path_part(target), true)).into_owned();
    let mut upper = String::new();
    let mut chars = decoded.chars().peekable();
    while let Some(c) = chars.next() {
        upper.push(c);
        if c == '%' {
            for _ in 0..2 {
                if let Some(h) = chars.next_if(char::is_ascii_hexdigit) {
                    upper.push(h.to_ascii_uppercase());
                }
            }
        }
    }
    let segments = upper
        .strip_prefix('/')
        .unwrap_or(&upper)
        .split('/')
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let out = remove_dot_segments(segments);
    let joined: Vec<String> = out
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    format!("/{}", joined.join("/"))
}

/// The segments a permissive upstream acts on: everything decoded (before or
/// after splitting), `\\` a separator, `;` parameters removed (Tomcat), `//`
/// merged or not, dot segments removed; a trailing slash is no segment.
fn server_segments(target: &str, decode_first: bool, merge: bool) -> Vec<Vec<u8>> {
    let path = path_part(target);
    let raw = if decode_first {
        percent_decode(path, false)
    } else {
        path.as_bytes().to_vec()
    };
    let segments: Vec<Vec<u8>> = raw
        .split(|&b| b == b'/' || b == b'\\')
        .skip(1)
        .map(|s| s.split(|&b| b == b';').next().unwrap_or_default().to_vec())
        .map(|s| {
            if decode_first {
                s
            } else {
                percent_decode(&String::from_utf8_lossy(&s), false)
            }
        })
        .filter(|s| !merge || !s.is_empty())
        .collect();
    without_trailing_slash(remove_dot_segments(segments))
}

fn without_trailing_slash(mut segments: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if segments.last().is_some_and(Vec::is_empty) {
        segments.pop();
    }
    segments
}

/// What a decision reads: the accepted path's segments, decoded.
fn decided_segments(p: &RequestPath) -> Vec<Vec<u8>> {
    let segments = p.as_str().split('/').skip(1);
    without_trailing_slash(segments.map(|s| percent_decode(s, false)).collect())
}

// ---- Generated variants. ----

const SEGMENTS: &[&str] = &[
    "users",
    ADA,
    "0193a1b2-0000-7000-8000-00000000000b",
    "avatar",
    "a%20b",
    "caf%C3%A9",
    "v1.2",
    "x~y",
    "a:b",
    "...",
];
const INSERTED: &[&str] = &[
    ".",
    "..",
    "%2e",
    "%2E",
    ".%2e",
    "%2E.",
    "%2e%2e",
    "%2E%2E",
    "..;",
    ";",
    ";x=1",
    "..;x",
    "",
    "%2e%2e;",
    "\\..",
    "..\\",
    "%5c..",
    "%2f..",
    "%2F..",
    "%252e%252e",
];
const APPENDED: &[&str] = &[
    ";jsessionid=1",
    ";",
    "%2f..%2f",
    "%2F",
    "%5c",
    "%5C",
    "\\",
    "%3b",
    "%3B..",
    "%00",
    "%0a",
    "%",
    "%4",
    "%2",
    "/",
    "//",
    "?q=/../x",
    "#frag",
    "%25",
    "%2e",
    ".",
];

#[derive(Debug, Clone)]
enum Edit {
    /// Insert a segment before segment `at`.
    Insert(usize, usize),
    /// Append text to segment `at`.
    Append(usize, usize),
    /// Percent-encode the character at `at` of the flattened path.
    Encode(usize, bool),
    /// Lowercase or uppercase the hex digits of every escape.
    Case(bool),
    /// A trailing slash or query.
    Tail(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0..INSERTED.len()).prop_map(|(a, c)| Edit::Insert(a, c)),
        (any::<usize>(), 0..APPENDED.len()).prop_map(|(a, c)| Edit::Append(a, c)),
        (any::<usize>(), any::<bool>()).prop_map(|(a, l)| Edit::Encode(a, l)),
        any::<bool>().prop_map(Edit::Case),
        (0..3usize).prop_map(Edit::Tail),
    ]
}

fn variant() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(0..SEGMENTS.len(), 0..5),
        prop::collection::vec(edit(), 0..5),
    )
        .prop_map(|(base, edits)| {
            let mut segments: Vec<String> = base.iter().map(|&i| SEGMENTS[i].to_owned()).collect();
            let mut tail = String::new();
            for e in edits {
                match e {
                    Edit::Insert(at, c) => {
                        let at = at % (segments.len() + 1);
                        segments.insert(at, INSERTED[c].to_owned());
                    }
                    Edit::Append(at, c) if !segments.is_empty() => {
                        let at = at % segments.len();
                        segments[at].push_str(APPENDED[c]);
                    }
                    Edit::Append(..) => {}
                    Edit::Encode(at, lower) => {
                        let flat = segments.join("/");
                        if flat.is_empty() {
                            continue;
                        }
                        let at = at % flat.len();
                        let c = flat.as_bytes()[at];
                        if !flat.is_char_boundary(at) || !flat.is_char_boundary(at + 1) {
                            continue;
                        }
                        let escape = if lower {
                            format!("%{c:02x}")
                        } else {
                            format!("%{c:02X}")
                        };
                        let rebuilt = format!("{}{escape}{}", &flat[..at], &flat[at + 1..]);
                        segments = rebuilt.split('/').map(str::to_owned).collect();
                    }
                    Edit::Case(lower) => {
                        for s in &mut segments {
                            *s = recase(s, lower);
                        }
                    }
                    Edit::Tail(0) => tail = "/".into(),
                    Edit::Tail(1) => tail = "?a=1&b=/../c".into(),
                    Edit::Tail(_) => tail = "?".into(),
                }
            }
            format!("/{}{tail}", segments.join("/"))
        })
}

fn recase(s: &str, lower: bool) -> String {
    let mut out = String::new();
    let mut hex_left = 0;
    for c in s.chars() {
        if hex_left > 0 && c.is_ascii_hexdigit() {
            out.push(if lower {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            });
            hex_left -= 1;
            continue;
        }
        hex_left = if c == '%' { 2 } else { 0 };
        out.push(c);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// A variant is refused, or it is its own normal form and every server's
    /// reading of it gives the segments the decision reads: so the decision
    /// on it is the decision on the normalised path.
    #[test]
    fn decision_is_on_the_normalised_path_or_denied(target in variant()) {
        if let Ok(p) = parse(&target) {
            prop_assert_eq!(p.as_str(), rfc3986_normalise(&target));
            let decided = decided_segments(&p);
            for decode_first in [true, false] {
                for merge in [true, false] {
                    let read = server_segments(&target, decode_first, merge);
                    prop_assert_eq!(&read, &decided, "decode first: {}, merge: {}", decode_first, merge);
                }
            }
            // `users/{path.2}` reads the same segment on both.
            let normal = parse(&rfc3986_normalise(&target));
            prop_assert_eq!(normal.as_ref().map(|n| n.plain_segment(2)), Ok(p.plain_segment(2)));
        }
    }

    /// Whatever is accepted is already normal: parsing it again is identity.
    #[test]
    fn accepted_paths_round_trip(target in variant()) {
        if let Ok(p) = parse(&target) {
            prop_assert_eq!(p.as_str(), path_part(&target));
            prop_assert_eq!(parse(p.as_str()), Ok(p.clone()));
        }
    }

    /// Any bytes at all: an answer, never a panic.
    #[test]
    fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = RequestPath::parse(&bytes);
        let mut slashed = b"/".to_vec();
        slashed.extend(&bytes);
        if let Ok(p) = RequestPath::parse(&slashed) {
            prop_assert_eq!(parse(p.as_str()), Ok(p.clone()));
        }
    }
}
