//! `deploy --ship-model`: a model copied from a local Ollama store into the trial's Ollama
//! volume, for hosts that cannot reach the model registry. Only the named model's files go: its
//! manifest, then the blobs the manifest names, laid out as Ollama lays them out.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::usage;
use crate::ssh::{quote, RemoteCmd};

/// The local store: the flag's directory, else `OLLAMA_MODELS`, else `~/.ollama/models`.
pub fn store_dir(flag: &str) -> PathBuf {
    if !flag.is_empty() {
        return PathBuf::from(flag);
    }
    std::env::var_os("OLLAMA_MODELS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".ollama/models"))
}

/// `qwen2.5-coder:1.5b` -> `manifests/registry.ollama.ai/library/qwen2.5-coder/1.5b`; a name with a
/// namespace (`me/model:tag`) keeps it; no tag means `latest`.
pub fn manifest_path(model: &str) -> String {
    let (name, tag) = model.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((model, "latest"));
    let name = if name.contains('/') { name.to_string() } else { format!("library/{name}") };
    format!("manifests/registry.ollama.ai/{name}/{tag}")
}

/// The model's files in the store, relative paths: the manifest first, then its config and
/// layer blobs. Refuses (exit 2) a model the store does not hold whole.
pub fn model_files(store: &Path, model: &str) -> Result<Vec<String>> {
    let manifest = manifest_path(model);
    let text = std::fs::read_to_string(store.join(&manifest)).map_err(|_| {
        usage(format!(
            "--ship-model: {} has no model {model} ({} missing); pull it there with `ollama pull {model}`, or name the store",
            store.display(),
            manifest
        ))
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("reading {manifest}"))?;
    let mut files = vec![manifest];
    let digests = v["config"]["digest"].as_str().into_iter().chain(v["layers"].as_array().into_iter().flatten().filter_map(|l| l["digest"].as_str()));
    for d in digests {
        let blob = format!("blobs/{}", d.replace(':', "-"));
        if !store.join(&blob).is_file() {
            return Err(usage(format!("--ship-model: {} lacks {blob}, named by the manifest of {model}", store.display())));
        }
        if !files.contains(&blob) {
            files.push(blob);
        }
    }
    Ok(files)
}

/// Where the files wait on the host before they go into the volume.
pub fn staging_dir(remote_dir: &str) -> String {
    format!("{remote_dir}/models")
}

/// Copy the staged store into the running Ollama container's volume (without the uploads' own
/// `.sha256` receipts), then drop the staging copy.
pub fn install_cmd(remote_dir: &str, gpu: bool) -> RemoteCmd {
    RemoteCmd::shell(format!(
        "{} && find ../models -name '*.sha256' -delete && dc cp ../models/. ollama:/root/.ollama/models/ && rm -rf -- {}",
        super::compose_prelude(remote_dir, gpu),
        quote(&staging_dir(remote_dir))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_found_where_ollama_keeps_them() {
        assert_eq!(manifest_path("qwen2.5-coder:1.5b"), "manifests/registry.ollama.ai/library/qwen2.5-coder/1.5b");
        assert_eq!(manifest_path("llama3"), "manifests/registry.ollama.ai/library/llama3/latest");
        assert_eq!(manifest_path("me/tuned:q4"), "manifests/registry.ollama.ai/me/tuned/q4");
    }

    #[test]
    fn only_the_named_models_files_go_and_a_missing_blob_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("manifests/registry.ollama.ai/library/tiny/1b");
        std::fs::create_dir_all(m.parent().unwrap()).unwrap();
        std::fs::create_dir_all(d.path().join("blobs")).unwrap();
        std::fs::write(&m, r#"{"schemaVersion":2,"config":{"digest":"sha256:aa"},"layers":[{"digest":"sha256:bb"},{"digest":"sha256:cc"}]}"#).unwrap();
        for b in ["sha256-aa", "sha256-bb", "sha256-dd"] {
            std::fs::write(d.path().join("blobs").join(b), b).unwrap();
        }
        let e = model_files(d.path(), "tiny:1b").unwrap_err();
        assert!(e.to_string().contains("blobs/sha256-cc"), "{e}");
        std::fs::write(d.path().join("blobs/sha256-cc"), "cc").unwrap();
        let files = model_files(d.path(), "tiny:1b").unwrap();
        assert_eq!(files, ["manifests/registry.ollama.ai/library/tiny/1b", "blobs/sha256-aa", "blobs/sha256-bb", "blobs/sha256-cc"]);
        let e = model_files(d.path(), "other:1b").unwrap_err();
        assert_eq!(crate::error::exit_code_of(&e), 2);
    }
}
