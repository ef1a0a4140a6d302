//! Model stage: finds a model and its config, loads the TorchScript graph onto a device,
//! checks it against the config, and turns batches of views into per-view logits.

mod aggregate;
pub mod config;
pub mod preprocess;

pub use aggregate::{aggregate, top_k};
pub use config::{ModelConfig, Resize};

use crate::cli::Precision;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::{CModule, Device, Kind, Tensor};

/// The built-in default model: trained on the synthetic motion benchmark, compiled into the binary.
pub mod builtin {
    pub const NAME: &str = "motion";
    pub const CONFIG: &str = include_str!("../../configs/motion.json");
    pub const WEIGHTS: &[u8] = include_bytes!("../../models/motion.pt");
}

/// Directories searched for `configs/NAME.json`: `$VIDCLS_MODEL_PATH` (colon-separated), a
/// release bundle's `share/vidcls/configs/`, the `configs/` beside the executable's checkout,
/// and the source tree's `configs/`.
pub fn config_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("VIDCLS_MODEL_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
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
    let from_config = |config: PathBuf| -> Result<ModelSource> {
        let cfg = ModelConfig::from_file(&config)?;
        let dir = config.parent().unwrap_or(Path::new("."));
        let weights = cfg.model_path(dir, &models_dir_for(dir));
        Ok(ModelSource::Files { config, weights })
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => {
            if !path.is_file() {
                bail!("model config {} does not exist", path.display());
            }
            from_config(path.to_path_buf())
        }
        Some("pt") | Some("pth") => {
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
        _ if spec == builtin::NAME => Ok(ModelSource::BuiltIn),
        _ => {
            let dirs = config_dirs();
            for d in &dirs {
                let c = d.join(format!("{spec}.json"));
                if c.is_file() {
                    return from_config(c);
                }
            }
            let names: Vec<String> = available().into_iter().map(|e| e.config.name).collect();
            bail!(
                "unknown model {spec:?}; available: {} (see `vidcls models`)",
                names.join(", ")
            )
        }
    }
}

/// One entry of `vidcls models`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub config: ModelConfig,
    pub weights: Option<PathBuf>,
    pub builtin: bool,
}

/// Every model the search path knows, built-in first.
pub fn available() -> Vec<Listed> {
    let mut out = Vec::new();
    if let Ok(cfg) = builtin_config() {
        out.push(Listed {
            config: cfg,
            weights: None,
            builtin: true,
        });
    }
    for dir in config_dirs() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for p in paths {
            let Ok(cfg) = ModelConfig::from_file(&p) else {
                continue;
            };
            if out.iter().any(|l: &Listed| l.config.name == cfg.name) {
                continue;
            }
            let weights = cfg.model_path(&dir, &models_dir_for(&dir));
            out.push(Listed {
                config: cfg,
                weights: Some(weights),
                builtin: false,
            });
        }
    }
    out
}

fn builtin_config() -> Result<ModelConfig> {
    let cfg = ModelConfig::from_json(builtin::CONFIG).context("built-in model config")?;
    cfg.validate()?;
    Ok(cfg)
}

/// `auto` picks CUDA device 0 when libtorch sees one; `cuda` means `cuda:0`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let cuda = |i: usize| -> Result<Device> {
        if !tch::Cuda::is_available() {
            bail!("--device {spec}: CUDA is not available (see `vidcls version`)");
        }
        let n = tch::Cuda::device_count() as usize;
        if i >= n {
            bail!("--device {spec}: only {n} CUDA device(s)");
        }
        Ok(Device::Cuda(i))
    };
    match spec {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => bail!("--device {spec:?}: use auto, cpu, cuda or cuda:N"),
        },
    }
}

/// A loaded, checked model ready for forward passes.
pub struct Model {
    pub config: ModelConfig,
    pub source: ModelSource,
    module: CModule,
    pub device: Device,
    kind: Kind,
    /// Frames per clip this run feeds.
    pub frames: usize,
}

