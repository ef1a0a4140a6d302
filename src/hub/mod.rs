//! Pretrained models from their official homes: `vidcls models pull NAME | hf:ORG/REPO[@REV]`.
//!
//! A model card (a config with a `pretrained` section) names a weight-free graph shipped with
//! vidcls and the published weights file (URL, sha256, size). A pull downloads and checks the
//! file, reads its state dict without running code, fills the graph by name, and installs
//! the result as an ordinary TorchScript model with its config in the cache, where `--model
//! NAME` finds it. Hugging Face Hub repos (VideoMAE) need no card: their `config.json` says
//! the architecture, sizes and labels.

pub mod download;
mod hf;

use crate::atomic::{self, Existing};
use crate::model::{self, cache_dir, installed_configs, weights, ModelConfig};
use anyhow::{bail, Context, Result};
pub use download::{Expect, Http};
use std::path::{Path, PathBuf};
use tch::CModule;

/// What to pull.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A card by name (`r2plus1d_18`) or path (`my-card.json`).
    Card(String),
    /// `hf:ORG/REPO[@REVISION]`.
    Hub { repo: String, revision: String },
}

impl Target {
    pub fn parse(spec: &str) -> Result<Target> {
        let Some(rest) = spec.strip_prefix("hf:") else {
            return Ok(Target::Card(spec.to_string()));
        };
        let (repo, revision) = rest.split_once('@').unwrap_or((rest, "main"));
        let ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        match repo.split_once('/') {
            Some((org, name)) if ok(org) && ok(name) && ok(revision) => Ok(Target::Hub {
                repo: repo.to_string(),
                revision: revision.to_string(),
            }),
            _ => bail!("{spec:?}: a Hub model is hf:ORG/REPO or hf:ORG/REPO@REVISION"),
        }
    }
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Never touch the network (`--offline`, `VIDCLS_OFFLINE=1`): only `from` can serve.
    pub offline: bool,
    /// A weights file (card) or a folder with `config.json` + weights (Hub) got by hand.
    pub from: Option<PathBuf>,
    pub http: Http,
    /// Measure bf16's top-1 agreement with fp32 on the installed weights
    /// ([`CALIBRATION_CLIPS`] clips) and record it, so `--precision auto` can pick bf16.
    pub measure_precision: bool,
}

/// Calibration clips a pull measures the precision record on.
pub const CALIBRATION_CLIPS: usize = 8;

/// What a pull installed.
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: String,
    pub config: PathBuf,
    pub model: PathBuf,
    pub sha256: String,
    /// The precision record measured on the installed weights.
    pub precision: Option<model::ReducedPrecision>,
}

