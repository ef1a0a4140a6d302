//! Published weights: reading a state dict (PyTorch's zip and legacy `.pth`, safetensors)
//! without running any of its code, and filling a weight-free graph with it by name.

mod pickle;

use anyhow::{anyhow, bail, Context, Result};
use pickle::{TensorRef, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use tch::{CModule, Kind, Tensor};

/// Named tensors in file order.
pub type StateDict = Vec<(String, Tensor)>;

/// The magic number that starts a legacy (pre-1.6, non-zip) `torch.save` file.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// Reads a state dict from `path`: a zip `.pth`, a legacy `.pth` or a `.safetensors` file,
/// told apart by their first bytes. Checkpoints that wrap the dict (`state_dict`, `model`,
/// `model_state`) are unwrapped and DataParallel's `module.` prefixes dropped.
pub fn read_state_dict(path: &Path) -> Result<StateDict> {
    let data =
        std::fs::read(path).with_context(|| format!("cannot read weights {}", path.display()))?;
    let sd = if data.starts_with(b"PK\x03\x04") {
        read_zip(&data)
    } else if data.starts_with(&[0x80]) {
        read_legacy(&data)
    } else if looks_like_safetensors(&data) {
        Tensor::read_safetensors(path).map_err(anyhow::Error::from)
    } else {
        Err(anyhow!(
            "not a PyTorch checkpoint or safetensors file (starts with {:?})",
            String::from_utf8_lossy(&data[..data.len().min(16)])
        ))
    };
    sd.with_context(|| format!("cannot read weights {}", path.display()))
}

/// safetensors: an 8-byte little-endian header length, then a JSON header.
fn looks_like_safetensors(data: &[u8]) -> bool {
    data.len() > 9
        && data[8] == b'{'
        && u64::from_le_bytes(data[..8].try_into().unwrap()) < data.len() as u64
}

fn read_zip(data: &[u8]) -> Result<StateDict> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(data)).context("not a zip archive")?;
    let pkl = zip
        .file_names()
        .find(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
        .map(String::from)
        .ok_or_else(|| anyhow!("zip checkpoint without data.pkl"))?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut entry = |name: &str| -> Result<Vec<u8>> {
        let mut f = zip
            .by_name(name)
            .with_context(|| format!("checkpoint lacks {name}"))?;
        let mut buf = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut buf)?;
        Ok(buf)
    };
    let (root, _) = pickle::read(&entry(&pkl)?)?;
    if let Ok(order) = entry(&format!("{prefix}byteorder")) {
        if order != b"little" {
            bail!("big-endian checkpoints are not supported");
        }
    }
    let mut storages = HashMap::new();
    tensors(root)?
        .into_iter()
        .map(|(name, t)| {
            if !storages.contains_key(&t.storage.key) {
                let bytes = entry(&format!("{prefix}data/{}", t.storage.key))?;
                storages.insert(t.storage.key.clone(), bytes);
            }
            Ok((name, build(&t, &storages[&t.storage.key])?))
        })
        .collect()
}

