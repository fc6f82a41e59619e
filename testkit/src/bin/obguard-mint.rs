//! Mints access tokens with a local private key, for the demo and for trying obguard by hand.
//!
//! ```text
//! obguard-mint --key envoy/demo/keys/DEMO-ONLY-issuer-rsa.private.pem --alg PS256 --kid demo-rsa \
//!   --iss https://demo-idp.obguard.test --aud https://demo-bank.obguard.test \
//!   --client-id aggregator-tpp --scope "accounts transactions:read"
//! ```

use clap::Parser;
use obguard_testkit::{b64, jwk_from_pem, now, sign_with_pem};
use serde_json::{Map, Value, json};

#[derive(Parser)]
#[command(about = "Mint a signed JWT access token (RFC 9068 shape) with a local private key")]
struct Args {
    /// PKCS#8 PEM private key (RSA, P-256, P-384 or Ed25519)
    #[arg(long)]
    key: std::path::PathBuf,
    /// RS256..RS512, PS256..PS512, ES256, ES384, EdDSA
    #[arg(long, default_value = "PS256")]
    alg: String,
    #[arg(long)]
    kid: Option<String>,
    #[arg(long, default_value = "at+jwt")]
    typ: String,
    #[arg(long, required_unless_present = "jwk")]
    iss: Option<String>,
    #[arg(long, required_unless_present = "jwk")]
    aud: Option<String>,
    #[arg(long, required_unless_present = "jwk")]
    client_id: Option<String>,
    /// Print the key's public JWK (with --kid) instead of minting a token
    #[arg(long)]
    jwk: bool,
    /// Subject (defaults to `psu-<client id>`)
    #[arg(long)]
    sub: Option<String>,
    /// Space-separated scopes
    #[arg(long, default_value = "")]
    scope: String,
    /// Lifetime in seconds
    #[arg(long, default_value_t = 300)]
    ttl: u64,
    /// Shift iat/nbf/exp by this many seconds (negative: a token from the past)
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    shift: i64,
    /// Extra claims as a JSON object, merged last
    #[arg(long)]
    claims: Option<String>,
}

fn main() {
    let args = Args::parse();
    let pem = std::fs::read_to_string(&args.key).unwrap_or_else(|err| {
        eprintln!("obguard-mint: cannot read {}: {err}", args.key.display());
        std::process::exit(2);
    });
    if args.jwk {
        match jwk_from_pem(&pem, args.kid.as_deref().unwrap_or("")) {
            Ok(jwk) => println!("{jwk}"),
            Err(err) => {
                eprintln!("obguard-mint: {err}");
                std::process::exit(2);
            }
        }
        return;
    }
    let client_id = args.client_id.unwrap_or_default();
    let iat = now().saturating_add_signed(args.shift);
    let mut claims = json!({
        "iss": args.iss,
        "aud": args.aud,
        "sub": args.sub.unwrap_or_else(|| format!("psu-{client_id}")),
        "client_id": client_id,
        "scope": args.scope,
        "iat": iat,
        "nbf": iat,
        "exp": iat + args.ttl,
        "jti": b64(iat.to_be_bytes()) + "-" + &std::process::id().to_string(),
    });
    if let Some(extra) = args.claims {
        let extra: Map<String, Value> = serde_json::from_str(&extra).unwrap_or_else(|err| {
            eprintln!("obguard-mint: --claims is not a JSON object: {err}");
            std::process::exit(2);
        });
        if let Some(object) = claims.as_object_mut() {
            object.extend(extra);
        }
    }
    let mut header = json!({"alg": args.alg, "typ": args.typ});
    if let Some(kid) = args.kid {
        header["kid"] = json!(kid);
    }
    match sign_with_pem(&args.alg, &pem, &header, &claims) {
        Ok(token) => println!("{token}"),
        Err(err) => {
            eprintln!("obguard-mint: {err}");
            std::process::exit(2);
        }
    }
}
