//! Model config: the one source of truth for how a model wants its input (`configs/NAME.json`).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Resize {
    /// Resize to exactly (height, width), ignoring aspect ratio (torchvision's R(2+1)D recipe).
    Exact { height: u32, width: u32 },
    /// Resize so the shorter side is `size`, keeping aspect ratio.
    ShortSide { size: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Frames are sampled at this rate (None: the video's own rate).
    pub fps: Option<f64>,
    /// Every `stride`-th frame at that rate.
    pub stride: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// `kinetics400`, `file:NAME`, `random-init:seed=N`, `trained:...`.
    pub source: String,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub name: String,
    pub architecture: String,
    /// Class names in output order; or read from `labels_file` (relative to the config).
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_file: Option<String>,
    /// Name of the label set (e.g. `kinetics400`, `motion8`).
    pub label_set: String,
    /// Frames per clip the model was trained with.
    pub frames: usize,
    /// Fewest frames the architecture accepts.
    pub min_frames: usize,
    /// Whether longer clips than `frames` work (global pooling over time, no fixed-size head).
    pub variable_frames: bool,
    pub sampling: Sampling,
    pub resize: Resize,
    /// Square centre crop side after resizing.
    pub crop: u32,
    /// Per-channel mean and std applied after scaling pixels to `[0, value_scale]`.
    pub mean: [f64; 3],
    pub std: [f64; 3],
    /// 1.0 scales 8-bit pixels to [0, 1]; 255.0 keeps them 0..255.
    #[serde(default = "one")]
    pub value_scale: f64,
    /// Always `NCTHW` for the models exported here.
    pub input_layout: String,
    /// TorchScript file, relative to the config's directory or `models/`.
    pub file: String,
    pub torch_version: String,
    pub weights: Weights,
    #[serde(default)]
    pub parameters: Option<u64>,
    /// What the exporter measured of the graph in reduced precision (absent: not checked, so
    /// `--precision auto` keeps fp32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduced_precision: Option<ReducedPrecision>,
    /// How a trained model was made (data fingerprint, seed, epochs, vidcls version, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<serde_json::Value>,
    /// Where `vidcls models pull` gets published weights for this model, and the weight-free
    /// graph it fills with them (docs/MODELS.md, "Model cards").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<Pretrained>,
    /// How the model is run when no flag says otherwise (a trained model's: the setting that
    /// scored best on its validation videos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_views: Option<DefaultViews>,
}

/// Views per video a model is run with by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultViews {
    /// Clips per video (or window), spread uniformly over it.
    pub clips: usize,
}

/// A model card's download section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pretrained {
    /// The weight-free TorchScript graph, relative to the card's `models/` directory.
    pub graph: String,
    /// Where the weights file is published (http, https).
    pub url: String,
    /// The file's sha256: all 64 hex digits, or a prefix of at least 8 (torchvision's file
    /// names carry one; it is checked too).
    pub sha256: String,
    /// The file's size in bytes, where published exactly (checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The file's size in MiB as the publisher's metadata rounds it (shown, not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_mib: Option<f64>,
    /// Published state-dict names -> graph names: `str::replace` rules applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rename: Vec<(String, String)>,
    /// `channels_last_3d`: the model's 5-D weights are stored in that memory layout when it
    /// loads, so its convolutions run channels-last (faster on a CPU, as the export has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// Published Kinetics-400 accuracy (top-1, top-5, percent), from the weights' metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinetics400_accuracy: Option<(f64, f64)>,
}

impl Pretrained {
    /// The download's size in bytes: exact where published, else from the rounded MiB.
    pub fn download_bytes(&self) -> Option<u64> {
        self.bytes
            .or(self.size_mib.map(|m| (m * 1024.0 * 1024.0).round() as u64))
    }
}

/// Top-1 agreement of the graph in a reduced precision with its float32 self, on the
/// exporter's calibration clips (a fraction in 0..=1; absent: not measured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReducedPrecision {
    pub clips: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bf16_top1_agreement: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp16_top1_agreement: Option<f64>,
    /// What the clips were: `videos` (real videos' centre clips) or `synthetic`; absent: the
    /// exporter's synthetic calibration clips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clips_from: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// A label holds no control character: labels are printed on terminals and written into CSV
