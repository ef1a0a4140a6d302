//! Model stage: finds a model and its config, loads the TorchScript graph onto a device,
//! checks it against the config, and turns batches of views into per-view logits.

mod aggregate;
pub mod calibrate;
pub mod config;
pub mod preprocess;
mod registry;
mod trainable;
pub mod weights;

pub use aggregate::{aggregate, softmax, top_k, Aggregate, Prediction};
pub use config::{ModelConfig, Pretrained, ReducedPrecision, Resize};
pub use registry::{
    available, builtin, cache_dir, config_dirs, find_card, find_graph, installed_configs, resolve,
    Catalogue, Listed, ModelSource,
};
pub use trainable::Trainable;

use anyhow::{bail, Context, Result};
use tch::{CModule, Device, Kind, Tensor};

/// Numeric precision of the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Fp32,
    Bf16,
    Fp16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }

    /// The tensor kind on `device`; fp16 has no usable CPU kernels.
    fn kind_on(self, device: Device) -> Result<Kind> {
        Ok(match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
            Precision::Fp16 if device == Device::Cpu => {
                bail!("precision fp16 needs a CUDA device; on the CPU use bf16")
            }
            Precision::Fp16 => Kind::Half,
        })
    }
}

/// Top-1 agreement with fp32, measured at export, that `--precision auto` asks of a reduced
/// precision before choosing it.
pub const AUTO_MIN_AGREEMENT: f64 = 0.99;

/// Whether this CPU has bfloat16 arithmetic in hardware (AVX512-BF16 or AMX-BF16, from the
/// kernel's flags); without it libtorch emulates bf16 and gains little or loses.
pub fn cpu_has_native_bf16() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|text| cpuinfo_has_native_bf16(&text))
        .unwrap_or(false)
}

/// [`cpu_has_native_bf16`] for a `/proc/cpuinfo` text.
pub fn cpuinfo_has_native_bf16(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .flat_map(str::split_whitespace)
        .any(|f| f == "avx512_bf16" || f == "amx_bf16")
}

/// `--precision auto`: the fastest precision this device runs that the model's export
/// recorded as agreeing with fp32 (top-1 on its calibration clips >= [`AUTO_MIN_AGREEMENT`]).
/// On CUDA fp16, else bf16; on a CPU bf16 only with native bf16; else fp32. A precision the
/// export did not check is never chosen, so a config without the record stays in fp32.
pub fn auto_precision(cfg: &ModelConfig, device: Device, native_bf16: bool) -> Precision {
    let agrees = |a: Option<f64>| a.is_some_and(|a| a >= AUTO_MIN_AGREEMENT);
    let Some(r) = &cfg.reduced_precision else {
        return Precision::Fp32;
    };
    match device {
        Device::Cuda(_) if agrees(r.fp16_top1_agreement) => Precision::Fp16,
        Device::Cuda(_) if agrees(r.bf16_top1_agreement) => Precision::Bf16,
        Device::Cpu if native_bf16 && agrees(r.bf16_top1_agreement) => Precision::Bf16,
        _ => Precision::Fp32,
    }
}

/// `--batch-size auto`: 1 view per forward pass on a CPU (on 2 cores batch 1 ran 1.23-1.27x
/// faster than 8 for r2plus1d_18, docs/BENCHMARKS.md), 8 on CUDA (on an H100 the model alone
/// ran 2.0-2.6x faster at 8 than at 1, and 32 added only 1.10-1.18x: docs/BENCHMARKS.md,
/// `scripts/device_check.sh`).
pub fn auto_batch_size(device: Device) -> usize {
    match device {
        Device::Cuda(_) => 8,
        _ => 1,
    }
}

/// A device as `--device` spells it: `cpu`, `cuda:N`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Cpu => "cpu".to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The config of a resolved model, without loading its graph.
pub fn read_config(source: &ModelSource) -> Result<ModelConfig> {
    match source {
        ModelSource::BuiltIn => registry::builtin_config(),
        ModelSource::Files { config, .. } => ModelConfig::from_file(config),
    }
}

