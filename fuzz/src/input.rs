//! Structure-aware inputs (`arbitrary`): requests, tokens built from the committed ones, JSON
//! values, configuration edits, JWKs and rate-limit replies. Each is decoded from the raw
//! fuzzer bytes with `arbitrary_take_rest`, exactly as `libfuzzer-sys` does for typed targets.

use arbitrary::{Arbitrary, Result, Unstructured};
use serde_json::{Map, Value};

use crate::fixtures::{self, NOW};

/// Strings that steer parsers into their interesting branches.
pub const WORDS: &[&str] = &[
    "",
    " ",
    "Bearer",
    "bearer",
    "Basic",
    "none",
    "None",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "HS256",
    "HS384",
    "HS512",
    "at+jwt",
    "application/at+JWT",
    "JWT",
    "JOSE",
    "dpop+jwt",
    "rsa-1",
    "rsa-2",
    "ec-p256",
    "ec-p384",
    "ed25519",
    "attacker-rsa",
    "RSA",
    "EC",
    "OKP",
    "oct",
    "P-256",
    "P-384",
    "P-521",
    "Ed25519",
    "X25519",
    "sig",
    "enc",
    "verify",
    "sign",
    "accounts",
    "payments",
    "transactions:read",
    "transactions:all",
    "tpp-1",
    "client_id",
    "scope",
    "scp",
    "sub",
    "aud",
    "iss",
    "exp",
    "nbf",
    "iat",
    "jti",
    "crit",
    "jwk",
    "jku",
    "x5c",
    "kid",
    "alg",
    "typ",
    "GET",
    "POST",
    "/accounts",
    "/accounts/acc-1/transactions",
    "/domestic-payments",
    "/health",
    "access_token",
    "%2f",
    "%2e",
    "%25",
    "%00",
    "..",
    ".",
    "//",
    ";",
    "\\",
    "\r\n",
    "\u{0}",
    "\u{7f}",
    "é",
    "💥",
    "https://idp.obguard.test",
    "https://hmac-idp.obguard.test",
    "https://remote-idp.obguard.test",
    "https://gateway-idp.obguard.test",
    "https://api.bank.test",
    "urn:openbanking:psd2:sca",
    "x-obguard-client-id",
    "x-fapi-interaction-id",
    "x-client-geo-country",
    "x-client-asn",
    "x-forwarded-for",
    "user-agent",
    "authorization",
    "host",
    "content-length",
    "GB",
    "RU",
    "203.0.113.9",
    "2001:db8::1",
    "AS64500",
    "client_id",
    "route",
    "verdict",
    "risk_band",
    "country",
    "subject",
    "always",
    "non_allow",
    "never",
    "fail_open",
    "fail_closed",
    "allow",
    "deny",
    "authenticate",
    "throttle",
    "block",
    "step_up",
    "low",
    "medium",
    "high",
    "enforce",
    "shadow",
    "refuse",
    "space_delimited",
    "array",
    "{AccountId}",
    "{",
    "}",
    "*",
];

/// A string: mostly a dictionary word, sometimes arbitrary, sometimes two joined.
#[derive(Debug, Clone)]
pub struct Text(pub String);

impl<'a> Arbitrary<'a> for Text {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let word =
            |u: &mut Unstructured<'a>| -> Result<String> { Ok((*u.choose(WORDS)?).to_owned()) };
        Ok(Text(match u.int_in_range(0..=9u8)? {
            0..=5 => word(u)?,
            6 | 7 => String::arbitrary(u)?,
            8 => format!("{}{}", word(u)?, word(u)?),
            _ => "x".repeat(usize::from(u.arbitrary::<u16>()?) % 9000),
        }))
    }
}

/// A JSON value, depth-bounded, with numbers at their edges.
#[derive(Debug, Clone)]
pub struct Json(pub Value);

