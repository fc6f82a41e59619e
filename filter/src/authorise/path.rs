//! Refuses paths that can mean different things to obguard and to the upstream.
//!
//! Envoy normalises the path first (the shipped configs enable `normalize_path`,
//! `merge_slashes` and `path_with_escaped_slashes_action`); this is the second line for
//! deployments that forgot to: anything still carrying dot segments, doubled slashes, encoded
//! separators or matrix parameters is refused rather than interpreted.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    DotSegment,
    EmptySegment,
    EncodedSeparator,
    Semicolon,
    Backslash,
    ControlCharacter,
}

impl PathError {
    pub fn reason(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "path_not_absolute",
            PathError::DotSegment => "path_dot_segment",
            PathError::EmptySegment => "path_empty_segment",
            PathError::EncodedSeparator => "path_encoded_separator",
            PathError::Semicolon => "path_semicolon",
            PathError::Backslash => "path_backslash",
            PathError::ControlCharacter => "path_control_character",
        }
    }
}

/// Escapes that decode to `/`, `.`, `\`, `%` (double encoding) or NUL.
const FORBIDDEN_ESCAPES: [&str; 5] = ["%2f", "%2e", "%5c", "%25", "%00"];

/// `path` without the query string.
pub fn check(path: &str) -> Result<(), PathError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathError::NotAbsolute);
    };
    if path.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlCharacter);
    }
    if path.contains('\\') {
        return Err(PathError::Backslash);
    }
    if path.contains(';') {
        return Err(PathError::Semicolon);
    }
    let lower = path.to_ascii_lowercase();
    if FORBIDDEN_ESCAPES
        .iter()
        .any(|escape| lower.contains(escape))
    {
        return Err(PathError::EncodedSeparator);
    }
    if rest.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => return Err(PathError::DotSegment),
            // A trailing slash leaves one empty last segment; anywhere else it is `//`.
            "" if index != last => return Err(PathError::EmptySegment),
            _ => {}
        }
    }
    Ok(())
}

/// Splits `:path` into path and query.
pub fn split_query(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "/",
            "/accounts",
            "/accounts/",
            "/accounts/acc-1/transactions",
            "/a/b.c/d..e",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_tricks() {
        let cases = [
            ("accounts", PathError::NotAbsolute),
            ("/accounts/../admin", PathError::DotSegment),
            ("/accounts/./x", PathError::DotSegment),
            ("/accounts/..", PathError::DotSegment),
            ("//admin", PathError::EmptySegment),
            ("/accounts//x", PathError::EmptySegment),
            ("/accounts/%2e%2e/admin", PathError::EncodedSeparator),
            ("/accounts/%2E%2E/admin", PathError::EncodedSeparator),
            ("/accounts%2Fadmin", PathError::EncodedSeparator),
            ("/accounts%5cadmin", PathError::EncodedSeparator),
            ("/accounts/%252e%252e", PathError::EncodedSeparator),
            ("/accounts;jsessionid=1", PathError::Semicolon),
            ("/accounts\\admin", PathError::Backslash),
            ("/accounts\u{0}", PathError::ControlCharacter),
        ];
        for (path, expected) in cases {
            assert_eq!(check(path), Err(expected), "{path}");
        }
    }

    #[test]
    fn query_split() {
        assert_eq!(split_query("/a?b=1"), ("/a", Some("b=1")));
        assert_eq!(split_query("/a"), ("/a", None));
    }
}