/// `auto` picks CUDA device 0 when libtorch sees one; `cuda` means `cuda:0`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let cuda = |i: usize| -> Result<Device> {
        if !tch::Cuda::is_available() {
            bail!("device {spec}: CUDA is not available (see `vidcls version`)");
        }
        let n = tch::Cuda::device_count() as usize;
        if i >= n {
            bail!("device {spec}: only {n} CUDA device(s)");
        }
        Ok(Device::Cuda(i))
    };
    match spec {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => bail!("device {spec:?}: use auto, cpu, cuda or cuda:N"),
        },
    }
}

/// What to load and how to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    pub device: Device,
    pub precision: Precision,
    /// Frames per clip to feed (None: the config's).
    pub frames: Option<usize>,
}

/// A loaded, checked model ready for forward passes.
pub struct Model {
    pub config: ModelConfig,
    pub source: ModelSource,
    module: CModule,
    pub device: Device,
    pub precision: Precision,
    kind: Kind,
    /// Frames per clip this run feeds.
    pub frames: usize,
}

impl Model {
    /// Loads the model, moves it to the device in the precision asked for, and runs one dummy
    /// clip to check that the output width equals the label count.
    pub fn load(source: ModelSource, opts: &LoadOptions) -> Result<Model> {
        // The profiling executor runs the first calls unoptimised and later ones through a
        // re-optimised graph, so a video's scores would depend on its position in the batch.
        tch::jit::set_profiling_mode(false);
        let kind = opts.precision.kind_on(opts.device)?;
        let (config, mut module) = read_module(&source, opts.device)?;
        module.set_eval();
        if kind != Kind::Float {
            // Only for another precision: libtorch's module-wide cast converts integer
            // buffers too, which would break an fp32 graph that indexes with one (the
            // exporter keeps swin3d's relative-position index out of the buffers for this).
            module.to(opts.device, kind, false);
        }
        let layout = config.pretrained.as_ref().and_then(|p| p.layout.as_deref());
        weights::apply_layout(&module, weights::Layout::parse(layout)?)?;
        let frames = check_frames(&config, opts.frames.unwrap_or(config.frames))?;
        let model = Model {
            config,
            source,
            module,
            device: opts.device,
            precision: opts.precision,
            kind,
            frames,
        };
        model.check_output()?;
        Ok(model)
    }

    /// Where the weights came from, for messages.
    pub fn origin(&self) -> String {
        match &self.source {
            ModelSource::BuiltIn => "built-in model".to_string(),
            ModelSource::Files { weights, .. } => weights.display().to_string(),
        }
    }

    /// Runs one zero clip and checks the output width against the labels. A model that takes
    /// clips of any length gets its shortest (`min_frames`, which the exporter checks it runs
    /// at): the probe runs every layer in the precision asked for, at a fraction of the cost of
    /// a full clip (s3d: 13 frames instead of 64), which a one-video run would otherwise pay on
    /// top of its own clip.
    fn check_output(&self) -> Result<()> {
        let frames = if self.config.variable_frames {
            self.config.min_frames.min(self.frames)
        } else {
            self.frames
        };
        let c = self.config.crop as i64;
        let probe = Tensor::zeros([1, 3, frames as i64, c, c], (Kind::Float, Device::Cpu));
        let out = self.forward(&probe).with_context(|| {
            let hint = if self.precision == Precision::Fp32 {
                String::new()
            } else {
                format!(
                    " in {} on {:?} (libtorch may lack a kernel for one of its operations in \
                     that precision there; fp32 works everywhere)",
                    self.precision.name(),
                    self.device
                )
                .to_lowercase()
            };
            format!(
                "model {} fails on a 1x3x{frames}x{c}x{c} clip{hint}",
                self.origin()
            )
        })?;
        let width = out.first().map_or(0, Vec::len);
        if width != self.config.labels.len() {
            bail!(
                "model {} outputs {width} classes but its config has {} labels",
                self.origin(),
                self.config.labels.len()
            );
        }
        Ok(())
    }

