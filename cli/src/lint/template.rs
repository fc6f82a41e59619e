//! Path templates of routes and operations, compared the way obguard matches requests:
//! segment by segment, a literal matches itself, a `{Param}` any one segment.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// A whole-segment `{Name}`.
    Param(String),
    /// A segment mixing text and parameters (`{id}.json`): OpenAPI allows it, obguard routes
    /// cannot express it except as a whole-segment parameter.
    Mixed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub segments: Vec<Segment>,
}

impl Template {
    /// `/accounts/{AccountId}` → `accounts`, `{AccountId}`. `/` has no segment; a trailing
    /// slash is an empty last segment, as in obguard.
    pub fn parse(path: &str) -> Template {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        if trimmed.is_empty() {
            return Template {
                segments: Vec::new(),
            };
        }
        let segments = trimmed
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
                    Some(name) if !name.contains(['{', '}']) => Segment::Param(name.to_owned()),
                    _ if s.contains('{') => Segment::Mixed(s.to_owned()),
                    _ => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        Template { segments }
    }

    /// Whether every request this operation template describes matches this route template.
    /// A route parameter takes any segment; a route literal only the same literal (one value
    /// of an operation's parameter is not the operation).
    pub fn route_covers(route: &Template, operation: &Template) -> bool {
        route.segments.len() == operation.segments.len()
            && route
                .segments
                .iter()
                .zip(&operation.segments)
                .all(|(r, o)| match (r, o) {
                    (Segment::Param(_), _) => true,
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    _ => false,
                })
    }

    /// Parameter names in order.
    pub fn params(&self) -> Vec<&str> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(name) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Literal segments in order.
    pub fn literals(&self) -> Vec<&str> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Literal(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for segment in &self.segments {
            f.write_str("/")?;
            match segment {
                Segment::Literal(s) | Segment::Mixed(s) => f.write_str(s)?,
                Segment::Param(name) => write!(f, "{{{name}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for path in [
            "/",
            "/accounts",
            "/accounts/{AccountId}/balances",
            "/a/",
            "/f/{id}.json",
        ] {
            assert_eq!(Template::parse(path).to_string(), path);
        }
        assert_eq!(
            Template::parse("/f/{id}.json").segments[1],
            Segment::Mixed("{id}.json".into())
        );
    }

    #[test]
    fn coverage_is_obguard_matching() {
        let covers =
            |r: &str, o: &str| Template::route_covers(&Template::parse(r), &Template::parse(o));
        assert!(covers("/accounts/{Id}", "/accounts/{AccountId}"));
        assert!(covers("/accounts/{Id}", "/accounts/summary"));
        assert!(!covers("/accounts/summary", "/accounts/{AccountId}"));
        assert!(!covers("/accounts", "/accounts/"));
        assert!(!covers("/accounts/{Id}", "/accounts/{Id}/balances"));
        assert!(covers("/f/{x}", "/f/{id}.json"));
        assert!(covers("/", "/"));
    }
}
