//! The one request every listener is sent, so the ratios between variants compare only what
//! their filters do: the same request line, `Host`, token and headers on every listener, built
//! here once and handed to wrk, oha, the memory run's wrk script and the smoke test alike.
//!
//! The headers are what obguard's warm path with the model reads: the bearer token, the
//! `user-agent`, the geo and ASN headers an edge proxy would add (`x-client-geo-country`,
//! `x-client-asn`, obguard's default `model.country_header` / `asn_header`) and
//! `x-fapi-customer-ip-address` (the customer is present), plus `accept` (oha always sends one).
//! No `x-fapi-interaction-id`: obguard makes one, its default path. `host` is fixed so the
//! listener's port does not show in the bytes.
//!
//! The token is one RS256 access token minted once per run. The `obguard_cold_es256` and
//! `floor_verify_es256` listeners must be sent an ES256 token instead (the only difference):
//! it carries the same claims plus a `pad` claim that brings it to exactly the RS256 token's
//! length (an ES256 signature is 86 base64url characters against RS256's 342), so even the
//! byte count of every request is the same.

use serde_json::{Value, json};

use obguard_testkit::{self as kit, Key};

/// The request path.
pub const PATH: &str = "/accounts";

/// The headers before `authorization`, in the order sent. oha puts `accept`, `user-agent` and
/// `host` first whatever it is given, so wrk sends them in that order too and both send the
/// same bytes.
pub const LEADING: [(&str, &str); 3] = [
    ("accept", "application/json"),
    ("user-agent", "obguard-bench/1.0 (tpp-bench)"),
    ("host", "bank.test"),
];

/// The headers after `authorization`, in the order sent.
pub const TRAILING: [(&str, &str); 3] = [
    ("x-client-geo-country", "GB"),
    ("x-client-asn", "AS64500"),
    ("x-fapi-customer-ip-address", "198.51.100.7"),
];

/// The client the token is issued to.
pub const CLIENT_ID: &str = "tpp-bench";

/// Which token a variant's requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Rs256,
    /// ES256, padded to the RS256 token's length.
    Es256,
}

/// Claims valid for the whole benchmark run (under the test issuer's 3600 s lifetime cap).
pub fn bench_claims() -> Value {
    let now = kit::now();
    let mut claims = kit::claims(CLIENT_ID, "accounts");
    claims["iat"] = json!(now);
    claims["nbf"] = json!(now);
    claims["exp"] = json!(now + 3500);
    claims
}

/// The run's tokens, minted once.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub rs256: String,
    pub es256: String,
}

impl Tokens {
    /// An RS256 token and an ES256 token of exactly the same length: same claims, plus a `pad`
    /// claim in the ES256 one. A base64url text is never 1 more than a multiple of 4 long, so
    /// when the ES256 payload would need such a length the RS256 token gets a short `pad` too.
    pub fn mint() -> Tokens {
        let claims = bench_claims();
        let padded = |pad: Option<usize>| {
            let mut c = claims.clone();
            if let Some(pad) = pad {
                c["pad"] = json!("x".repeat(pad));
            }
            c
        };
        for rs_pad in [None, Some(0), Some(1), Some(2)] {
            let rs256 = kit::token("RS256", Key::Rsa1, &padded(rs_pad));
            for es_pad in std::iter::once(None).chain((0..rs256.len()).map(Some)) {
                let es256 = kit::token("ES256", Key::P256, &padded(es_pad));
                if es256.len() == rs256.len() {
                    return Tokens { rs256, es256 };
                }
                if es256.len() > rs256.len() {
                    break;
                }
            }
        }
        panic!("cannot pad the ES256 token to the RS256 token's length");
    }

    pub fn get(&self, kind: TokenKind) -> &str {
        match kind {
            TokenKind::Rs256 => &self.rs256,
            TokenKind::Es256 => &self.es256,
        }
    }
}

/// The request's headers in the order sent: [`LEADING`], `authorization`, [`TRAILING`].
pub fn headers(token: &str) -> Vec<(String, String)> {
    let pair = |(n, v): &(&str, &str)| ((*n).to_owned(), (*v).to_owned());
    LEADING
        .iter()
        .map(pair)
        .chain([("authorization".to_owned(), format!("Bearer {token}"))])
        .chain(TRAILING.iter().map(pair))
        .collect()
}

/// oha's arguments for the headers: `accept` through `-A`, no `accept-encoding` of its own
/// (`--disable-compression`), every other header as `-H 'name: value'`.
pub fn oha_header_args(token: &str) -> Vec<String> {
    let mut args = vec!["--disable-compression".to_owned()];
    for (n, v) in headers(token) {
        if n == "accept" {
            args.extend(["-A".to_owned(), v]);
        } else {
            args.extend(["-H".to_owned(), format!("{n}: {v}")]);
        }
    }
    args
}

/// The request as a Lua string expression, in [`headers`]' order; `token` is a Lua
/// expression too.
fn lua_request(token: &str) -> String {
    let line = |(n, v): &(&str, &str)| format!(" .. \"{n}: {v}\\r\\n\"");
    let mut lua = format!("\"GET {PATH} HTTP/1.1\\r\\n\"");
    lua.extend(LEADING.iter().map(line));
    lua.push_str(&format!(
        " .. \"authorization: Bearer \" .. {token} .. \"\\r\\n\""
    ));
    lua.extend(TRAILING.iter().map(line));
    lua.push_str(" .. \"\\r\\n\"");
    lua
}

