//! `obguard-models keygen / sign / verify / inspect`, run as the built binary.
// Test helpers may unwrap and index like #[test] fns (clippy.toml): failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg(feature = "train")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use obguard_models::model::doc_example_model;
use obguard_models::{PublicKey, file_digest, schema::hex};

const BIN: &str = env!("CARGO_BIN_EXE_obguard-models");
const PUB_1: &str = include_str!("../../testkit/keys/model-signing-1.pub");
const KEY_1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/keys/model-signing-1.key"
);
const PUB_1_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/keys/model-signing-1.pub"
);
const PUB_2_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/keys/model-signing-2.pub"
);
const KEY_2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/keys/model-signing-2.key"
);

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("obguard-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn fails(o: Output) -> String {
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    stderr(&o)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn unsigned_model(dir: &Path) -> PathBuf {
    let p = dir.join("m.model");
    std::fs::write(&p, doc_example_model()).unwrap();
    p
}

#[test]
fn keygen_writes_a_key_pair_and_never_overwrites() {
    let dir = scratch("keygen");
    let prefix = dir.join("team-a");
    let out = ok(run(&["keygen", "--out", s(&prefix)]));
    let key = dir.join("team-a.key");
    let public = std::fs::read_to_string(dir.join("team-a.pub")).unwrap();
    assert_eq!(public.lines().count(), 1);
    let pk = PublicKey::from_base64(&public).unwrap();
    assert!(out.contains(pk.key_id()), "{out}");
    assert!(out.contains(public.trim()), "{out}");
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    let secret = obguard_models::secret_key_from_pem(&pem).unwrap();
    assert_eq!(PublicKey::from_secret_key(&secret), pk);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }

    // Again with the same prefix: refused, nothing changed.
    let err = fails(run(&["keygen", "--out", s(&prefix)]));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);
    assert_eq!(
        std::fs::read_to_string(dir.join("team-a.pub")).unwrap(),
        public
    );
    // Also when only the .pub exists.
    std::fs::write(dir.join("other.pub"), "x").unwrap();
    fails(run(&["keygen", "--out", s(&dir.join("other"))]));
    assert!(!dir.join("other.key").exists());

    // A key from keygen signs a file that verifies with its .pub.
    let model = unsigned_model(&dir);
    ok(run(&[
        "sign",
        "--key",
        s(&key),
        "--model",
        s(&model),
        "--out",
        s(&model),
    ]));
    let out = ok(run(&[
        "verify",
        "--model",
        s(&model),
        "--public-key",
        s(&dir.join("team-a.pub")),
    ]));
    assert!(out.contains(pk.key_id()), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sign_then_verify_then_inspect() {
    let dir = scratch("sign");
    let model = unsigned_model(&dir);
    let digest = hex(&file_digest(&doc_example_model()).unwrap());
    let id1 = PublicKey::from_base64(PUB_1).unwrap().key_id().to_string();

    // Unsigned: inspect says so, verify refuses.
    let out = ok(run(&["inspect", "--model", s(&model)]));
    assert!(out.contains(&format!("digest:          {digest}")), "{out}");
    assert!(out.contains("signature:       none"), "{out}");
    let err = fails(run(&[
        "verify",
        "--model",
        s(&model),
        "--public-key",
        PUB_1_PATH,
    ]));
    assert!(err.contains("not signed"), "{err}");

    // Sign into a new file, then in place.
    let signed = dir.join("signed.model");
    let out = ok(run(&[
        "sign",
        "--key",
        KEY_1,
        "--model",
        s(&model),
        "--out",
        s(&signed),
    ]));
    assert!(out.contains(&digest) && out.contains(&id1), "{out}");
    ok(run(&[
        "sign",
        "--key",
        KEY_1,
        "--model",
        s(&model),
        "--out",
        s(&model),
    ]));
    assert_eq!(
        std::fs::read(&model).unwrap(),
        std::fs::read(&signed).unwrap()
    );

    // Verify with the .pub file, inline base64, and both keys of a rotation.
    let expected = format!("signature ok: key {id1}, digest {digest}");
    let out = ok(run(&[
        "verify",
        "--model",
        s(&signed),
        "--public-key",
        PUB_1_PATH,
    ]));
    assert_eq!(out.trim(), expected);
    let out = ok(run(&[
        "verify",
        "--model",
        s(&signed),
        "--public-key",
        PUB_1.trim(),
    ]));
    assert_eq!(out.trim(), expected);
    let out = ok(run(&[
        "verify",
        "--model",
        s(&signed),
        "--public-key",
        PUB_2_PATH,
        "--public-key",
        PUB_1_PATH,
    ]));
    assert_eq!(out.trim(), expected);

    // Inspect shows the signature without vouching for it.
    let out = ok(run(&["inspect", "--model", s(&signed)]));
    assert!(out.contains(&format!("digest:          {digest}")), "{out}");
    assert!(
        out.contains(&format!(
            "signature:       ed25519 by key {id1} (not verified; use verify)"
        )),
        "{out}"
    );

    // Re-signing with key 2 keeps the digest.
    let out = ok(run(&[
        "sign",
        "--key",
        KEY_2,
        "--model",
        s(&signed),
        "--out",
        s(&signed),
    ]));
    assert!(out.contains(&digest), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_fails_with_exit_code_1_and_the_reason() {
    let dir = scratch("verify");
    let model = unsigned_model(&dir);
    ok(run(&[
        "sign",
        "--key",
        KEY_1,
        "--model",
        s(&model),
        "--out",
        s(&model),
    ]));
    let id1 = PublicKey::from_base64(PUB_1).unwrap().key_id().to_string();

    // Signed by a key that is not trusted.
    let err = fails(run(&[
        "verify",
        "--model",
        s(&model),
        "--public-key",
        PUB_2_PATH,
    ]));
    assert!(
        err.contains(&id1) && err.contains("not among the trusted keys"),
        "{err}"
    );
    assert!(err.contains("1 trusted key"), "{err}");

    // Tampered after signing: the last body byte sits right before the signature block.
    let mut bytes = std::fs::read(&model).unwrap();
    let mut e: obguard_models::model::Envelope = postcard::from_bytes(&bytes).unwrap();
    let last = e.body.len() - 1;
    e.body[last] ^= 1;
    bytes = postcard::to_allocvec(&e).unwrap();
    let tampered = dir.join("tampered.model");
    std::fs::write(&tampered, &bytes).unwrap();
    let err = fails(run(&[
        "verify",
        "--model",
        s(&tampered),
        "--public-key",
        PUB_1_PATH,
    ]));
    assert!(err.contains("does not verify"), "{err}");

    // A --public-key that is neither a file nor a key.
    let err = fails(run(&[
        "verify",
        "--model",
        s(&model),
        "--public-key",
        "/no/such/key.pub",
    ]));
    assert!(
        err.contains("neither an existing file nor a base64 public key"),
        "{err}"
    );
    // At least one key is required.
    let o = run(&["verify", "--model", s(&model)]);
    assert!(!o.status.success());

    // sign refuses a key file that is not a PKCS#8 Ed25519 key, and a non-model.
    let err = fails(run(&[
        "sign",
        "--key",
        PUB_1_PATH,
        "--model",
        s(&model),
        "--out",
        s(&model),
    ]));
    assert!(err.contains("PKCS#8"), "{err}");
    let err = fails(run(&[
        "sign",
        "--key",
        KEY_1,
        "--model",
        PUB_1_PATH,
        "--out",
        s(&tampered),
    ]));
    assert!(err.contains("not an obguard model file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
