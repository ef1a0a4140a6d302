//! AdamW (decoupled weight decay) over a list of tensors, with its state saved and restored
//! so an interrupted run continues exactly where it stopped.

use anyhow::{Context, Result};
use std::path::Path;
use tch::Tensor;

pub struct AdamW {
    params: Vec<Tensor>,
    /// Per-parameter learning-rate factor (e.g. a smaller one for a pretrained backbone).
    scale: Vec<f64>,
    /// Weight decay applies to weights, not to biases and normalisation parameters (1-D).
    decay: Vec<bool>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    pub steps: i64,
    pub weight_decay: f64,
}

const B1: f64 = 0.9;
const B2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl AdamW {
    pub fn new(params: Vec<(Tensor, f64)>, weight_decay: f64) -> AdamW {
        let m = params.iter().map(|(p, _)| p.zeros_like()).collect();
        let v = params.iter().map(|(p, _)| p.zeros_like()).collect();
        let decay = params.iter().map(|(p, _)| p.dim() > 1).collect();
        let (params, scale) = params.into_iter().unzip();
        AdamW {
            params,
            scale,
            decay,
            m,
            v,
            steps: 0,
            weight_decay,
        }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update at learning rate `lr` from the gradients in place.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let c1 = 1.0 - B1.powi(self.steps as i32);
        let c2 = 1.0 - B2.powi(self.steps as i32);
        tch::no_grad(|| {
            for i in 0..self.params.len() {
                let g = self.params[i].grad();
                if !g.defined() {
                    continue;
                }
                let lr = lr * self.scale[i];
                let _ = self.m[i].g_mul_scalar_(B1).g_add_(&(&g * (1.0 - B1)));
                let _ = self.v[i].g_mul_scalar_(B2).g_add_(&(&g * &g * (1.0 - B2)));
                let update = (&self.m[i] / c1) / ((&self.v[i] / c2).sqrt() + EPS);
                if self.decay[i] && self.weight_decay > 0.0 {
                    let _ = self.params[i].g_mul_scalar_(1.0 - lr * self.weight_decay);
                }
                let _ = self.params[i].g_sub_(&(update * lr));
            }
        });
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            named.push((format!("m{i}"), m.shallow_clone()));
            named.push((format!("v{i}"), v.shallow_clone()));
        }
        named.push(("steps".into(), Tensor::from_slice(&[self.steps])));
        crate::atomic::write_with(path, crate::atomic::Existing::Replace, |_, tmp| {
            Tensor::save_multi(&named, tmp)
                .with_context(|| format!("cannot write {}", path.display()))
        })
    }

    pub fn load(&mut self, path: &Path) -> Result<()> {
        let named =
            Tensor::load_multi(path).with_context(|| format!("cannot read {}", path.display()))?;
        for (name, t) in named {
            let slot = |s: &str| name.strip_prefix(s).and_then(|i| i.parse::<usize>().ok());
            if name == "steps" {
                self.steps = t.int64_value(&[0]);
            } else if let Some(i) = slot("m").filter(|&i| i < self.m.len()) {
                self.m[i] = t.to_device(self.m[i].device());
            } else if let Some(i) = slot("v").filter(|&i| i < self.v.len()) {
                self.v[i] = t.to_device(self.v[i].device());
            }
        }
        Ok(())
    }
}