/// wrk script sending the request with `token`, byte for byte and in this header order.
/// (wrk's own `-H` headers come out of a Lua table in an order that changes from one wrk
/// process to the next.) Replacing `wrk.format` keeps wrk's fast path: it calls it once and
/// sends the same buffer on every request.
pub fn wrk_script(token: &str) -> String {
    format!(
        "local req = {}\nwrk.format = function() return req end\n",
        lua_request(&format!("\"{token}\""))
    )
}

/// wrk script for the memory run: the same request, each one carrying the next token of the
/// file `$OBGUARD_TOKENS` (one per line).
pub fn tokens_lua() -> String {
    format!(
        r#"local tokens = {{}}
for line in io.lines(os.getenv("OBGUARD_TOKENS")) do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i % #tokens + 1
  return {}
end
"#,
        lua_request("tokens[i]")
    )
}

/// The request as the harness's own client sends it (smoke test, warm-up checks).
pub fn raw_request(token: &str) -> crate::RawRequest {
    headers(token)
        .into_iter()
        .fold(crate::RawRequest::get(PATH), |req, (n, v)| req.header(n, v))
}

/// The request's bytes.
pub fn bytes(token: &str) -> Vec<u8> {
    raw_request(token).no_auto_headers().to_bytes(0)
}

/// Compares the bytes two load-generator runs sent: `Ok` with a sentence when they are the
/// same apart from the token (`tokens`: the tokens each was given), `Err` saying where not.
pub fn same_apart_from_token(a: &[u8], b: &[u8], tokens: (&str, &str)) -> Result<String, String> {
    if a.len() != b.len() {
        return Err(format!("{} bytes against {}", a.len(), b.len()));
    }
    let masked = |bytes: &[u8], token: &str| {
        String::from_utf8_lossy(bytes).replace(token, &"T".repeat(token.len()))
    };
    let (a, b) = (masked(a, tokens.0), masked(b, tokens.1));
    if a != b {
        return Err(format!(
            "the bytes differ outside the token:\n{}\nagainst\n{}",
            a.trim(),
            b.trim()
        ));
    }
    Ok(if tokens.0 == tokens.1 {
        format!("{} bytes, identical", a.len())
    } else {
        format!("{} bytes, identical apart from the token's bytes", a.len())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_es256_token_has_the_rs256_tokens_length() {
        let t = Tokens::mint();
        assert_eq!(t.rs256.len(), t.es256.len());
        assert_ne!(t.rs256, t.es256);
    }

    #[test]
    fn every_rendering_carries_the_same_headers() {
        let args = oha_header_args("tok");
        assert_eq!(args.len(), 1 + 2 * (1 + LEADING.len() + TRAILING.len()));
        assert!(args.contains(&"authorization: Bearer tok".to_owned()));
        assert!(args.contains(&"host: bank.test".to_owned()));
        assert!(args.contains(&"application/json".to_owned()));
        let expected = "\"GET /accounts HTTP/1.1\\r\\n\" .. \"accept: application/json\\r\\n\" .. \"user-agent: ";
        assert!(wrk_script("tok").starts_with(&format!("local req = {expected}")));
        assert!(wrk_script("tok").contains(
            "\"host: bank.test\\r\\n\" .. \"authorization: Bearer \" .. \"tok\" .. \"\\r\\n\""
        ));
        assert!(tokens_lua().contains("\"authorization: Bearer \" .. tokens[i] .. \"\\r\\n\""));
        for (n, v) in LEADING.iter().chain(&TRAILING) {
            assert!(
                wrk_script("tok").contains(&format!("\"{n}: {v}\\r\\n\"")),
                "{n}"
            );
        }
        assert!(wrk_script("tok").contains("\\r\\n\" .. \"\\r\\n\"\n"));
    }

    #[test]
    fn the_bytes_are_the_headers_in_order() {
        let text = String::from_utf8(bytes("tok")).unwrap();
        assert!(
            text.starts_with("GET /accounts HTTP/1.1\r\naccept: application/json\r\nuser-agent: ")
        );
        assert!(text.contains(
            "\r\nhost: bank.test\r\nauthorization: Bearer tok\r\nx-client-geo-country: GB\r\n"
        ));
        assert!(text.ends_with("x-fapi-customer-ip-address: 198.51.100.7\r\n\r\n"));
    }

    #[test]
    fn token_masking_compares_the_rest() {
        let a = b"GET / HTTP/1.1\r\nauthorization: Bearer aaa\r\n\r\n";
        let b = b"GET / HTTP/1.1\r\nauthorization: Bearer bbb\r\n\r\n";
        assert!(same_apart_from_token(a, b, ("aaa", "bbb")).is_ok());
        assert!(
            same_apart_from_token(a, a, ("aaa", "aaa"))
                .unwrap()
                .contains("identical")
        );
        let c = b"GET / HTTP/1.1\r\nauthorization: Bearer bbb\r\nx: 1\r\n\r\n";
        assert!(same_apart_from_token(a, c, ("aaa", "bbb")).is_err());
        let d = b"PUT / HTTP/1.1\r\nauthorization: Bearer bbb\r\n\r\n";
        assert!(same_apart_from_token(a, d, ("aaa", "bbb")).is_err());
    }
}
