//! Hugging Face Hub repos: `{HF_ENDPOINT}/{repo}/resolve/{revision}/{file}`, `HF_TOKEN` for
//! gated or private repos. The repo's `config.json` names the architecture (VideoMAE), its
//! sizes and its labels; `model.safetensors` (else `pytorch_model.bin`) holds the weights,
//! checked against the sha256 the Hub states in its ETag.

use super::{download, install, Installed, PullOptions};
use crate::model::{self, config::Pretrained, ModelConfig, Resize};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// VideoMAE sizes with a shipped graph (`scripts/export_graphs.py`), and what every one of
/// them fixes: a checkpoint must match one in every key.
const SIZES: [(&str, [(&str, f64); 4]); 2] = [
    (
        "videomae_small",
        [
            ("hidden_size", 384.0),
            ("num_hidden_layers", 12.0),
            ("num_attention_heads", 6.0),
            ("intermediate_size", 1536.0),
        ],
    ),
    (
        "videomae_base",
        [
            ("hidden_size", 768.0),
            ("num_hidden_layers", 12.0),
            ("num_attention_heads", 12.0),
            ("intermediate_size", 3072.0),
        ],
    ),
];
const FIXED: [(&str, f64); 6] = [
    ("image_size", 224.0),
    ("patch_size", 16.0),
    ("num_channels", 3.0),
    ("num_frames", 16.0),
    ("tubelet_size", 2.0),
    ("layer_norm_eps", 1e-12),
];
const RENAME: [(&str, &str); 3] = [
    ("classifier.", "fc."),
    (".q_bias", ".query.bias"),
    (".v_bias", ".value.bias"),
];

pub(super) fn pull(repo: &str, revision: &str, opts: &PullOptions) -> Result<Installed> {
    if opts.from.is_none() && opts.offline {
        bail!(
            "offline: pulling hf:{repo} needs the Hub; download its config.json and \
             model.safetensors elsewhere and use --from FOLDER"
        );
    }
    let hub = Hub::new(repo, revision, opts);
    // The config first: a repo vidcls cannot run is refused before its weights download.
    let (config_text, commit) = match &opts.from {
        Some(dir) => {
            let config = dir.join("config.json");
            let text = std::fs::read_to_string(&config)
                .with_context(|| format!("cannot read {}", config.display()))?;
            (text, format!("file:{}", dir.display()))
        }
        None => hub.config()?,
    };
    let hf: Value =
        serde_json::from_str(&config_text).context("the repo's config.json is not JSON")?;
    let graph_name = graph_for(&hf).with_context(|| format!("hf:{repo}"))?;
    labels(&hf).with_context(|| format!("hf:{repo}"))?;
    let graph = model::find_graph(Path::new("."), &format!("graphs/{graph_name}.pt"))?;
    let weights = match &opts.from {
        Some(dir) => folder_weights(dir)?,
        None => hub.weights(&commit)?,
    };
    let installed = videomae_config(repo, &commit, &hf, graph_name, &weights).and_then(|cfg| {
        let rename: Vec<(String, String)> = RENAME
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        install(cfg, &graph, &weights, &rename, opts.measure_precision)
    });
    if opts.from.is_none() {
        let _ = std::fs::remove_file(&weights);
        let _ = weights.parent().map(std::fs::remove_dir);
    }
    installed
}

/// The weights file of a folder got by hand.
fn folder_weights(dir: &Path) -> Result<PathBuf> {
    ["model.safetensors", "pytorch_model.bin"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{} has neither model.safetensors nor pytorch_model.bin",
                dir.display()
            )
        })
}

/// The Hub token as `huggingface_hub` finds it: `HF_TOKEN` (or the older
/// `HUGGING_FACE_HUB_TOKEN`), else the file `hf auth login` writes, `${HF_HOME:-~/.cache/huggingface}/token`.
fn hub_token() -> Option<String> {
    let from_env = ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.is_empty()));
    from_env.or_else(|| {
        let home = std::env::var_os("HF_HOME").map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface"))
        })?;
        let token = std::fs::read_to_string(home.join("token")).ok()?;
        Some(token.trim().to_string()).filter(|t| !t.is_empty())
    })
}

/// One repo on the Hub (or a mirror).
struct Hub {
    endpoint: String,
    repo: String,
    revision: String,
    http: download::Http,
}

impl Hub {
    fn new(repo: &str, revision: &str, opts: &PullOptions) -> Hub {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let mut http = opts.http.clone();
        if http.token.is_none() {
            http.token = hub_token();
        }
        Hub {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            repo: repo.to_string(),
            revision: revision.to_string(),
            http,
        }
    }

    fn url(&self, revision: &str, file: &str) -> String {
        format!("{}/{}/resolve/{revision}/{file}", self.endpoint, self.repo)
    }

    /// config.json and the commit the Hub resolved the revision to.
    fn config(&self) -> Result<(String, String)> {
        let (text, commit) = self.http.text(&self.url(&self.revision, "config.json"))?;
        Ok((text, commit.unwrap_or_else(|| self.revision.clone())))
    }

