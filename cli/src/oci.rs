//! `obguard oci`: obguard.wasm as an OCI image in Istio's wasm image format, written offline
//! (no registry, no container daemon) as an OCI image layout directory and a tarball of it.
//!
//! The image is the *OCI artifact* variant of the Wasm image specification that Istio's
//! `WasmPlugin` pulls (`url: oci://…`): one layer of media type
//! `application/vnd.module.wasm.content.layer.v1+wasm` whose bytes are the module itself, and a
//! config of media type `application/vnd.module.wasm.config.v1+json` naming the runtime, the
//! proxy-wasm ABI and the root id. Why this variant rather than the *compat* one (one
//! tar+gzip layer holding `plugin.wasm`): the layer is the module byte for byte, so its digest
//! is the module's sha256 and anyone can check it without unpacking, and no gzip or tar
//! writer sits between the build and the bytes Envoy runs. Registries must accept custom
//! media types (OCI 1.1 artifacts; every major one does); see docs/istio.md.
//!
//! The output is reproducible: no timestamps, fixed tar headers, so the same module gives
//! the same digest.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType,
    OciLayoutBuilder, SCHEMA_VERSION, Sha256Digest,
};
use sha2::{Digest as _, Sha256};

/// The layer media type of a Wasm module (OCI artifact variant).
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// The config media type of a Wasm image (OCI artifact variant).
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
/// The proxy-wasm ABI obguard exports (`proxy_abi_version_0_2_1` in filter/src/adapter).
const ABI_VERSION: &str = "v0.2.1";
/// The root id obguard registers (the Envoy examples' `root_id`).
const ROOT_ID: &str = "obguard";

/// What `obguard oci` wrote.
#[derive(Debug, Clone)]
pub struct Image {
    /// The OCI image layout directory (`oci:<layout>:<tag>` for skopeo).
    pub layout: PathBuf,
    /// The layout as one tar file (`oci-archive:<tarball>` for skopeo).
    pub tarball: PathBuf,
    /// The file holding [`Image::digest`].
    pub digest_file: PathBuf,
    /// `sha256:<hex>` of the image manifest: the image digest a registry reports and Istio's
    /// `WasmPlugin.spec.sha256` checks (without the `sha256:` prefix there).
    pub digest: String,
    /// `sha256:<hex>` of the module, which is also the layer's digest.
    pub module_digest: String,
}

/// Writes the image of `module` into `out_dir` as `<name>/` (the layout), `<name>.tar` and
/// `<name>.digest`, tagged `tag`. An existing layout of that name is replaced.
pub fn build(module: &Path, out_dir: &Path, name: &str, tag: &str) -> Result<Image> {
    let wasm = fs::read(module).with_context(|| format!("cannot read {}", module.display()))?;
    if wasm.get(..4) != Some(b"\0asm".as_slice()) {
        anyhow::bail!("{} is not a WebAssembly module", module.display());
    }
    let layout = out_dir.join(name);
    if layout.exists() {
        fs::remove_dir_all(&layout)
            .with_context(|| format!("cannot replace {}", layout.display()))?;
    }
    let blobs = layout.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("cannot create {}", blobs.display()))?;

    let config = serde_json::to_vec(&serde_json::json!({
        "type": "envoy_proxy",
        "abiVersions": [ABI_VERSION],
        "config": { "rootIds": [ROOT_ID] },
    }))?;
    let config = write_blob(&blobs, &config, CONFIG_MEDIA_TYPE, None)?;
    let layer = write_blob(&blobs, &wasm, LAYER_MEDIA_TYPE, Some("plugin.wasm"))?;
    let module_digest = layer.digest().to_string();

    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer])
        .annotations([(
            "org.opencontainers.image.title".to_owned(),
            "obguard".to_owned(),
        )])
        .build()?;
    // Serialised once: these bytes are what the digest names and what a registry stores.
    let manifest = serde_json::to_vec(&manifest)?;
    let mut manifest_descriptor = write_blob(
        &blobs,
        &manifest,
        MediaType::ImageManifest.to_string().as_str(),
        None,
    )?;
    manifest_descriptor.set_annotations(Some(
        [(
            "org.opencontainers.image.ref.name".to_owned(),
            tag.to_owned(),
        )]
        .into(),
    ));
    let digest = manifest_descriptor.digest().to_string();

    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_descriptor])
        .build()?;
    let oci_layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()?;
    for (file, json) in [
        ("index.json", serde_json::to_vec_pretty(&index)?),
        ("oci-layout", serde_json::to_vec(&oci_layout)?),
    ] {
        fs::write(layout.join(file), json).with_context(|| format!("cannot write {file}"))?;
    }

    let tarball = out_dir.join(format!("{name}.tar"));
    write_tarball(&layout, &tarball)?;
    let digest_file = out_dir.join(format!("{name}.digest"));
    fs::write(&digest_file, format!("{digest}\n"))
        .with_context(|| format!("cannot write {}", digest_file.display()))?;
    Ok(Image {
        layout,
        tarball,
        digest_file,
        digest,
        module_digest,
    })
}

/// Stores `bytes` under their sha256 and describes them.
fn write_blob(
    blobs: &Path,
    bytes: &[u8],
    media_type: &str,
    title: Option<&str>,
) -> Result<Descriptor> {
    let hex = hex::encode(Sha256::digest(bytes));
    fs::write(blobs.join(&hex), bytes).context("cannot write a blob")?;
    let digest: Sha256Digest = hex.parse()?;
    let mut builder = DescriptorBuilder::default()
        .media_type(MediaType::from(media_type))
        .digest(digest)
        .size(u64::try_from(bytes.len())?);
    if let Some(title) = title {
        builder = builder.annotations([(
            "org.opencontainers.image.title".to_owned(),
            title.to_owned(),
        )]);
    }
    Ok(builder.build()?)
}

/// The layout as a tar file (what `skopeo copy oci-archive:…` reads), with fixed headers:
/// paths relative to the layout, mode 0644/0755, owner 0, mtime 0, entries sorted.
fn write_tarball(layout: &Path, tarball: &Path) -> Result<()> {
    let file =
        fs::File::create(tarball).with_context(|| format!("cannot write {}", tarball.display()))?;
    let mut builder = tar::Builder::new(file);
    builder.mode(tar::HeaderMode::Deterministic);
    let mut entries = Vec::new();
    collect(layout, Path::new(""), &mut entries)?;
    entries.sort();
    for relative in entries {
        builder
            .append_path_with_name(layout.join(&relative), &relative)
            .with_context(|| format!("cannot add {}", relative.display()))?;
    }
    builder.into_inner()?.sync_all()?;
    Ok(())
}

/// Every file and directory under `dir`, relative to the layout root.
fn collect(dir: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let rel = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            out.push(rel.clone());
            collect(&entry.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}