/// Legacy `torch.save`: pickles of the magic number, the protocol version and system info,
/// then the state dict, then the list of storage keys, then each storage in that order as
/// its element count (8 bytes, little-endian) and its raw bytes.
fn read_legacy(data: &[u8]) -> Result<StateDict> {
    let mut pos = 0;
    let mut next = || -> Result<Value> {
        let (v, n) = pickle::read(&data[pos..])?;
        pos += n;
        Ok(v)
    };
    if next()? != Value::Long(LEGACY_MAGIC.to_vec()) {
        bail!("not a PyTorch checkpoint (bad magic number)");
    }
    next()?; // protocol version
    next()?; // system info
    let root = next()?;
    let Value::List(keys) = next()? else {
        bail!("legacy checkpoint without its storage list");
    };
    let mut storages = HashMap::new();
    let sd = tensors(root)?;
    let kinds: HashMap<&str, Kind> = sd
        .iter()
        .map(|(_, t)| (t.storage.key.as_str(), t.storage.kind))
        .collect();
    for key in keys {
        let Value::Str(key) = key else {
            bail!("legacy checkpoint with a storage key that is not a string");
        };
        let take = |pos: usize, n: usize| {
            data.get(pos..pos + n)
                .ok_or_else(|| anyhow!("checkpoint ends inside storage {key} (truncated file?)"))
        };
        let numel = u64::from_le_bytes(take(pos, 8)?.try_into().unwrap()) as usize;
        let kind = kinds.get(key.as_str()).copied().unwrap_or(Kind::Uint8);
        let len = numel
            .checked_mul(kind.elt_size_in_bytes())
            .ok_or_else(|| anyhow!("storage {key} is too large"))?;
        storages.insert(key.clone(), take(pos + 8, len)?);
        pos += 8 + len;
    }
    sd.into_iter()
        .map(|(name, t)| {
            let bytes = storages
                .get(&t.storage.key)
                .ok_or_else(|| anyhow!("storage {} of {name} is missing", t.storage.key))?;
            Ok((name, build(&t, bytes)?))
        })
        .collect()
}

/// The (name, tensor record) pairs of the pickled state dict, unwrapped.
fn tensors(root: Value) -> Result<Vec<(String, TensorRef)>> {
    let mut dict = match root {
        Value::Dict(d) => d,
        _ => bail!("the checkpoint is not a state dict"),
    };
    for wrapper in ["state_dict", "model_state", "model"] {
        let inner = dict
            .iter()
            .position(|(k, v)| matches!((k, v), (Value::Str(s), Value::Dict(_)) if s == wrapper));
        if let Some(i) = inner {
            let Value::Dict(d) = dict.swap_remove(i).1 else {
                unreachable!()
            };
            dict = d;
            break;
        }
    }
    dict.into_iter()
        .filter_map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => {
                let k = k.strip_prefix("module.").map(String::from).unwrap_or(k);
                Some(Ok((k, t)))
            }
            (Value::Str(_), _) => None, // metadata beside the tensors
            (k, _) => Some(Err(anyhow!("state dict key {k:?} is not a string"))),
        })
        .collect()
}

/// A tensor with its own copy of the bytes its record views.
fn build(t: &TensorRef, storage: &[u8]) -> Result<Tensor> {
    let elt = t.storage.kind.elt_size_in_bytes();
    if storage.len() as u64 != t.storage.numel * elt as u64 {
        bail!(
            "storage {} holds {} bytes, its record says {} elements (truncated file?)",
            t.storage.key,
            storage.len(),
            t.storage.numel
        );
    }
    // The furthest element the view reaches must lie inside the storage.
    let reach: i64 = t.offset
        + t.size
            .iter()
            .zip(&t.stride)
            .map(|(s, st)| (s - 1).max(0) * st)
            .sum::<i64>();
    let empty = t.size.contains(&0);
    if t.offset < 0
        || t.stride.iter().any(|&s| s < 0)
        || (!empty && reach >= t.storage.numel as i64)
    {
        bail!("tensor record reaches outside storage {}", t.storage.key);
    }
    let flat = Tensor::f_from_data_size(storage, &[t.storage.numel as i64], t.storage.kind)?;
    Ok(flat
        .f_as_strided(&t.size, &t.stride, t.offset)?
        .f_contiguous()?)
}

/// How a graph keeps its 5-D weights in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Contiguous,
    /// N, T, H, W, C in memory (PyTorch's `channels_last_3d`).
    ChannelsLast3d,
}

impl Layout {
    pub fn parse(name: Option<&str>) -> Result<Layout> {
        match name {
            None => Ok(Layout::Contiguous),
            Some("channels_last_3d") => Ok(Layout::ChannelsLast3d),
            Some(other) => bail!("layout {other:?}: only channels_last_3d is known"),
        }
    }
}