impl Json {
    fn build(u: &mut Unstructured<'_>, depth: u8) -> Result<Value> {
        let top = if depth == 0 { 4 } else { 6 };
        Ok(match u.int_in_range(0..=top)? {
            0 => Value::Null,
            1 => Value::Bool(u.arbitrary()?),
            2 => match u.int_in_range(0..=7u8)? {
                0 => Value::from(u.arbitrary::<u64>()?),
                1 => Value::from(u.arbitrary::<i64>()?),
                2 => Value::from(u.arbitrary::<f64>()?),
                3 => Value::from(u64::MAX),
                4 => Value::from(NOW),
                5 => Value::from(NOW as i64 + i64::from(u.arbitrary::<i16>()?)),
                6 => Value::from(-1),
                _ => Value::from(u.int_in_range(0..=4096u32)?),
            },
            3 | 4 => Value::String(Text::arbitrary(u)?.0),
            5 => {
                let n = u.int_in_range(0..=4u8)?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(Self::build(u, depth - 1)?);
                }
                Value::Array(items)
            }
            _ => {
                let n = u.int_in_range(0..=4u8)?;
                let mut map = Map::new();
                for _ in 0..n {
                    map.insert(Text::arbitrary(u)?.0, Self::build(u, depth - 1)?);
                }
                Value::Object(map)
            }
        })
    }
}

impl<'a> Arbitrary<'a> for Json {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Json(Self::build(u, 3)?))
    }
}

/// Changes to a JSON document: at a path that exists in it (chosen by index among all of
/// its paths), or a new member.
#[derive(Debug, Clone, Arbitrary)]
pub enum Edit {
    Set {
        at: u16,
        value: Json,
    },
    Remove {
        at: u16,
    },
    AddMember {
        at: u16,
        name: Text,
        value: Json,
    },
    /// Duplicates an array element (more issuers, routes, keys...).
    Duplicate {
        at: u16,
    },
}