    /// Logits of a batch (N x C x T x H x W float32 on any device), one row per view.
    pub fn forward(&self, batch: &Tensor) -> Result<Vec<Vec<f64>>> {
        let _guard = tch::no_grad_guard();
        let input = batch.f_to_device(self.device)?.f_to_kind(self.kind)?;
        let out = self.module.forward_ts(&[input])?;
        rows(&out)
    }

    /// Pooled penultimate features of a batch (N x D), from the graph's `features` method:
    /// what the classifier reads. Every export of this project has one (docs/ARCHITECTURE.md).
    pub fn features(&self, batch: &Tensor) -> Result<Vec<Vec<f64>>> {
        let _guard = tch::no_grad_guard();
        let input = batch.f_to_device(self.device)?.f_to_kind(self.kind)?;
        let out = self
            .module
            .method_ts("features", &[input])
            .with_context(|| {
                format!(
                    "model {} has no usable `features` method (export it with one: \
                     docs/ARCHITECTURE.md says how)",
                    self.origin()
                )
            })?;
        rows(&out)
    }

    /// The feature width D, from one zero clip (fails if the graph has no `features`).
    pub fn feature_width(&self) -> Result<usize> {
        let c = self.config.crop as i64;
        let probe = Tensor::zeros([1, 3, self.frames as i64, c, c], (Kind::Float, Device::Cpu));
        Ok(self.features(&probe)?.first().map_or(0, Vec::len))
    }

    /// Parameter count of the loaded graph.
    pub fn parameters(&self) -> u64 {
        self.module
            .named_parameters()
            .map(|ps| ps.iter().map(|(_, t)| t.numel() as u64).sum())
            .unwrap_or(0)
    }
}

/// A 2-D output tensor as one `Vec<f64>` per row, on the CPU.
fn rows(out: &Tensor) -> Result<Vec<Vec<f64>>> {
    let out = out.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
    let size = out.size();
    if size.len() != 2 {
        bail!("model output has shape {size:?}, expected [batch, classes]");
    }
    let flat: Vec<f64> = Vec::<f64>::try_from(out.flatten(0, -1))?;
    Ok(flat
        .chunks(size[1].max(1) as usize)
        .map(<[f64]>::to_vec)
        .collect())
}

/// Reads the config and the TorchScript graph of a resolved model onto `device`.
pub(crate) fn read_module(source: &ModelSource, device: Device) -> Result<(ModelConfig, CModule)> {
    match source {
        ModelSource::BuiltIn => {
            let cfg = registry::builtin_config()?;
            let mut bytes = std::io::Cursor::new(builtin::WEIGHTS);
            let m = CModule::load_data_on_device(&mut bytes, device)
                .context("cannot load the built-in model")?;
            Ok((cfg, m))
        }
        ModelSource::Files { config, weights } => {
            let cfg = ModelConfig::from_file(config)?;
            if !weights.is_file() && cfg.pretrained.is_some() {
                bail!(
                    "model {} is not installed; run `vidcls models pull {}`{}",
                    cfg.name,
                    cfg.name,
                    cfg.pretrained.as_ref().and_then(|p| p.bytes).map_or(
                        String::new(),
                        |b| format!(" (downloads {:.0} MB)", b as f64 / 1e6)
                    )
                );
            }
            if !weights.is_file() {
                bail!(
                    "model file {} for config {} does not exist (scripts/export_models.py makes it)",
                    weights.display(),
                    config.display()
                );
            }
            let m = CModule::load_on_device(weights, device).with_context(|| {
                format!(
                    "cannot load TorchScript model {} (exported with torch {}; this vidcls has libtorch {})",
                    weights.display(),
                    cfg.torch_version,
                    env!("VIDCLS_LIBTORCH_VERSION")
                )
            })?;
            Ok((cfg, m))
        }
    }
}