    /// The weights at `commit`: model.safetensors, else pytorch_model.bin.
    fn weights(&self, commit: &str) -> Result<PathBuf> {
        let dir =
            super::downloads_dir()?.join(format!("hf--{}--{commit}", self.repo.replace('/', "--")));
        std::fs::create_dir_all(&dir)?;
        eprintln!(
            "vidcls: pulling hf:{} at {commit} from {}",
            self.repo, self.endpoint
        );
        let mut last = None;
        for file in ["model.safetensors", "pytorch_model.bin"] {
            let dest = dir.join(file);
            let expect = download::Expect::default();
            match self
                .http
                .fetch(&self.url(commit, file), &dest, &expect, true)
            {
                Ok(()) => return Ok(dest),
                Err(e) if format!("{e}").contains("HTTP 404") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap()).context(format!(
            "hf:{} has no model.safetensors or pytorch_model.bin",
            self.repo
        ))
    }
}

/// The shipped graph whose sizes the repo's config.json has.
fn graph_for(hf: &Value) -> Result<&'static str> {
    let is_videomae = hf["model_type"] == "videomae"
        || hf["architectures"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "VideoMAEForVideoClassification"));
    if !is_videomae {
        bail!(
            "model_type {} is not supported from the Hub (VideoMAE video classifiers are); \
             export other models with scripts/export_models.py",
            hf["model_type"]
        );
    }
    if hf.get("use_mean_pooling").is_some_and(|v| v != true) {
        bail!("VideoMAE without mean pooling is not supported");
    }
    if hf.get("hidden_act").is_some_and(|v| v != "gelu") {
        bail!(
            "VideoMAE with hidden_act {} is not supported (gelu is)",
            hf["hidden_act"]
        );
    }
    let matches = |keys: &[(&str, f64)]| {
        keys.iter().all(|(k, want)| {
            let default = FIXED.iter().find(|(f, _)| f == k).map(|(_, v)| *v);
            let got = hf.get(*k).and_then(Value::as_f64).or(default);
            got.is_some_and(|g| (g - want).abs() <= want.abs() * 1e-9)
        })
    };
    if !matches(&FIXED) {
        bail!(
            "VideoMAE with other input sizes than 16 frames of 224x224 in 2x16x16 tubelets is not supported"
        );
    }
    SIZES
        .iter()
        .find(|(_, keys)| matches(keys))
        .map(|(name, _)| *name)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "VideoMAE of hidden_size {} and {} layers has no graph (small: 384, base: 768, 12 layers)",
                hf["hidden_size"],
                hf["num_hidden_layers"]
            )
        })
}

/// Labels in output order from `id2label`.
fn labels(hf: &Value) -> Result<Vec<String>> {
    let map = hf["id2label"]
        .as_object()
        .context("config.json has no id2label")?;
    let mut out = vec![String::new(); map.len()];
    for (k, v) in map {
        let i: usize = k
            .parse()
            .with_context(|| format!("id2label key {k:?} is not an index"))?;
        let label = v
            .as_str()
            .with_context(|| format!("id2label[{k}] is not a string"))?;
        if label.chars().any(char::is_control) {
            bail!("id2label[{k}] holds control characters");
        }
        *out.get_mut(i)
            .with_context(|| format!("id2label index {i} out of range"))? = label.to_string();
    }
    Ok(out)
}

/// The vidcls config of a VideoMAE checkpoint: 16 frames, every 4th of the video's own rate
/// (VideoMAE's Kinetics fine-tuning), short side 224 and a 224 centre crop, ImageNet's mean
/// and std (the repos' VideoMAEImageProcessor).
fn videomae_config(
    repo: &str,
    commit: &str,
    hf: &Value,
    graph: &str,
    weights: &Path,
) -> Result<ModelConfig> {
    let labels = labels(hf)?;
    let sha256 = download::sha256_file(weights)?;
    let cfg = ModelConfig {
        name: super::hub_name(repo),
        architecture: graph.to_string(),
        labels,
        labels_file: None,
        label_set: format!("hf:{repo}"),
        frames: 16,
        min_frames: 16,
        variable_frames: false,
        sampling: model::config::Sampling {
            fps: None,
            stride: 4,
        },
        resize: Resize::ShortSide { size: 224 },
        crop: 224,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        value_scale: 1.0,
        input_layout: "NCTHW".into(),
        file: String::new(),
        torch_version: env!("VIDCLS_LIBTORCH_VERSION").into(),
        weights: model::config::Weights {
            source: format!("hf:{repo}@{commit}"),
            sha256: Some(sha256.clone()),
        },
        parameters: None,
        reduced_precision: None,
        provenance: None,
        default_views: None,
        pretrained: Some(Pretrained {
            graph: format!("graphs/{graph}.pt"),
            url: format!("hf:{repo}@{commit}"),
            sha256,
            bytes: std::fs::metadata(weights).ok().map(|m| m.len()),
            rename: vec![],
            size_mib: None,
            layout: None,
            kinetics400_accuracy: None,
        }),
    };
    cfg.validate()?;
    Ok(cfg)
}