/// cells and subtitle cues, where a line break or an escape sequence would forge output.
pub fn check_label(label: &str) -> Result<()> {
    if let Some(c) = label.chars().find(|c| c.is_control()) {
        bail!("{label:?} holds the control character {c:?}; labels may not");
    }
    Ok(())
}

impl ModelConfig {
    /// Parses a config file and loads its labels; `labels_file` is resolved next to it.
    pub fn from_file(path: &Path) -> Result<ModelConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read model config {}", path.display()))?;
        let mut cfg = Self::from_json(&text)
            .with_context(|| format!("invalid model config {}", path.display()))?;
        if cfg.labels.is_empty() {
            if let Some(file) = &cfg.labels_file {
                let lp = path.parent().unwrap_or(Path::new(".")).join(file);
                let text = std::fs::read_to_string(&lp)
                    .with_context(|| format!("cannot read label file {}", lp.display()))?;
                cfg.labels = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect();
            }
        }
        cfg.validate()
            .with_context(|| format!("invalid model config {}", path.display()))?;
        Ok(cfg)
    }

    pub fn from_json(text: &str) -> Result<ModelConfig> {
        Ok(serde_json::from_str(text)?)
    }

    pub fn validate(&self) -> Result<()> {
        if self.labels.is_empty() {
            bail!("no labels (neither `labels` nor a readable `labels_file`)");
        }
        for (i, label) in self.labels.iter().enumerate() {
            check_label(label).with_context(|| format!("label {i}"))?;
        }
        if self.frames == 0 || self.min_frames == 0 || self.min_frames > self.frames {
            bail!(
                "frames {} / min_frames {} are inconsistent",
                self.frames,
                self.min_frames
            );
        }
        if self.sampling.stride == 0 {
            bail!("sampling.stride must be at least 1");
        }
        if self.std.iter().any(|s| *s <= 0.0) {
            bail!("std values must be positive");
        }
        if let Some(v) = self.default_views {
            let most = crate::config::limits::CLIPS as usize;
            if !(1..=most).contains(&v.clips) {
                bail!("default_views.clips {}: use 1 to {most}", v.clips);
            }
        }
        if self.input_layout != "NCTHW" {
            bail!(
                "input_layout {:?} is not supported (only NCTHW)",
                self.input_layout
            );
        }
        Ok(())
    }

    /// Clips per video: `given` (a `--clips` flag), else the config's default views, else 1.
    pub fn clips(&self, given: Option<usize>) -> usize {
        given.or(self.default_views.map(|v| v.clips)).unwrap_or(1)
    }

    /// Where the TorchScript file is: next to the config, else in `models_dir`.
    pub fn model_path(&self, config_dir: &Path, models_dir: &Path) -> PathBuf {
        let beside = config_dir.join(&self.file);
        if beside.exists() {
            beside
        } else {
            models_dir.join(&self.file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_with_control_characters_are_refused() {
        let mut cfg = ModelConfig::from_json(include_str!("../../configs/motion.json")).unwrap();
        cfg.validate().unwrap();
        cfg.labels[3] = "move\x1b[31m_down".into();
        let e = format!("{:#}", cfg.validate().unwrap_err());
        assert_eq!(
            e,
            "label 3: \"move\\u{1b}[31m_down\" holds the control character '\\u{1b}'; labels may not"
        );
        cfg.labels[3] = "déplacer ↓ 日本".into();
        cfg.validate().unwrap();
    }

    #[test]
    fn clips_come_from_the_flag_then_the_default_views_then_one() {
        let mut cfg = ModelConfig::from_json(include_str!("../../configs/motion.json")).unwrap();
        assert_eq!((cfg.clips(None), cfg.clips(Some(4))), (1, 4));
        let text = serde_json::to_string(&cfg).unwrap();
        assert!(!text.contains("default_views"), "{text}");
        cfg.default_views = Some(DefaultViews { clips: 5 });
        let back = ModelConfig::from_json(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back.default_views, Some(DefaultViews { clips: 5 }));
        assert_eq!((back.clips(None), back.clips(Some(1))), (5, 1));
        back.validate().unwrap();
        cfg.default_views = Some(DefaultViews { clips: 0 });
        let e = cfg.validate().unwrap_err().to_string();
        assert_eq!(e, "default_views.clips 0: use 1 to 256");
    }
}
