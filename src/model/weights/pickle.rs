//! A restricted pickle reader: the opcodes and globals that `torch.save` of a state dict
//! writes, and nothing else. It never calls anything: the only "callables" it knows are
//! `collections.OrderedDict` (an empty dict) and `torch._utils._rebuild_tensor_v2` (a tensor
//! description), and any other global is refused when it is named, before it could be used.

use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use tch::Kind;

/// A storage a tensor views, as the pickle's persistent id names it.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub kind: Kind,
    pub key: String,
    pub numel: u64,
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too wide for i64 (legacy files' magic number), little-endian bytes.
    Long(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// The globals a state dict may name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Global {
    OrderedDict,
    RebuildTensor,
    Storage(Kind),
}

/// The storage classes of `torch.save` and their element kinds.
fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

fn global(module: &str, name: &str) -> Result<Global> {
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensor),
        ("torch", s) if storage_kind(s).is_some() => Ok(Global::Storage(storage_kind(s).unwrap())),
        _ => bail!(
            "refusing the pickle global {module}.{name}: a state dict holds only tensors, and \
             loading this file could run code"
        ),
    }
}

/// One pickle read from the start of `data`: its value and how many bytes it took.
pub fn read(data: &[u8]) -> Result<(Value, usize)> {
    let mut m = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let v = m.run()?;
    Ok((v, m.pos))
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| anyhow!("pickle ends early (truncated file?)"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().unwrap())
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| anyhow!("pickle ends early (truncated file?)"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack
            .pop()
            .ok_or_else(|| anyhow!("malformed pickle: stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| anyhow!("malformed pickle: no mark"))?;
        if m > self.stack.len() {
            bail!("malformed pickle: mark past the stack");
        }
        Ok(self.stack.split_off(m))
    }

    fn top(&mut self) -> Result<&mut Value> {
        self.stack
            .last_mut()
            .ok_or_else(|| anyhow!("malformed pickle: stack underflow"))
    }

    fn string(&mut self, n: usize) -> Result<()> {
        let s = String::from_utf8(self.take(n)?.to_vec())?;
        self.stack.push(Value::Str(s));
        Ok(())
    }

    fn bytes(&mut self, n: usize) -> Result<()> {
        let b = self.take(n)?.to_vec();
        self.stack.push(Value::Bytes(b));
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<()> {
        let v = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| anyhow!("malformed pickle: memo of nothing"))?;
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<()> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| anyhow!("malformed pickle: memo {key} unset"))?;
        self.stack.push(v);
        Ok(())
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            if op == b'.' {
                return self.pop();
            }
            let known = self.literal_op(op)?
                || self.memo_op(op)?
                || self.container_op(op)?
                || self.object_op(op)?;
            if !known {
                bail!(
                    "unsupported pickle opcode 0x{op:02x} at byte {at}: not a PyTorch state dict"
                );
            }
        }
    }

    /// Markers, constants, numbers, strings and bytes. False: not one of these opcodes.
    fn literal_op(&mut self, op: u8) -> Result<bool> {
        match op {
            0x80 => drop(self.u8()?),                  // PROTO
            0x95 => drop(self.le::<8>()?),             // FRAME
            b'(' => self.marks.push(self.stack.len()), // MARK
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'J' => {
                let v = i32::from_le_bytes(self.le()?);
                self.stack.push(Value::Int(v as i64))
            }
            b'K' => {
                let v = self.u8()?;
                self.stack.push(Value::Int(v as i64))
            }
            b'M' => {
                let v = u16::from_le_bytes(self.le()?);
                self.stack.push(Value::Int(v as i64))
            }
            0x8a => {
                let n = self.u8()? as usize;
                let b = self.take(n)?.to_vec();
                self.stack.push(long(b));
            }
            b'G' => {
                let v = f64::from_be_bytes(self.le()?);
                self.stack.push(Value::Float(v))
            }
            b'X' => {
                let n = u32::from_le_bytes(self.le()?) as usize;
                self.string(n)?
            }
            0x8c => {
                let n = self.u8()? as usize;
                self.string(n)?
            }
            0x8d => {
                let n = u64::from_le_bytes(self.le()?) as usize;
                self.string(n)?
            }
            b'B' => {
                let n = u32::from_le_bytes(self.le()?) as usize;
                self.bytes(n)?
            }
            b'C' => {
                let n = self.u8()? as usize;
                self.bytes(n)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The memo: PUT and GET. False: not one of these opcodes.
    fn memo_op(&mut self, op: u8) -> Result<bool> {
        match op {
            b'q' => {
                let k = self.u8()? as u32;
                self.memo_put(k)?
            }
            b'r' => {
                let k = u32::from_le_bytes(self.le()?);
                self.memo_put(k)?
            }
            0x94 => {
                let k = self.memo.len() as u32;
                self.memo_put(k)?
            }
            b'h' => {
                let k = self.u8()? as u32;
                self.memo_get(k)?
            }
            b'j' => {
                let k = u32::from_le_bytes(self.le()?);
                self.memo_get(k)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Tuples, lists and dicts, and filling them. False: not one of these opcodes.
    fn container_op(&mut self, op: u8) -> Result<bool> {
        match op {
            b'}' => self.stack.push(Value::Dict(Vec::new())),
            b']' => self.stack.push(Value::List(Vec::new())),
            b')' => self.stack.push(Value::Tuple(Vec::new())),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(items))
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    bail!("malformed pickle: stack underflow");
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(Value::Tuple(items))
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                dict_of(self.top()?)?.push((k, v))
            }
            b'u' => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    bail!("malformed pickle: odd SETITEMS");
                }
                let mut it = items.into_iter();
                let d = dict_of(self.top()?)?;
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
            }
            b'a' => {
                let v = self.pop()?;
                list_of(self.top()?)?.push(v)
            }
            b'e' => {
                let items = self.pop_mark()?;
                list_of(self.top()?)?.extend(items)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Globals, persistent storages, REDUCE and BUILD. False: not one of these opcodes.
    fn object_op(&mut self, op: u8) -> Result<bool> {
        match op {
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.stack.push(Value::Global(global(&module, &name)?))
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => {
                        self.stack.push(Value::Global(global(&m, &n)?))
                    }
                    _ => bail!("malformed pickle: STACK_GLOBAL without names"),
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                self.stack.push(Value::Storage(persistent_storage(pid)?))
            }
            b'R' => {
                let args = self.pop()?;
                let func = self.pop()?;
                self.stack.push(reduce(func, args)?)
            }
            b'b' => {
                // BUILD: an OrderedDict's attributes (`_metadata`); nothing to keep.
                self.pop()?;
                self.top()?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn long(b: Vec<u8>) -> Value {
    if b.len() <= 8 {
        let neg = b.last().is_some_and(|&x| x & 0x80 != 0);
        let mut buf = [if neg { 0xff } else { 0 }; 8];
        buf[..b.len()].copy_from_slice(&b);
        Value::Int(i64::from_le_bytes(buf))
    } else {
        Value::Long(b)
    }
}

fn dict_of(v: &mut Value) -> Result<&mut Vec<(Value, Value)>> {
    match v {
        Value::Dict(d) => Ok(d),
        _ => bail!("malformed pickle: SETITEM on something that is not a dict"),
    }
}

fn list_of(v: &mut Value) -> Result<&mut Vec<Value>> {
    match v {
        Value::List(l) => Ok(l),
        _ => bail!("malformed pickle: APPEND on something that is not a list"),
    }
}

fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => bail!("expected an integer in a tensor record, found {other:?}"),
    }
}

fn ints(v: &Value) -> Result<Vec<i64>> {
    match v {
        Value::Tuple(items) | Value::List(items) => items.iter().map(int).collect(),
        other => bail!("expected a tuple of integers in a tensor record, found {other:?}"),
    }
}

/// `('storage', torch.FloatStorage, key, location, numel[, view])`.
fn persistent_storage(pid: Value) -> Result<StorageRef> {
    let Value::Tuple(t) = pid else {
        bail!("unsupported persistent id (not a storage)");
    };
    match t.as_slice() {
        [Value::Str(tag), Value::Global(Global::Storage(kind)), key, _location, numel, ..]
            if tag == "storage" =>
        {
            let key = match key {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                _ => bail!("unsupported storage key {key:?}"),
            };
            Ok(StorageRef {
                kind: *kind,
                key,
                numel: u64::try_from(int(numel)?)?,
            })
        }
        _ => bail!("unsupported persistent id (not a tensor storage)"),
    }
}

fn reduce(func: Value, args: Value) -> Result<Value> {
    let Value::Tuple(args) = args else {
        bail!("malformed pickle: REDUCE without an argument tuple");
    };
    match func {
        Value::Global(Global::OrderedDict) if args.is_empty() => Ok(Value::Dict(Vec::new())),
        Value::Global(Global::RebuildTensor) => match args.as_slice() {
            [Value::Storage(s), offset, size, stride, ..] => Ok(Value::Tensor(TensorRef {
                storage: s.clone(),
                offset: int(offset)?,
                size: ints(size)?,
                stride: ints(stride)?,
            })),
            _ => bail!("malformed tensor record"),
        },
        other => bail!("refusing to call {other:?} while reading a state dict"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_globals_outside_a_state_dict() {
        // pickle.dumps of os.system('true'), protocol 2: GLOBAL 'posix system' ...
        let evil = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.";
        let err = read(evil).unwrap_err().to_string();
        assert!(
            err.contains("refusing the pickle global posix.system"),
            "{err}"
        );
        let builtins = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93.";
        let err = read(builtins).unwrap_err().to_string();
        assert!(err.contains("builtins.eval"), "{err}");
    }

    #[test]
    fn reads_plain_values_and_refuses_unknown_opcodes() {
        // pickle.dumps({'a': [1, 2.5, None, True], 'b': (300, -2)}, protocol=2)
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00N\x88eX\x01\x00\x00\x00bq\x03M,\x01J\xfe\xff\xff\xff\x86q\x04u.";
        let (v, n) = read(p).unwrap();
        assert_eq!(n, p.len());
        let Value::Dict(d) = v else { panic!() };
        assert_eq!(d[0].0, Value::Str("a".into()));
        assert_eq!(
            d[0].1,
            Value::List(vec![
                Value::Int(1),
                Value::Float(2.5),
                Value::None,
                Value::Bool(true)
            ])
        );
        assert_eq!(d[1].1, Value::Tuple(vec![Value::Int(300), Value::Int(-2)]));
        assert!(read(b"\x80\x02\x81.").is_err()); // NEWOBJ
        assert!(read(b"\x80\x02}q\x00").is_err()); // no STOP: truncated
    }
}
