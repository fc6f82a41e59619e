#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `obguard oci` as `make oci` runs it, inspected with Debian's OCI tools: skopeo reads the
//! layout and the tarball, reports the wasm media types, and copies the image out, and the
//! layer it copies is the built module byte for byte; umoci lists the tag. Needs `skopeo` and
//! `umoci` on PATH (`make test-tools` installs them).

mod common;
use common::repo;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): `make test-tools` installs it"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The built module (`OBGUARD_WASM`, as `make test` exports it, or the release build); without
/// one (`make check` builds no wasm) a minimal valid module, so the packaging is still checked.
fn module(dir: &Path) -> PathBuf {
    let built = std::env::var_os("OBGUARD_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/wasm32-wasip1/release/obguard.wasm"));
    if built.is_file() {
        return built;
    }
    eprintln!(
        "no built module at {}: packaging a minimal one",
        built.display()
    );
    let path = dir.join("minimal.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap();
    path
}

/// `obguard oci` of `module` into `out`, tagged 9.9.9.
fn make_image(module: &Path, out: &Path) -> Output {
    let output = common::obguard(
        "oci",
        &[
            OsStr::new("--module"),
            module.as_os_str(),
            OsStr::new("--out"),
            out.as_os_str(),
            OsStr::new("--tag"),
            OsStr::new("9.9.9"),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    output
}

#[test]
fn the_image_is_istios_wasm_artifact_and_its_layer_is_the_module() {
    let dir = std::env::temp_dir().join(format!("obguard-oci-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let module = module(&dir);
    let wasm = std::fs::read(&module).unwrap();
    let out = dir.join("oci");
    let output = make_image(&module, &out);
    let printed = String::from_utf8(output.stdout).unwrap();
    let digest = std::fs::read_to_string(out.join("obguard.digest")).unwrap();
    let digest = digest.trim();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert!(printed.contains(digest), "{printed}");

    let layout = format!("oci:{}:9.9.9", out.join("obguard").display());
    let archive = format!("oci-archive:{}:9.9.9", out.join("obguard.tar").display());
    for image in [&layout, &archive] {
        // The manifest as skopeo reads it: its digest is the one written, the media types are
        // Istio's OCI artifact variant, the layer's digest and size are the module's.
        let raw = run("skopeo", &["inspect", "--raw", image]).stdout;
        assert_eq!(format!("sha256:{}", sha256_hex(&raw)), digest, "{image}");
        let manifest: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.module.wasm.config.v1+json"
        );
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{manifest}");
        assert_eq!(
            layers[0]["mediaType"],
            "application/vnd.module.wasm.content.layer.v1+wasm"
        );
        assert_eq!(layers[0]["digest"], format!("sha256:{}", sha256_hex(&wasm)));
        assert_eq!(layers[0]["size"], wasm.len());
        let config: Value =
            serde_json::from_slice(&run("skopeo", &["inspect", "--config", "--raw", image]).stdout)
                .unwrap();
        assert_eq!(config["type"], "envoy_proxy", "{config}");
        assert_eq!(config["config"]["rootIds"][0], "obguard", "{config}");

        // Copied out by skopeo (as a registry push would send it), the layer blob is the
        // module's bytes.
        let copy = dir.join(format!("copy-{}", image.len()));
        run(
            "skopeo",
            &["copy", "--quiet", image, &format!("dir:{}", copy.display())],
        );
        let blob = std::fs::read(copy.join(sha256_hex(&wasm))).unwrap();
        assert!(blob == wasm, "{image}: the copied layer is not the module");
    }

    // umoci reads the layout and finds the tag.
    let tags = run(
        "umoci",
        &["ls", "--layout", out.join("obguard").to_str().unwrap()],
    )
    .stdout;
    assert_eq!(String::from_utf8(tags).unwrap().trim(), "9.9.9");

    // Reproducible: the same module gives the same digest.
    let again = dir.join("again");
    make_image(&module, &again);
    assert_eq!(
        std::fs::read_to_string(again.join("obguard.digest"))
            .unwrap()
            .trim(),
        digest
    );
    assert_eq!(
        std::fs::read(again.join("obguard.tar")).unwrap(),
        std::fs::read(out.join("obguard.tar")).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