/// Checks a clip length against what the model's architecture accepts.
fn check_frames(config: &ModelConfig, frames: usize) -> Result<usize> {
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
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(record: Option<ReducedPrecision>) -> ModelConfig {
        let mut cfg: ModelConfig =
            serde_json::from_str(include_str!("../../configs/motion.json")).unwrap();
        cfg.reduced_precision = record;
        cfg
    }

    fn record(bf16: Option<f64>, fp16: Option<f64>) -> Option<ReducedPrecision> {
        Some(ReducedPrecision {
            clips: 32,
            bf16_top1_agreement: bf16,
            fp16_top1_agreement: fp16,
            clips_from: None,
        })
    }

    #[test]
    fn auto_precision_needs_hardware_and_an_export_record() {
        let (cpu, gpu) = (Device::Cpu, Device::Cuda(0));
        let auto = |r, d, native| auto_precision(&config(r), d, native);
        // No record: fp32 everywhere, whatever the hardware.
        for (d, native) in [(cpu, true), (cpu, false), (gpu, true)] {
            assert_eq!(auto(None, d, native), Precision::Fp32);
            assert_eq!(auto(record(None, None), d, native), Precision::Fp32);
        }
        // bf16 agrees: only a CPU with native bf16 takes it; CUDA takes it without fp16.
        let bf16 = record(Some(1.0), None);
        assert_eq!(auto(bf16.clone(), cpu, true), Precision::Bf16);
        assert_eq!(auto(bf16.clone(), cpu, false), Precision::Fp32);
        assert_eq!(auto(bf16, gpu, false), Precision::Bf16);
        // Below the bar: not chosen.
        assert_eq!(
            auto(record(Some(0.98), Some(0.5)), cpu, true),
            Precision::Fp32
        );
        assert_eq!(
            auto(record(Some(0.98), Some(0.5)), gpu, true),
            Precision::Fp32
        );
        // fp16 only on CUDA, first there.
        let both = record(Some(0.995), Some(0.99));
        assert_eq!(auto(both.clone(), gpu, true), Precision::Fp16);
        assert_eq!(auto(both.clone(), cpu, true), Precision::Bf16);
        assert_eq!(auto(record(None, Some(1.0)), cpu, true), Precision::Fp32);
        // Deterministic: the same inputs, the same answer.
        for _ in 0..3 {
            assert_eq!(auto(both.clone(), cpu, true), Precision::Bf16);
        }
    }

    #[test]
    fn auto_never_asks_for_what_the_device_cannot_run() {
        // fp16 has no CPU kernels: whatever the record, auto on a CPU never picks it.
        let all = record(Some(1.0), Some(1.0));
        for native in [false, true] {
            let p = auto_precision(&config(all.clone()), Device::Cpu, native);
            assert!(p.kind_on(Device::Cpu).is_ok(), "{p:?}");
        }
    }

    #[test]
    fn native_bf16_from_cpu_flags() {
        let flags = |f: &str| format!("processor\t: 0\nflags\t\t: fpu sse2 {f} avx2\n\n");
        assert!(cpuinfo_has_native_bf16(&flags("avx512f avx512_bf16")));
        assert!(cpuinfo_has_native_bf16(&flags("amx_bf16 amx_tile")));
        assert!(!cpuinfo_has_native_bf16(&flags("avx512f avx512bw")));
        assert!(!cpuinfo_has_native_bf16("model name : avx512_bf16\n"));
    }

    #[test]
    fn auto_batch_size_by_device() {
        assert_eq!(auto_batch_size(Device::Cpu), 1);
        assert_eq!(auto_batch_size(Device::Cuda(0)), 8);
    }
}
