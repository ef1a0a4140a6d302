//! Finding models: the built-in one, config files on the model path, explicit files.

use super::config::ModelConfig;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// The built-in default model: trained on the synthetic motion benchmark, compiled into the binary.
pub mod builtin {
    pub const NAME: &str = "motion";
    pub const CONFIG: &str = include_str!("../../configs/motion.json");
    pub const WEIGHTS: &[u8] = include_bytes!("../../models/motion.pt");
}

/// `${VIDCLS_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/vidcls}`: pulled models and downloads.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VIDCLS_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("vidcls")
}

/// Where pulled models' configs live (`models/` beside it holds their graphs).
pub fn installed_configs() -> PathBuf {
    cache_dir().join("configs")
}

/// Directories searched for `configs/NAME.json`: `$VIDCLS_MODEL_PATH` (colon-separated), the
/// pulled models ([`installed_configs`]), a release bundle's `share/vidcls/configs/`, the
/// `configs/` beside the executable's checkout, and the source tree's `configs/`.
pub fn config_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("VIDCLS_MODEL_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.push(installed_configs());
    if let Ok(exe) = std::env::current_exe() {
        // A release bundle: bin/vidcls -> ../share/vidcls/configs (models/ beside it).
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            dirs.push(prefix.join("share/vidcls/configs"));
        }
        // target/{release,debug}/vidcls -> ../../configs
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            dirs.push(root.join("configs"));
        }
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs"));
    let mut seen = Vec::new();
    dirs.retain(|d| {
        let key = d.canonicalize().unwrap_or_else(|_| d.clone());
        let new = d.is_dir() && !seen.contains(&key);
        seen.push(key);
        new
    });
    dirs
}

/// `models/` next to a `configs/` directory.
fn models_dir_for(config_dir: &Path) -> PathBuf {
    config_dir.parent().unwrap_or(Path::new(".")).join("models")
}

/// Where a model comes from, once resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    BuiltIn,
    Files { config: PathBuf, weights: PathBuf },
}

/// Resolves `--model`: none (built-in), a config `.json`, a TorchScript `.pt` (its config is
/// the `.json` of the same stem beside it or in `../configs/`), or a name in [`config_dirs`].
pub fn resolve(model: Option<&str>) -> Result<ModelSource> {
    let Some(spec) = model else {
        return Ok(ModelSource::BuiltIn);
    };
    let path = Path::new(spec);
    if path.is_dir() {
        let config = path.join("config.json");
        if !config.is_file() {
            bail!(
                "model folder {} has no config.json (vidcls train writes one)",
                path.display()
            );
        }
        return from_config(config);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => {
            if !path.is_file() {
                bail!("model config {} does not exist", path.display());
            }
            from_config(path.to_path_buf())
        }
        Some("pt") | Some("pth") => from_weights_file(path),
        _ if spec == builtin::NAME => Ok(ModelSource::BuiltIn),
        _ if spec.starts_with("hf:") => installed_hub_model(spec),
        _ => by_name(spec),
    }
}

/// The model a config file describes (its weights found beside it or in the models folder).
fn from_config(config: PathBuf) -> Result<ModelSource> {
    let cfg = ModelConfig::from_file(&config)?;
    let dir = config.parent().unwrap_or(Path::new("."));
    let weights = cfg.model_path(dir, &models_dir_for(dir));
    Ok(ModelSource::Files { config, weights })
}

/// A TorchScript file with its config beside it (`NAME.json`) or in `../configs/`.
fn from_weights_file(path: &Path) -> Result<ModelSource> {
    if !path.is_file() {
        bail!("model file {} does not exist", path.display());
    }
    let stem = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let dir = path.parent().unwrap_or(Path::new("."));
    let candidates = [
        dir.join(format!("{stem}.json")),
        dir.join("../configs").join(format!("{stem}.json")),
    ];
    let config = candidates.iter().find(|c| c.is_file()).ok_or_else(|| {
        anyhow!(
            "no config for {}: expected {} or {}",
            path.display(),
            candidates[0].display(),
            candidates[1].display()
        )
    })?;
    ModelConfig::from_file(config)?; // fail here, naming the config, if it is invalid
    Ok(ModelSource::Files {
        config: config.clone(),
        weights: path.to_path_buf(),
    })
}