impl Model {
    /// Loads the model, moves it to `device` in `precision`, and runs one dummy clip of
    /// `frames` frames to check that the output width equals the label count.
    pub fn load(
        source: ModelSource,
        device: Device,
        precision: Precision,
        frames: Option<usize>,
    ) -> Result<Model> {
        // The profiling executor runs the first calls unoptimised and later ones through a
        // re-optimised graph, so a video's scores would depend on its position in the batch.
        tch::jit::set_profiling_mode(false);
        let (config, mut module, what) = match &source {
            ModelSource::BuiltIn => {
                let cfg = builtin_config()?;
                let m = CModule::load_data_on_device(
                    &mut std::io::Cursor::new(builtin::WEIGHTS),
                    Device::Cpu,
                )
                .context("cannot load the built-in model")?;
                (cfg, m, "built-in model".to_string())
            }
            ModelSource::Files { config, weights } => {
                let cfg = ModelConfig::from_file(config)?;
                if !weights.is_file() {
                    bail!(
                        "model file {} for config {} does not exist (scripts/export_models.py makes it)",
                        weights.display(),
                        config.display()
                    );
                }
                let m = CModule::load_on_device(weights, Device::Cpu).with_context(|| {
                    format!(
                        "cannot load TorchScript model {} (exported with torch {}; this vidcls has libtorch {})",
                        weights.display(),
                        cfg.torch_version,
                        env!("VIDCLS_LIBTORCH_VERSION")
                    )
                })?;
                (cfg, m, weights.display().to_string())
            }
        };
        let kind = match precision {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
            Precision::Fp16 => {
                if device == Device::Cpu {
                    bail!("--precision fp16 needs a CUDA device; on the CPU use bf16");
                }
                Kind::Half
            }
        };
        module.set_eval();
        module.to(device, kind, false);
        let frames = frames.unwrap_or(config.frames);
        if frames < config.min_frames {
            bail!(
                "model {} needs at least {} frames per clip, {frames} requested",
                config.name,
                config.min_frames
            );
        }
        if frames != config.frames && !config.variable_frames {
            bail!(
                "model {} ({}) takes exactly {} frames per clip (fixed-size head); {frames} requested",
                config.name,
                config.architecture,
                config.frames
            );
        }
        let model = Model {
            config,
            source,
            module,
            device,
            kind,
            frames,
        };
        let c = model.config.crop as i64;
        let probe = Tensor::zeros([1, 3, frames as i64, c, c], (Kind::Float, Device::Cpu));
        let out = model.forward(&probe).with_context(|| {
            let hint = if precision == Precision::Fp32 {
                String::new()
            } else {
                format!(
                    " in {precision:?} on {device:?} (libtorch may lack a kernel for one of its \
                     operations in that precision there; --precision fp32 works everywhere)"
                )
                .to_lowercase()
            };
            format!("model {what} fails on a 1x3x{frames}x{c}x{c} clip{hint}")
        })?;
        let width = out.first().map_or(0, Vec::len);
        if width != model.config.labels.len() {
            bail!(
                "model {what} outputs {width} classes but its config has {} labels",
                model.config.labels.len()
            );
        }
        Ok(model)
    }

    /// Logits of a batch (N x C x T x H x W float32 on any device), one row per view.
    pub fn forward(&self, batch: &Tensor) -> Result<Vec<Vec<f64>>> {
        let _guard = tch::no_grad_guard();
        let input = batch.f_to_device(self.device)?.f_to_kind(self.kind)?;
        let out = self.module.forward_ts(&[input])?;
        let out = out.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
        let size = out.size();
        if size.len() != 2 {
            bail!("model output has shape {size:?}, expected [batch, classes]");
        }
        let flat: Vec<f64> = Vec::<f64>::try_from(out.flatten(0, -1))?;
        Ok(flat.chunks(size[1] as usize).map(<[f64]>::to_vec).collect())
    }

    /// Parameter count of the loaded graph.
    pub fn parameters(&self) -> u64 {
        self.module
            .named_parameters()
            .map(|ps| ps.iter().map(|(_, t)| t.numel() as u64).sum())
            .unwrap_or(0)
    }
}