/// Stores every 5-D parameter of `module` in `layout` (same values, other strides).
pub fn apply_layout(module: &CModule, layout: Layout) -> Result<()> {
    if layout == Layout::Contiguous {
        return Ok(());
    }
    for (_, mut p) in module.named_parameters()? {
        if p.dim() == 5 {
            let v = channels_last_3d(&p)?;
            tch::no_grad(|| p.set_data(&v));
        }
    }
    Ok(())
}

/// The same values with channels-last-3d strides: permuted to N x T x H x W x C, made
/// contiguous there, and permuted back (what `contiguous(memory_format=channels_last_3d)` does).
fn channels_last_3d(t: &Tensor) -> Result<Tensor> {
    Ok(t.f_permute([0, 2, 3, 4, 1])?
        .f_contiguous()?
        .f_permute([0, 4, 1, 2, 3])?)
}

/// `str::replace` rules from published names to a graph's names, applied in order.
pub type Renames = [(String, String)];

/// Fills a weight-free graph with a state dict: each of the graph's parameters (floating
/// buffers are parameters in these graphs) takes the data of the tensor whose renamed name
/// it has. Every parameter must be filled, and every tensor used (BatchNorm's
/// `num_batches_tracked` aside). Shapes must match, except that a tensor may carry trailing
/// singleton dimensions (a 1x1x1 convolution as a linear head), and the head (`fc.*`) may
/// have another number of classes (a fine-tuned model). Returns the head's class count.
pub fn fill(graph: &CModule, state: StateDict, renames: &Renames) -> Result<usize> {
    let mut params: HashMap<String, Tensor> = graph.named_parameters()?.into_iter().collect();
    let mut unexpected = Vec::new();
    let mut classes = 0;
    for (source, value) in state {
        let name = renames
            .iter()
            .fold(source.clone(), |n, (from, to)| n.replace(from, to));
        if source.ends_with("num_batches_tracked") {
            continue;
        }
        let Some(mut slot) = params.remove(&name) else {
            unexpected.push(source);
            continue;
        };
        let value =
            fit(&name, &slot.size(), value).with_context(|| format!("weights tensor {source}"))?;
        if name == "fc.weight" {
            classes = value.size()[0] as usize;
        }
        tch::no_grad(|| slot.set_data(&value));
    }
    if !unexpected.is_empty() || !params.is_empty() {
        let mut missing: Vec<&String> = params.keys().collect();
        missing.sort();
        bail!(
            "the weights do not fit this architecture: {} tensor(s) unknown to it ({}), {} of its \
             parameters missing ({})",
            unexpected.len(),
            sample(&unexpected),
            missing.len(),
            sample(&missing)
        );
    }
    Ok(classes)
}

fn sample<T: std::fmt::Display>(names: &[T]) -> String {
    let shown: Vec<String> = names.iter().take(4).map(T::to_string).collect();
    let more = names.len().saturating_sub(4);
    let more = if more > 0 {
        format!(", +{more}")
    } else {
        String::new()
    };
    if shown.is_empty() {
        "none".into()
    } else {
        format!("{}{more}", shown.join(", "))
    }
}

/// The tensor in the graph parameter's shape and in float32 (see [`fill`] for what fits).
fn fit(name: &str, want: &[i64], value: Tensor) -> Result<Tensor> {
    let value = if value.is_floating_point() {
        value.f_to_kind(Kind::Float)?
    } else {
        bail!("has kind {:?}, expected floating point", value.kind())
    };
    let got = value.size();
    if got == want {
        return Ok(value);
    }
    let trailing_ones = got.len() > want.len()
        && got[..want.len()] == *want
        && got[want.len()..].iter().all(|&d| d == 1);
    if trailing_ones {
        return Ok(value.f_reshape(want)?);
    }
    let squeezed: Vec<i64> = got.iter().copied().take(want.len()).collect();
    let other_classes = name.starts_with("fc.")
        && got.len() >= want.len()
        && squeezed[1..] == want[1..]
        && got[want.len()..].iter().all(|&d| d == 1);
    if other_classes {
        return Ok(value.f_reshape(&squeezed)?);
    }
    bail!("has shape {got:?}, the graph's {name} has {want:?}")
}