/// `hf:ORG/REPO[@REV]`, once pulled.
fn installed_hub_model(spec: &str) -> Result<ModelSource> {
    let repo = spec[3..].split('@').next().unwrap_or_default();
    let name = repo.rsplit('/').next().unwrap_or_default();
    let c = installed_configs().join(format!("{name}.json"));
    if !name.is_empty() && c.is_file() {
        return from_config(c);
    }
    bail!("model {spec} is not installed; run `vidcls models pull {spec}`")
}

/// A model name, looked up in the config folders.
fn by_name(spec: &str) -> Result<ModelSource> {
    for d in &config_dirs() {
        let c = d.join(format!("{spec}.json"));
        if c.is_file() {
            return from_config(c);
        }
    }
    let names: Vec<String> = available()
        .models
        .into_iter()
        .map(|e| e.config.name)
        .collect();
    bail!(
        "unknown model {spec:?}; available: {} (see `vidcls models`)",
        names.join(", ")
    )
}

/// A model card to pull: a `.json` file, or a config by name on the model path outside the
/// pulled models (whose configs describe what was installed, not where it comes from).
pub fn find_card(spec: &str) -> Result<(PathBuf, ModelConfig)> {
    let path = Path::new(spec);
    if path.extension().is_some_and(|e| e == "json") {
        return Ok((path.to_path_buf(), ModelConfig::from_file(path)?));
    }
    let installed = installed_configs();
    for d in config_dirs().iter().filter(|d| **d != installed) {
        let c = d.join(format!("{spec}.json"));
        if c.is_file() {
            let cfg = ModelConfig::from_file(&c)?;
            return Ok((c, cfg));
        }
    }
    bail!("unknown model {spec:?} (see `vidcls models` for the names that can be pulled)")
}

/// A card's weight-free graph: beside the card, in the card's `models/`, or in the `models/`
/// of any directory on the model path (a user's card may name a shipped graph).
pub fn find_graph(card: &Path, graph: &str) -> Result<PathBuf> {
    let dir = card.parent().unwrap_or(Path::new("."));
    let mut tried = vec![dir.join(graph), models_dir_for(dir).join(graph)];
    tried.extend(config_dirs().iter().map(|d| models_dir_for(d).join(graph)));
    tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        anyhow!(
            "graph {graph} not found (looked in {})",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// One entry of `vidcls models`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub config: ModelConfig,
    pub weights: Option<PathBuf>,
    pub builtin: bool,
}

/// What the model path holds: usable models (built-in first) and config files that could not
/// be read, each with the reason.
#[derive(Debug, Default)]
pub struct Catalogue {
    pub models: Vec<Listed>,
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Every model the search path knows, built-in first; a name seen twice keeps its first entry.
pub fn available() -> Catalogue {
    let mut out = Catalogue::default();
    if let Ok(cfg) = builtin_config() {
        out.models.push(Listed {
            config: cfg,
            weights: None,
            builtin: true,
        });
    }
    for dir in config_dirs() {
        for p in json_files(&dir) {
            if !looks_like_model_config(&p) {
                continue; // other JSON beside the models (a trained model's metrics.json)
            }
            let cfg = match ModelConfig::from_file(&p) {
                Ok(cfg) => cfg,
                Err(e) => {
                    out.unreadable.push((p, format!("{e:#}")));
                    continue;
                }
            };
            if out.models.iter().any(|l| l.config.name == cfg.name) {
                continue;
            }
            let weights = cfg.model_path(&dir, &models_dir_for(&dir));
            out.models.push(Listed {
                config: cfg,
                weights: Some(weights),
                builtin: false,
            });
        }
    }
    out
}

/// A JSON object with an `architecture` key is meant as a model config (so a broken one is
/// reported); anything else is not ours to judge.
fn looks_like_model_config(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_none_or(|v| v.get("architecture").is_some())
}

/// The `.json` files of a directory, in name order (none if it cannot be read).
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

pub(super) fn builtin_config() -> Result<ModelConfig> {
    let cfg = ModelConfig::from_json(builtin::CONFIG).context("built-in model config")?;
    cfg.validate()?;
    Ok(cfg)
}
