//! A route's scope requirement: all of one list and at least one of another.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeRule {
    pub all_of: Vec<String>,
    pub any_of: Vec<String>,
}

impl ScopeRule {
    pub fn is_empty(&self) -> bool {
        self.all_of.is_empty() && self.any_of.is_empty()
    }

    pub fn is_satisfied_by(&self, granted: &[String]) -> bool {
        let has = |scope: &String| granted.iter().any(|g| g == scope);
        self.all_of.iter().all(has) && (self.any_of.is_empty() || self.any_of.iter().any(has))
    }

    /// The value of RFC 6750's `scope` attribute: every scope that can satisfy the rule.
    pub fn challenge(&self) -> String {
        self.all_of
            .iter()
            .chain(self.any_of.iter())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn all_of_and_any_of() {
        let rule = ScopeRule {
            all_of: s(&["accounts"]),
            any_of: s(&["read", "write"]),
        };
        assert!(rule.is_satisfied_by(&s(&["accounts", "write"])));
        assert!(!rule.is_satisfied_by(&s(&["accounts"])));
        assert!(!rule.is_satisfied_by(&s(&["read", "write"])));
        assert!(
            !rule.is_satisfied_by(&s(&["accountsx", "read"])),
            "exact match only"
        );
        assert_eq!(rule.challenge(), "accounts read write");
    }

    #[test]
    fn empty_rule_needs_nothing() {
        assert!(ScopeRule::default().is_satisfied_by(&[]));
    }
}