/// Every JSON pointer in `value`, parents before children.
pub fn pointers(value: &Value) -> Vec<String> {
    fn walk(value: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(
                        v,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn parent_of(pointer: &str) -> Option<(&str, &str)> {
    pointer.rsplit_once('/')
}

/// Applies `edits` to `doc`, skipping the inapplicable ones.
pub fn apply(doc: &mut Value, edits: &[Edit]) {
    for edit in edits {
        let paths = pointers(doc);
        let pick = |at: u16| paths.get(usize::from(at) % paths.len().max(1)).cloned();
        match edit {
            Edit::Set { at, value } => {
                if let Some(slot) = pick(*at).and_then(|p| doc.pointer_mut(&p)) {
                    *slot = value.0.clone();
                }
            }
            Edit::Remove { at } => {
                let Some(path) = pick(*at) else { continue };
                let Some((parent, last)) = parent_of(&path) else {
                    continue;
                };
                match doc.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&last.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = last.parse::<usize>()
                            && i < items.len()
                        {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            Edit::AddMember { at, name, value } => {
                if let Some(Value::Object(map)) = pick(*at).and_then(|p| doc.pointer_mut(&p)) {
                    map.insert(name.0.clone(), value.0.clone());
                }
            }
            Edit::Duplicate { at } => {
                let Some(path) = pick(*at) else { continue };
                let Some((parent, last)) = parent_of(&path) else {
                    continue;
                };
                if let Some(Value::Array(items)) = doc.pointer_mut(parent)
                    && let Ok(i) = last.parse::<usize>()
                    && let Some(item) = items.get(i).cloned()
                    && items.len() < 64
                {
                    items.push(item);
                }
            }
        }
    }
}

/// A bearer token built from the committed ones.
#[derive(Debug, Clone, Arbitrary)]
pub enum TokenGen {
    /// A committed token as it is.
    Committed(u8),
    /// A committed token with byte-level damage.
    Damaged {
        of: u8,
        damage: Vec<Damage>,
    },
    /// A committed token's payload (and signature) under a crafted header.
    Header {
        of: u8,
        header: HeaderGen,
    },
    /// A committed token's header and signature around an edited payload.
    Payload {
        of: u8,
        edits: Vec<Edit>,
    },
    /// Segments of two committed tokens spliced together.
    Splice {
        a: u8,
        b: u8,
        mask: u8,
    },
    Raw(String),
}

#[derive(Debug, Clone, Arbitrary)]
pub enum Damage {
    Flip { at: u16, bit: u8 },
    Truncate { at: u16 },
    Insert { at: u16, byte: u8 },
    Remove { at: u16 },
    Padding,
    Extra(Text),
}

/// A JOSE header: the fields obguard reads, each possibly odd.
#[derive(Debug, Clone, Arbitrary)]
pub struct HeaderGen {
    pub alg: Option<Text>,
    pub kid: Option<Text>,
    pub typ: Option<Text>,
    pub crit: Option<Vec<Text>>,
    pub jwk: Option<Json>,
    pub extra: Vec<(Text, Json)>,
    /// Write `alg` twice (duplicate members are ambiguous).
    pub duplicate_alg: bool,
}

impl HeaderGen {
    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        for (k, v) in &self.extra {
            map.insert(k.0.clone(), v.0.clone());
        }
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                map.insert(k.to_owned(), v);
            }
        };
        put("alg", self.alg.as_ref().map(|t| Value::String(t.0.clone())));
        put("kid", self.kid.as_ref().map(|t| Value::String(t.0.clone())));
        put("typ", self.typ.as_ref().map(|t| Value::String(t.0.clone())));
        put(
            "crit",
            self.crit
                .as_ref()
                .map(|c| Value::from(c.iter().map(|t| t.0.clone()).collect::<Vec<_>>())),
        );
        put("jwk", self.jwk.as_ref().map(|j| j.0.clone()));
        let mut text = Value::Object(map).to_string();
        if self.duplicate_alg
            && let Some(rest) = text.strip_prefix('{')
        {
            text = format!("{{\"alg\":\"none\",{rest}");
        }
        text
    }
}

fn committed(index: u8) -> &'static str {
    let tokens = &fixtures::get().tokens;
    tokens
        .get(usize::from(index) % tokens.len().max(1))
        .map_or("", |t| t.token.as_str())
}

fn decode_json_segment(segment: &str) -> Value {
    obguard::identify::jose_header::decode_segment(segment)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

impl TokenGen {
    pub fn build(&self) -> String {
        match self {
            TokenGen::Committed(i) => committed(*i).to_owned(),
            TokenGen::Damaged { of, damage } => {
                let mut bytes = committed(*of).as_bytes().to_vec();
                for d in damage {
                    let at = |at: &u16, len: usize| usize::from(*at) % len.max(1);
                    match d {
                        Damage::Flip { at: i, bit } => {
                            let i = at(i, bytes.len());
                            if let Some(b) = bytes.get_mut(i) {
                                *b ^= 1 << (bit % 8);
                            }
                        }
                        Damage::Truncate { at: i } => bytes.truncate(at(i, bytes.len())),
                        Damage::Insert { at: i, byte } => {
                            let i = at(i, bytes.len() + 1);
                            bytes.insert(i.min(bytes.len()), *byte);
                        }
                        Damage::Remove { at: i } => {
                            let i = at(i, bytes.len());
                            if i < bytes.len() {
                                bytes.remove(i);
                            }
                        }
                        Damage::Padding => bytes.extend_from_slice(b"=="),
                        Damage::Extra(t) => bytes.extend_from_slice(t.0.as_bytes()),
                    }
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            TokenGen::Header { of, header } => {
                let token = committed(*of);
                let mut parts = token.splitn(2, '.');
                let _ = parts.next();
                let rest = parts.next().unwrap_or("");
                format!("{}.{rest}", fixtures::b64url(header.to_json()))
            }
            TokenGen::Payload { of, edits } => {
                let token = committed(*of);
                let parts: Vec<&str> = token.split('.').collect();
                let (Some(h), Some(p), Some(s)) = (parts.first(), parts.get(1), parts.get(2))
                else {
                    return token.to_owned();
                };
                let mut payload = decode_json_segment(p);
                apply(&mut payload, edits);
                format!("{h}.{}.{s}", fixtures::b64url(payload.to_string()))
            }
            TokenGen::Splice { a, b, mask } => {
                let a: Vec<&str> = committed(*a).split('.').collect();
                let b: Vec<&str> = committed(*b).split('.').collect();
                (0..3)
                    .map(|i| {
                        let from = if mask & (1 << i) == 0 { &a } else { &b };
                        from.get(i).copied().unwrap_or("")
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            }
            TokenGen::Raw(s) => s.clone(),
        }
    }
}

/// An `Authorization` header value.
#[derive(Debug, Clone, Arbitrary)]
pub enum AuthGen {
    Bearer(TokenGen),
    /// Another scheme, odd spacing or case, a comma-folded pair.
    Scheme {
        scheme: Text,
        spaces: u8,
        token: TokenGen,
        fold: Option<TokenGen>,
    },
    Raw(String),
}

impl AuthGen {
    pub fn build(&self) -> String {
        match self {
            AuthGen::Bearer(t) => format!("Bearer {}", t.build()),
            AuthGen::Scheme {
                scheme,
                spaces,
                token,
                fold,
            } => {
                let mut s = format!(
                    "{}{}{}",
                    scheme.0,
                    " ".repeat(usize::from(spaces % 4)),
                    token.build()
                );
                if let Some(f) = fold {
                    s.push_str(", Bearer ");
                    s.push_str(&f.build());
                }
                s
            }
            AuthGen::Raw(s) => s.clone(),
        }
    }
}

/// A request path: a known Open Banking path, segments, or anything.
#[derive(Debug, Clone, Arbitrary)]
pub enum PathGen {
    Known {
        which: u8,
        id: Text,
        query: Option<Text>,
    },
    Segments {
        segments: Vec<Text>,
        trailing_slash: bool,
        query: Option<Text>,
    },
    Raw(String),
}

const KNOWN_PATHS: &[&str] = &[
    "/accounts",
    "/accounts/{}",
    "/accounts/{}/balances",
    "/accounts/{}/transactions",
    "/domestic-payments",
    "/health",
    "/{}",
    "/",
    "/unrouted/{}",
];

impl PathGen {
    pub fn build(&self) -> String {
        let with_query = |mut p: String, q: &Option<Text>| {
            if let Some(q) = q {
                p.push('?');
                p.push_str(&q.0);
            }
            p
        };
        match self {
            PathGen::Known { which, id, query } => {
                let template = KNOWN_PATHS
                    .get(usize::from(*which) % KNOWN_PATHS.len())
                    .copied()
                    .unwrap_or("/");
                with_query(template.replace("{}", &id.0), query)
            }
            PathGen::Segments {
                segments,
                trailing_slash,
                query,
            } => {
                let mut p: String = segments.iter().map(|s| format!("/{}", s.0)).collect();
                if *trailing_slash || p.is_empty() {
                    p.push('/');
                }
                with_query(p, query)
            }
            PathGen::Raw(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub enum MethodGen {
    Get,
    Post,
    Put,
    Delete,
    Head,
    Options,
    Patch,
    Other(Text),
}

impl MethodGen {
    pub fn as_str(&self) -> &str {
        match self {
            MethodGen::Get => "GET",
            MethodGen::Post => "POST",
            MethodGen::Put => "PUT",
            MethodGen::Delete => "DELETE",
            MethodGen::Head => "HEAD",
            MethodGen::Options => "OPTIONS",
            MethodGen::Patch => "PATCH",
            MethodGen::Other(t) => &t.0,
        }
    }
}

/// One request in a sequence against the same worker.
#[derive(Debug, Clone, Arbitrary)]
pub struct RequestGen {
    pub method: MethodGen,
    pub path: PathGen,
    pub authorization: Vec<AuthGen>,
    pub interaction_id: Option<Text>,
    pub headers: Vec<(Text, Text)>,
    /// `jwt_authn` metadata: (key, payload) pairs; the payload edits a committed token's
    /// claims with `iss` set to the gateway issuer.
    pub payloads: Option<Vec<(Text, PayloadGen)>>,
    /// Seconds added to [`NOW`].
    pub clock: i16,
    pub now_ms_jitter: u16,
}

#[derive(Debug, Clone, Arbitrary)]
pub enum PayloadGen {
    Gateway { of: u8, edits: Vec<Edit> },
    Any(Json),
}

impl PayloadGen {
    pub fn build(&self) -> Value {
        match self {
            PayloadGen::Gateway { of, edits } => {
                let token = committed(*of);
                let mut payload = decode_json_segment(token.split('.').nth(1).unwrap_or(""));
                if let Some(map) = payload.as_object_mut() {
                    map.insert("iss".into(), Value::from(fixtures::GATEWAY_ISSUER));
                    if let Some(scope) = map.remove("scope") {
                        let scopes: Vec<Value> = scope
                            .as_str()
                            .unwrap_or("")
                            .split(' ')
                            .map(Value::from)
                            .collect();
                        map.insert("scp".into(), Value::from(scopes));
                    }
                }
                apply(&mut payload, edits);
                payload
            }
            PayloadGen::Any(json) => json.0.clone(),
        }
    }
}

/// Input of the `decide` target.
#[derive(Debug, Clone, Arbitrary)]
pub struct DecideInput {
    pub full_config: bool,
    /// When the remote issuer's keys were fetched, seconds before [`NOW`] (`None`: never).
    pub remote_keys_age: Option<u16>,
    /// Bytes put into the first requests' clients' baseline slots (corrupt shared data).
    pub baseline_slot: Option<Vec<u8>>,
    pub requests: Vec<RequestGen>,
}

/// A JWK whose members come from the real keys, damaged, or anything.
#[derive(Debug, Clone, Arbitrary)]
pub struct JwkGen {
    pub from_key: u8,
    pub kty: Option<Option<Text>>,
    pub crv: Option<Option<Text>>,
    pub use_: Option<Option<Text>>,
    pub key_ops: Option<Vec<Text>>,
    pub alg: Option<Text>,
    pub kid: Option<Option<Text>>,
    /// Replace `n`/`e`/`x`/`y` (`None` keeps the real key's): bytes, damaged real bytes, or
    /// a value that is not base64url.
    pub members: Vec<(MemberName, MemberValue)>,
    pub extra: Vec<(Text, Json)>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum MemberName {
    N,
    E,
    X,
    Y,
    D,
    K,
    X5c,
}

impl MemberName {
    fn as_str(self) -> &'static str {
        match self {
            MemberName::N => "n",
            MemberName::E => "e",
            MemberName::X => "x",
            MemberName::Y => "y",
            MemberName::D => "d",
            MemberName::K => "k",
            MemberName::X5c => "x5c",
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub enum MemberValue {
    Bytes(Vec<u8>),
    /// The real member with a bit flipped, truncated, or zero-padded in front.
    Damaged {
        flip: Option<(u16, u8)>,
        truncate: Option<u16>,
        leading_zeros: u8,
    },
    /// A big modulus or exponent of `len` bytes of `fill`.
    Big {
        len: u16,
        fill: u8,
    },
    Json(Json),
}

impl JwkGen {
    pub fn build(&self) -> Value {
        let jwks = &fixtures::get().jwks;
        let keys: Vec<Value> = serde_json::from_slice::<Value>(jwks)
            .ok()
            .and_then(|v| v.get("keys").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        let mut key = keys
            .get(usize::from(self.from_key) % keys.len().max(1))
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let Some(map) = key.as_object_mut() else {
            return key;
        };
        let mut set = |name: &str, v: &Option<Option<Text>>| match v {
            None => {}
            Some(None) => {
                map.remove(name);
            }
            Some(Some(t)) => {
                map.insert(name.into(), Value::String(t.0.clone()));
            }
        };
        set("kty", &self.kty);
        set("crv", &self.crv);
        set("use", &self.use_);
        set("kid", &self.kid);
        if let Some(ops) = &self.key_ops {
            map.insert(
                "key_ops".into(),
                Value::from(ops.iter().map(|t| t.0.clone()).collect::<Vec<_>>()),
            );
        }
        if let Some(alg) = &self.alg {
            map.insert("alg".into(), Value::String(alg.0.clone()));
        }
        for (name, value) in &self.members {
            let name = name.as_str();
            let real = map
                .get(name)
                .and_then(Value::as_str)
                .and_then(|s| obguard::identify::jose_header::decode_segment(s).ok())
                .unwrap_or_default();
            let v = match value {
                MemberValue::Bytes(b) => Value::String(fixtures::b64url(b)),
                MemberValue::Damaged {
                    flip,
                    truncate,
                    leading_zeros,
                } => {
                    let mut b = vec![0u8; usize::from(leading_zeros % 8)];
                    b.extend_from_slice(&real);
                    if let Some((at, bit)) = flip
                        && !b.is_empty()
                    {
                        let i = usize::from(*at) % b.len();
                        if let Some(byte) = b.get_mut(i) {
                            *byte ^= 1 << (bit % 8);
                        }
                    }
                    if let Some(t) = truncate {
                        b.truncate(usize::from(*t) % (b.len() + 1));
                    }
                    Value::String(fixtures::b64url(b))
                }
                MemberValue::Big { len, fill } => {
                    Value::String(fixtures::b64url(vec![*fill | 1; usize::from(*len) % 4096]))
                }
                MemberValue::Json(j) => j.0.clone(),
            };
            map.insert(name.into(), v);
        }
        for (k, v) in &self.extra {
            map.insert(k.0.clone(), v.0.clone());
        }
        key
    }
}

/// Input of the `jwks_json` target.
#[derive(Debug, Clone, Arbitrary)]
pub struct JwksInput {
    pub keys: Vec<JwkGen>,
    pub keep_real_keys: bool,
    pub max_keys: u8,
    /// Which algorithms the issuer allows (bit i: [`obguard::identify::algorithm::Algorithm`]
    /// number i in [`ALGORITHMS`]).
    pub allowed: u16,
}

pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

pub fn algorithms(mask: u16) -> Vec<obguard::identify::algorithm::Algorithm> {
    ALGORITHMS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .filter_map(|(_, name)| name.parse().ok())
        .collect()
}

/// Input of the `config_json` target.
#[derive(Debug, Clone, Arbitrary)]
pub struct ConfigInput {
    pub full: bool,
    pub edits: Vec<Edit>,
}

/// Input of the `rls_response` target: a `RateLimitResponse` field by field.
#[derive(Debug, Clone, Arbitrary)]
pub struct RlsInput {
    pub call: CallGen,
    pub overall_code: i32,
    pub statuses: Vec<StatusGen>,
    pub request_headers: Vec<HeaderGenRls>,
    pub response_headers: Vec<HeaderGenRls>,
    pub raw_body: Vec<u8>,
}

/// The call around the reply: gRPC status, elapsed time, the route's failure policy.
#[derive(Debug, Clone, Arbitrary)]
pub struct CallGen {
    pub grpc_status: Option<u32>,
    pub elapsed_ms: u16,
    pub timeout_ms: u16,
    pub fail_closed: bool,
    pub failure_status: Option<u16>,
    pub realm: Option<Text>,
    pub interaction_id: Option<Text>,
}

#[derive(Debug, Clone, Arbitrary)]
pub struct StatusGen {
    pub code: i32,
    pub limit: Option<(Text, u32, i32)>,
    pub remaining: u32,
    pub reset: Option<(i64, i32)>,
}

#[derive(Debug, Clone, Arbitrary)]
pub struct HeaderGenRls {
    pub key: Text,
    pub value: Text,
    pub raw_value: Option<Vec<u8>>,
}
