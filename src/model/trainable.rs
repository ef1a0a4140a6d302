//! A TorchScript graph opened for training: its parameters as tensors an optimiser can step,
//! a classifier head that can be replaced for new labels, and saving back to TorchScript.
//!
//! Convention (docs/ARCHITECTURE.md): the graph exposes `features(x)` (N x D) and its head is a
//! linear layer named `fc` (`fc.weight` D -> classes, `fc.bias`), so a new head is the same two
//! parameters with another number of rows; `forward` keeps working because it only applies them.

use super::registry::ModelSource;
use super::ModelConfig;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{CModule, Device, Kind, Tensor};

pub struct Trainable {
    pub config: ModelConfig,
    module: CModule,
    pub device: Device,
}

impl Trainable {
    /// Opens a resolved model on `device` in fp32.
    pub fn open(source: &ModelSource, device: Device) -> Result<Trainable> {
        tch::jit::set_profiling_mode(false);
        // Exports are fp32: loading onto the device is all it takes (a module-wide cast would
        // also convert integer buffers).
        let (config, module) = super::read_module(source, device)?;
        let t = Trainable {
            config,
            module,
            device,
        };
        t.head().map(drop)?;
        Ok(t)
    }

    /// Every trainable parameter (name, tensor sharing the module's storage). Parameters
    /// that need no gradient are left out: a pulled model's BatchNorm statistics are such
    /// parameters (docs/MODELS.md), which an optimiser must not step or decay.
    pub fn parameters(&self) -> Result<Vec<(String, Tensor)>> {
        let mut ps = self.module.named_parameters()?;
        ps.retain(|(_, t)| t.requires_grad());
        Ok(ps)
    }

    /// The head's weight and bias.
    fn head(&self) -> Result<(Tensor, Tensor)> {
        let mut w = None;
        let mut b = None;
        for (name, t) in self.parameters()? {
            match name.as_str() {
                "fc.weight" => w = Some(t),
                "fc.bias" => b = Some(t),
                _ => {}
            }
        }
        match (w, b) {
            (Some(w), Some(b)) if w.dim() == 2 => Ok((w, b)),
            _ => bail!(
                "model {} has no linear head named `fc`; training needs a graph with \
                 `features(x)` and an `fc` layer over them (docs/ARCHITECTURE.md)",
                self.config.name
            ),
        }
    }

    /// Width D of the features the head reads.
    pub fn feature_width(&self) -> Result<usize> {
        Ok(self.head()?.0.size()[1] as usize)
    }

    /// Replaces the head with a fresh one for `classes` labels (PyTorch's default init for a
    /// linear layer, from torch's generator: seed it first for repeatable runs).
    pub fn replace_head(&mut self, classes: usize) -> Result<()> {
        let (mut w, mut b) = self.head()?;
        let d = w.size()[1];
        let bound = 1.0 / (d as f64).sqrt();
        let opts = (Kind::Float, self.device);
        let nw = Tensor::empty([classes as i64, d], opts).uniform_(-bound, bound);
        let nb = Tensor::empty([classes as i64], opts).uniform_(-bound, bound);
        tch::no_grad(|| {
            w.set_data(&nw);
            b.set_data(&nb);
        });
        Ok(())
    }

    /// Sets the head's weights (classes x D and classes).
    pub fn set_head(&mut self, weight: &Tensor, bias: &Tensor) -> Result<()> {
        let (mut w, mut b) = self.head()?;
        tch::no_grad(|| {
            w.set_data(&weight.to_device(self.device));
            b.set_data(&bias.to_device(self.device));
        });
        Ok(())
    }

    /// Draws every parameter afresh, for training from scratch: PyTorch's default inits,
    /// uniform +-1/sqrt(fan_in) for weights and biases, and weight 1, bias 0 for normalisation
    /// layers. A normalisation layer (BatchNorm, LayerNorm, GroupNorm) is told by its shape,
    /// whatever its name: its weight is 1-D, where a convolution's or a linear layer's has two
    /// or more dimensions (libtorch does not show a scripted module's type).
    pub fn reinitialise(&mut self) -> Result<()> {
        let params = self.parameters()?;
        let owner = |name: &str| name.rsplit_once('.').map_or("", |(m, _)| m).to_string();
        let norms: std::collections::HashSet<String> = params
            .iter()
            .filter(|(n, t)| t.dim() == 1 && (n == "weight" || n.ends_with(".weight")))
            .map(|(n, _)| owner(n))
            .collect();
        for (name, mut t) in params {
            let norm = norms.contains(&owner(&name));
            tch::no_grad(|| {
                if norm && name.ends_with("weight") {
                    let _ = t.fill_(1.0);
                } else if norm {
                    let _ = t.zero_();
                } else {
                    let fan_in: i64 = if t.dim() > 1 {
                        t.size()[1..].iter().product()
                    } else {
                        t.size()[0]
                    };
                    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
                    let _ = t.uniform_(-bound, bound);
                }
            });
        }
        Ok(())
    }

    pub fn set_train(&mut self, train: bool) {
        if train {
            self.module.set_train();
        } else {
            self.module.set_eval();
        }
    }

    /// Logits with autograd (N x classes).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.module.forward_ts(&[x.to_device(self.device)])?)
    }

    /// Checks that the graph has `features(x)` giving what the head reads (one zero clip
    /// through it), so a probe can be fitted: before any video is decoded.
    pub fn check_features(&self) -> Result<()> {
        let width = self.feature_width()?;
        let (t, c) = (self.config.frames as i64, self.config.crop as i64);
        let x = Tensor::zeros([1, 3, t, c, c], (Kind::Float, self.device));
        let got = {
            let _g = tch::no_grad_guard();
            self.module.method_ts("features", &[x]).map(|f| f.size())
        };
        match got {
            Ok(size) if size == [1, width as i64] => Ok(()),
            Ok(size) => bail!(
                "model {}: `features(x)` gives {size:?}, not the 1 x {width} its `fc` head reads; \
                 training needs both (docs/ARCHITECTURE.md)",
                self.config.name
            ),
            Err(e) => {
                let why = e.to_string();
                let why = why.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                bail!(
                    "model {} has no usable `features` method ({why}): a probe and fine-tuning \
                     need a graph exported with `features(x)` (docs/ARCHITECTURE.md); --scratch \
                     does not",
                    self.config.name
                )
            }
        }
    }

    /// Pooled features without autograd (N x D).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let _g = tch::no_grad_guard();
        self.module
            .method_ts("features", &[x.to_device(self.device)])
            .with_context(|| format!("model {} has no `features` method", self.config.name))
    }

    /// Saves the graph with its current weights, whole ([`crate::atomic`]), replacing the
    /// file of an earlier save.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::atomic::write_with(path, crate::atomic::Existing::Replace, |_, tmp| {
            self.module
                .save(tmp)
                .with_context(|| format!("cannot write {}", path.display()))
        })
    }

    /// Loads weights saved by [`Trainable::save`] into this graph (same architecture).
    pub fn load_weights(&mut self, path: &Path) -> Result<()> {
        let saved = CModule::load_on_device(path, self.device)
            .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        let names = |m: &CModule| -> Result<Vec<String>> {
            Ok(m.named_parameters()?.into_iter().map(|(n, _)| n).collect())
        };
        if names(&saved)? != names(&self.module)? {
            bail!("checkpoint {} does not match the model", path.display());
        }
        self.module = saved;
        Ok(())
    }
}
