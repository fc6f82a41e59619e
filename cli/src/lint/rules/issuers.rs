//! Issuer settings (OBG401, OBG402).

use super::super::config_view::ConfigView;
use super::super::source::pointer;
use super::super::{Finding, Rule};

const HMAC: [&str; 3] = ["HS256", "HS384", "HS512"];

pub fn check(config: &ConfigView) -> Vec<Finding> {
    let mut out = Vec::new();
    for issuer in &config.issuers {
        let at = issuer.index.to_string();
        if issuer.require_typ.is_none() && !issuer.delegation_only {
            out.push(
                Finding::new(
                    Rule::IssuerWithoutTyp,
                    format!(
                        "issuer `{}` does not set `require_typ`: any JWT its keys sign (an ID \
                         token, a logout token) passes as an access token",
                        issuer.issuer
                    ),
                    "Add `\"require_typ\": \"at+jwt\"` (RFC 9068 access tokens).",
                )
                .at(config.location(&pointer(&["issuers", &at, "require_typ"]))),
            );
        }
        for (i, alg) in issuer.algorithms.iter().enumerate() {
            if HMAC.contains(&alg.as_str()) {
                out.push(
                    Finding::new(
                        Rule::IssuerHmac,
                        format!(
                            "issuer `{}` allows `{alg}`: whoever can verify its tokens (every \
                             holder of the shared secret) can mint them",
                            issuer.issuer
                        ),
                        "Remove the HS* algorithms and the `shared_secret`; use PS256 or ES256 \
                         with the provider's JWKS.",
                    )
                    .at(config.location(&pointer(&[
                        "issuers",
                        &at,
                        "algorithms",
                        &i.to_string(),
                    ]))),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{config, of};
    use super::*;

    fn ec_issuer() -> serde_json::Value {
        json!({
            "issuer": "https://other.example",
            "audiences": ["a"],
            "algorithms": ["ES256"],
            "jwks": {"keys": [{
                "kty": "EC", "crv": "P-256",
                "x": "lNSkDCnonWraL2dHZsxj2tjt5D0tgrJDjRI_SHZ_H0I",
                "y": "3IV2ft3O-36kXq6NQcAeRZpC2bwaYfNRIZYEhNj_1Gg"
            }]}
        })
    }

    #[test]
    fn issuer_without_typ() {
        let view = config(json!({"issuers": [ec_issuer()]}));
        let found = check(&view);
        let hits = of(&found, Rule::IssuerWithoutTyp);
        assert_eq!(hits.len(), 1, "{found:?}");
        assert_eq!(hits[0].locations[0].pointer, "/issuers/0/require_typ");
        let mut typed = ec_issuer();
        typed["require_typ"] = json!("at+jwt");
        assert!(check(&config(json!({"issuers": [typed]}))).is_empty());
        // Delegation-only issuers cannot check it.
        let delegated = json!({
            "issuer": "https://idp.example", "audiences": ["a"], "algorithms": [],
            "jwt_authn": {"payload_in_metadata": "jwt_payload"}
        });
        assert!(check(&config(json!({"issuers": [delegated]}))).is_empty());
    }

    #[test]
    fn issuer_hmac() {
        let hs = json!({
            "issuer": "https://hs.example", "audiences": ["a"], "algorithms": ["HS256"],
            "require_typ": "at+jwt",
            "shared_secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"
        });
        let found = check(&config(json!({"issuers": [hs]})));
        let hits = of(&found, Rule::IssuerHmac);
        assert_eq!(hits.len(), 1, "{found:?}");
        assert_eq!(hits[0].locations[0].pointer, "/issuers/0/algorithms/0");
        assert!(of(&check(&config(json!({}))), Rule::IssuerHmac).is_empty());
    }
}