/// `VIDCLS_OFFLINE` set to anything but empty or `0`.
pub fn offline_from_env() -> bool {
    std::env::var("VIDCLS_OFFLINE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The installed name a Hub repo gets: its last path segment.
pub fn hub_name(repo: &str) -> String {
    repo.rsplit('/').next().unwrap_or(repo).to_string()
}

pub fn pull(target: &Target, opts: &PullOptions) -> Result<Installed> {
    match target {
        Target::Card(spec) => pull_card(spec, opts),
        Target::Hub { repo, revision } => hf::pull(repo, revision, opts),
    }
}

fn pull_card(spec: &str, opts: &PullOptions) -> Result<Installed> {
    let (card_path, card) = model::find_card(spec)?;
    let Some(p) = card.pretrained.clone() else {
        bail!(
            "model {} ({}) has no `pretrained` section: nothing to pull (docs/MODELS.md, \"Model cards\")",
            card.name,
            card_path.display()
        );
    };
    let expect = card_expect(&p)?;
    let weights = match &opts.from {
        Some(file) => {
            download::verify(file, &expect)
                .with_context(|| format!("{} is not the published weights file", file.display()))?;
            file.clone()
        }
        None => {
            if opts.offline {
                bail!(
                    "offline: pulling {} would download {}; download it elsewhere and use --from FILE",
                    card.name,
                    p.url
                );
            }
            let dest = downloads_dir()?.join(url_file_name(&p.url)?);
            eprintln!(
                "vidcls: pulling {} from {}{}",
                card.name,
                p.url,
                size_note(p.bytes)
            );
            opts.http.fetch(&p.url, &dest, &expect, false)?;
            dest
        }
    };
    let graph = model::find_graph(&card_path, &p.graph)?;
    let sha256 = download::sha256_file(&weights)?;
    let mut cfg = card.clone();
    cfg.weights = model::config::Weights {
        source: p.url.clone(),
        sha256: Some(sha256.clone()),
    };
    weights::Layout::parse(p.layout.as_deref())?; // a bad card fails before anything is read
    let installed = install(cfg, &graph, &weights, &p.rename, opts.measure_precision);
    if opts.from.is_none() {
        // Installed, the graph holds the weights; not installable, the file is no use.
        let _ = std::fs::remove_file(&weights);
    }
    installed
}

/// A card's checks: its sha256 (or prefix) and size, and the sha256 prefix a torchvision
/// file name carries (`r2plus1d_18-91a641e6.pth`).
fn card_expect(p: &model::config::Pretrained) -> Result<Expect> {
    let hex = |s: &str| s.len() >= 8 && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(&p.sha256) {
        bail!("card sha256 {:?}: want 8 to 64 hex digits", p.sha256);
    }
    let name = url_file_name(&p.url)?;
    let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
    if let Some((_, h)) = stem.rsplit_once('-') {
        if hex(h)
            && !p.sha256.to_lowercase().starts_with(&h.to_lowercase())
            && !h.to_lowercase().starts_with(&p.sha256.to_lowercase())
        {
            bail!(
                "card sha256 {} disagrees with the hash {h} in the file name {name}",
                p.sha256
            );
        }
    }
    Ok(Expect {
        sha256: Some(p.sha256.to_lowercase()),
        bytes: p.bytes,
    })
}

fn size_note(bytes: Option<u64>) -> String {
    bytes.map_or(String::new(), |b| format!(" ({:.1} MB)", b as f64 / 1e6))
}

/// The last path segment of a URL: a plain file name, or an error.
fn url_file_name(url: &str) -> Result<String> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or_default();
    if name.is_empty()
        || name == "."
        || name == ".."
        || !(url.starts_with("http://") || url.starts_with("https://"))
    {
        bail!("weights URL {url:?}: want http(s)://HOST/.../FILE");
    }
    Ok(name.to_string())
}

fn downloads_dir() -> Result<PathBuf> {
    let d = cache_dir().join("downloads");
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}

/// Fills `graph` with `weights` and installs it under `cfg.name` in the cache: the model file
/// first, then its config (so a config there always has its model), each through a private
/// temporary file renamed into place. The config's precision record is dropped: any record
/// a card carries describes other weights, and `--precision auto` then stays in fp32.
fn install(
    mut cfg: ModelConfig,
    graph: &Path,
    weights: &Path,
    rename: &weights::Renames,
    measure_precision: bool,
) -> Result<Installed> {
    let state = weights::read_state_dict(weights)?;
    let module = CModule::load(graph)
        .with_context(|| format!("cannot load the graph {}", graph.display()))?;
    let classes = weights::fill(&module, state, rename).with_context(|| {
        format!(
            "weights {} for graph {}",
            weights.display(),
            graph.display()
        )
    })?;
    if classes != cfg.labels.len() {
        bail!(
            "the weights have {classes} classes, the config of {} names {} labels",
            cfg.name,
            cfg.labels.len()
        );
    }
    let configs = installed_configs();
    let models = cache_dir().join("models");
    for d in [&configs, &models] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let model_path = models.join(format!("{}.pt", cfg.name));
    // libtorch writes by name: into the private file made for it.
    atomic::write_with(&model_path, Existing::Replace, |_, tmp| {
        module
            .save(tmp)
            .with_context(|| format!("cannot write {}", model_path.display()))
    })?;
    cfg.file = format!("{}.pt", cfg.name);
    cfg.labels_file = None;
    cfg.reduced_precision = None;
    cfg.parameters = Some(
        module
            .named_parameters()?
            .iter()
            .map(|(_, t)| t.numel() as u64)
            .sum(),
    );
    let config_path = configs.join(format!("{}.json", cfg.name));
    write_config(&cfg, &config_path)?;
    if measure_precision {
        let source = model::ModelSource::Files {
            config: config_path.clone(),
            weights: model_path.clone(),
        };
        eprintln!("vidcls: measuring bf16 against fp32 on {CALIBRATION_CLIPS} calibration clips");
        match model::calibrate::measure(&source, CALIBRATION_CLIPS) {
            Ok(record) => {
                cfg.reduced_precision = Some(record);
                write_config(&cfg, &config_path)?;
            }
            Err(e) => eprintln!(
                "vidcls: warning: no precision record ({e:#}); --precision auto keeps fp32"
            ),
        }
    }
    Ok(Installed {
        name: cfg.name.clone(),
        config: config_path,
        model: model_path,
        sha256: cfg.weights.sha256.clone().unwrap_or_default(),
        precision: cfg.reduced_precision.clone(),
    })
}

fn write_config(cfg: &ModelConfig, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(cfg)? + "\n";
    atomic::write(path, Existing::Replace, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            Target::parse("r2plus1d_18").unwrap(),
            Target::Card("r2plus1d_18".into())
        );
        assert_eq!(
            Target::parse("hf:MCG-NJU/videomae-base-finetuned-kinetics@a1b2").unwrap(),
            Target::Hub {
                repo: "MCG-NJU/videomae-base-finetuned-kinetics".into(),
                revision: "a1b2".into()
            }
        );
        assert_eq!(
            Target::parse("hf:org/repo").unwrap(),
            Target::Hub {
                repo: "org/repo".into(),
                revision: "main".into()
            }
        );
        for bad in [
            "hf:",
            "hf:repo",
            "hf:org/../x",
            "hf:org/r@",
            "hf:a/b/c",
            "hf:o/r@x y",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn card_checks_agree_with_the_file_name() {
        let card = |url: &str, sha: &str| model::config::Pretrained {
            graph: "graphs/r3d_18.pt".into(),
            url: url.into(),
            sha256: sha.into(),
            bytes: None,
            rename: vec![],
            size_mib: None,
            layout: None,
            kinetics400_accuracy: None,
        };
        let url = "https://download.pytorch.org/models/r3d_18-b3b3357e.pth";
        assert!(card_expect(&card(
            url,
            "b3b3357ead25631ec9c57362ff2128a92d0427e01e2cd184951a44380c3f2e9d"
        ))
        .is_ok());
        assert!(card_expect(&card(url, "b3b3357e")).is_ok());
        assert!(card_expect(&card(url, "00b3357e")).is_err());
        assert!(card_expect(&card(url, "b3b3")).is_err());
        assert!(card_expect(&card("file:///etc/passwd", "b3b3357e")).is_err());
        assert!(card_expect(&card("https://host/", "b3b3357e")).is_err());
    }
}
