//! A reader for PyTorch's `torch.save` checkpoints (the zip format of PyTorch >= 1.6): the state
//! dict's tensors, re-encoded as safetensors bytes so [`crate::weights`] checks and applies them
//! exactly as it does a safetensors file.
//!
//! What it reads: a zip of stored (uncompressed) entries, `<name>/data.pkl` (a pickle, protocol
//! 2 to 5) and one `<name>/data/<key>` per storage. The pickle is run on a small machine that
//! knows the opcodes `torch.save` emits and three callables: `torch._utils._rebuild_tensor_v2`
//! (a view of a storage: offset, size, stride), `torch._utils._rebuild_parameter` and
//! `collections.OrderedDict`; storages are persistent ids `('storage', torch.<Type>Storage, key,
//! location, numel)`. The checkpoint is the state dict itself or a dict holding it under
//! `state_dict` or `model`. Anything else (legacy non-zip files, quantised tensors, arbitrary
//! objects) is refused with the reason.
//!
//! Written here instead of enabling burn-store's `pytorch` feature, which pulls `zip` 8 with its C
//! compression libraries and rebuilds burn with other features.

use std::collections::HashMap;

/// One tensor: name, safetensors dtype, shape, little-endian contiguous bytes.
pub(crate) struct RawTensor {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// The stored entries of a zip archive, by name.
fn zip_entries(bytes: &[u8]) -> Result<HashMap<String, &[u8]>, String> {
    let u16_at = |o: usize| -> Result<usize, String> {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| format!("zip: truncated at byte {o}"))
    };
    let u32_at = |o: usize| -> Result<usize, String> {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| format!("zip: truncated at byte {o}"))
    };
    // The end-of-central-directory record: 22 bytes plus a comment of up to 65535.
    let min = bytes.len().saturating_sub(22 + 65535);
    let eocd = (min..bytes.len().saturating_sub(21))
        .rev()
        .find(|&o| bytes[o..o + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or("not a zip archive (a legacy PyTorch file, or not PyTorch at all): no end of central directory")?;
    let count = u16_at(eocd + 10)?;
    let mut at = u32_at(eocd + 16)?;
    if count == 0xffff || at == 0xffff_ffff {
        return Err("zip64 archives (checkpoints over 4 GB) are not read".into());
    }
    let mut out = HashMap::new();
    for _ in 0..count {
        if u32_at(at)? != 0x0201_4b50 {
            return Err(format!("zip: bad central directory entry at byte {at}"));
        }
        let method = u16_at(at + 10)?;
        let size = u32_at(at + 20)?;
        let (n, e, c) = (u16_at(at + 28)?, u16_at(at + 30)?, u16_at(at + 32)?);
        let local = u32_at(at + 42)?;
        let name = bytes
            .get(at + 46..at + 46 + n)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or("zip: truncated entry name")?;
        if method != 0 {
            return Err(format!(
                "zip entry `{name}` is compressed (method {method}); torch.save stores entries"
            ));
        }
        if u32_at(local)? != 0x0403_4b50 {
            return Err(format!("zip: bad local header for `{name}`"));
        }
        let start = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = bytes
            .get(start..start + size)
            .ok_or_else(|| format!("zip: entry `{name}` runs past the end of the file"))?;
        out.insert(name, data);
        at += 46 + n + e + c;
    }
    Ok(out)
}

/// A value on the pickle machine's stack.
#[derive(Clone, Debug)]
enum V {
    None,
    /// A bool or a float (read, never needed).
    Scalar,
    Int(i64),
    Str(String),
    Tuple(Vec<V>),
    List(Vec<V>),
    Dict(Vec<(V, V)>),
    Global(String),
    Storage {
        key: String,
        dtype: &'static str,
    },
    Tensor(Box<TensorRef>),
    Mark,
    /// An object this reader does not model.
    Other,
}

#[derive(Clone, Debug)]
struct TensorRef {
    key: String,
    dtype: &'static str,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

/// `(safetensors dtype, element size)` of a `torch.<Type>Storage`.
fn storage_dtype(name: &str) -> Option<(&'static str, usize)> {
    Some(match name.rsplit('.').next()? {
        "FloatStorage" => ("F32", 4),
        "DoubleStorage" => ("F64", 8),
        "HalfStorage" => ("F16", 2),
        "BFloat16Storage" => ("BF16", 2),
        "LongStorage" => ("I64", 8),
        "IntStorage" => ("I32", 4),
        "ShortStorage" => ("I16", 2),
        "CharStorage" => ("I8", 1),
        "ByteStorage" => ("U8", 1),
        "BoolStorage" => ("BOOL", 1),
        _ => return None,
    })
}

fn elem_size(dtype: &str) -> usize {
    match dtype {
        "F64" | "I64" => 8,
        "F32" | "I32" => 4,
        "F16" | "BF16" | "I16" => 2,
        _ => 1,
    }
}

fn ints(v: &V) -> Option<Vec<usize>> {
    match v {
        V::Tuple(items) | V::List(items) => items
            .iter()
            .map(|i| match i {
                V::Int(n) => usize::try_from(*n).ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Runs the pickle; returns the top-level object.
fn unpickle(p: &[u8]) -> Result<V, String> {
    let mut stack: Vec<V> = Vec::new();
    let mut memo: HashMap<usize, V> = HashMap::new();
    let mut i = 0;
    let take = |i: &mut usize, n: usize| -> Result<&[u8], String> {
        let s = p
            .get(*i..*i + n)
            .ok_or_else(|| format!("pickle truncated at byte {i}"))?;
        *i += n;
        Ok(s)
    };
    fn pop(stack: &mut Vec<V>, at: usize) -> Result<V, String> {
        stack
            .pop()
            .ok_or_else(|| format!("pickle stack underflow at byte {at}"))
    }
    fn pop_mark(stack: &mut Vec<V>, at: usize) -> Result<Vec<V>, String> {
        let m = stack
            .iter()
            .rposition(|v| matches!(v, V::Mark))
            .ok_or_else(|| format!("pickle: no mark at byte {at}"))?;
        let items = stack.split_off(m + 1);
        stack.pop();
        Ok(items)
    }
    loop {
        let at = i;
        let op = take(&mut i, 1)?[0];
        match op {
            0x80 => {
                take(&mut i, 1)?;
            }
            0x95 => {
                take(&mut i, 8)?;
            }
            b'.' => return pop(&mut stack, at),
            b'}' => stack.push(V::Dict(Vec::new())),
            b']' => stack.push(V::List(Vec::new())),
            b')' => stack.push(V::Tuple(Vec::new())),
            b'(' => stack.push(V::Mark),
            b'N' => stack.push(V::None),
            0x88 | 0x89 => stack.push(V::Scalar),
            b'K' => stack.push(V::Int(i64::from(take(&mut i, 1)?[0]))),
            b'M' => {
                let b = take(&mut i, 2)?;
                stack.push(V::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))));
            }
            b'J' => {
                let b = take(&mut i, 4)?;
                stack.push(V::Int(i64::from(i32::from_le_bytes([
                    b[0], b[1], b[2], b[3],
                ]))));
            }
            0x8a => {
                let n = take(&mut i, 1)?[0] as usize;
                let b = take(&mut i, n)?;
                if n > 8 {
                    return Err(format!("pickle: integer of {n} bytes at byte {at}"));
                }
                let mut v: i64 = 0;
                for (k, byte) in b.iter().enumerate() {
                    v |= i64::from(*byte) << (8 * k);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(V::Int(v));
            }
            b'G' => {
                take(&mut i, 8)?;
                stack.push(V::Scalar);
            }
            b'X' | 0x8c | 0x8d => {
                let n = match op {
                    0x8c => take(&mut i, 1)?[0] as usize,
                    b'X' => {
                        let b = take(&mut i, 4)?;
                        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
                    }
                    _ => {
                        let b = take(&mut i, 8)?;
                        let mut a = [0u8; 8];
                        a.copy_from_slice(b);
                        usize::try_from(u64::from_le_bytes(a)).map_err(|e| e.to_string())?
                    }
                };
                let s = String::from_utf8_lossy(take(&mut i, n)?).into_owned();
                stack.push(V::Str(s));
            }
            b'c' => {
                let rest = &p[i..];
                let mut lines = rest.splitn(3, |b| *b == b'\n');
                let module = lines.next().unwrap_or_default();
                let name = lines.next().unwrap_or_default();
                i += module.len() + name.len() + 2;
                stack.push(V::Global(format!(
                    "{}.{}",
                    String::from_utf8_lossy(module),
                    String::from_utf8_lossy(name)
                )));
            }
            0x93 => {
                let name = pop(&mut stack, at)?;
                let module = pop(&mut stack, at)?;
                match (module, name) {
                    (V::Str(m), V::Str(n)) => stack.push(V::Global(format!("{m}.{n}"))),
                    _ => return Err(format!("pickle: STACK_GLOBAL of non-strings at byte {at}")),
                }
            }
            b'q' | b'r' | 0x94 => {
                let key = match op {
                    b'q' => take(&mut i, 1)?[0] as usize,
                    b'r' => {
                        let b = take(&mut i, 4)?;
                        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
                    }
                    _ => memo.len(),
                };
                let top = stack
                    .last()
                    .cloned()
                    .ok_or_else(|| format!("pickle: memo of an empty stack at byte {at}"))?;
                memo.insert(key, top);
            }
            b'h' | b'j' => {
                let key = if op == b'h' {
                    take(&mut i, 1)?[0] as usize
                } else {
                    let b = take(&mut i, 4)?;
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
                };
                let v = memo
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| format!("pickle: memo {key} unset at byte {at}"))?;
                stack.push(v);
            }
            b't' => {
                let items = pop_mark(&mut stack, at)?;
                stack.push(V::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err(format!("pickle stack underflow at byte {at}"));
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(V::Tuple(items));
            }
            b'a' => {
                let v = pop(&mut stack, at)?;
                if let Some(V::List(l)) = stack.last_mut() {
                    l.push(v);
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack, at)?;
                if let Some(V::List(l)) = stack.last_mut() {
                    l.extend(items);
                }
            }
            b's' => {
                let v = pop(&mut stack, at)?;
                let k = pop(&mut stack, at)?;
                if let Some(V::Dict(d)) = stack.last_mut() {
                    d.push((k, v));
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack, at)?;
                if let Some(V::Dict(d)) = stack.last_mut() {
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
            }
            b'b' => {
                // BUILD: the state of an object (e.g. a state dict's `_metadata`); not needed.
                pop(&mut stack, at)?;
            }
            0x81 => {
                pop(&mut stack, at)?;
                pop(&mut stack, at)?;
                stack.push(V::Other);
            }
            b'Q' => {
                let pid = pop(&mut stack, at)?;
                let storage = match &pid {
                    V::Tuple(t) if t.len() >= 3 => match (&t[0], &t[1], &t[2]) {
                        (V::Str(kind), V::Global(ty), V::Str(key)) if kind == "storage" => {
                            storage_dtype(ty).map(|(dtype, _)| V::Storage {
                                key: key.clone(),
                                dtype,
                            })
                        }
                        _ => None,
                    },
                    _ => None,
                };
                stack.push(storage.ok_or_else(|| {
                    format!("pickle: unsupported persistent id {pid:?} at byte {at}")
                })?);
            }
            b'R' => {
                let args = pop(&mut stack, at)?;
                let callable = pop(&mut stack, at)?;
                let V::Tuple(args) = args else {
                    return Err(format!(
                        "pickle: REDUCE without an argument tuple at byte {at}"
                    ));
                };
                let v = match &callable {
                    V::Global(g) if g == "torch._utils._rebuild_tensor_v2" => {
                        match (
                            args.first(),
                            args.get(1),
                            args.get(2).and_then(ints),
                            args.get(3).and_then(ints),
                        ) {
                            (
                                Some(V::Storage { key, dtype }),
                                Some(V::Int(offset)),
                                Some(size),
                                Some(stride),
                            ) => V::Tensor(Box::new(TensorRef {
                                key: key.clone(),
                                dtype,
                                offset: usize::try_from(*offset).map_err(|e| e.to_string())?,
                                size,
                                stride,
                            })),
                            _ => {
                                return Err(format!(
                                    "pickle: unexpected _rebuild_tensor_v2 arguments at byte {at}"
                                ))
                            }
                        }
                    }
                    V::Global(g) if g == "torch._utils._rebuild_parameter" => {
                        args.into_iter().next().unwrap_or(V::None)
                    }
                    V::Global(g) if g == "collections.OrderedDict" => V::Dict(Vec::new()),
                    _ => V::Other,
                };
                stack.push(v);
            }
            _ => {
                return Err(format!(
                    "pickle: unsupported opcode 0x{op:02x} at byte {at}"
                ))
            }
        }
    }
}

/// The state dict's tensors of a `torch.save` checkpoint.
pub(crate) fn read(bytes: &[u8]) -> Result<Vec<RawTensor>, String> {
    let entries = zip_entries(bytes)?;
    let (pkl_name, pkl) = entries
        .iter()
        .find(|(k, _)| k.ends_with("data.pkl"))
        .ok_or("no `data.pkl` in the archive")?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut top = unpickle(pkl)?;
    // A training checkpoint holds the state dict under a key.
    if let V::Dict(items) = &top {
        if let Some((_, inner)) = items.iter().find(|(k, v)| {
            matches!(k, V::Str(s) if s == "state_dict" || s == "model") && matches!(v, V::Dict(_))
        }) {
            top = inner.clone();
        }
    }
    let V::Dict(items) = top else {
        return Err("the checkpoint is not a state dict (a dict of tensors)".into());
    };
    let mut out = Vec::new();
    for (k, v) in items {
        let (V::Str(name), V::Tensor(t)) = (k, v) else {
            // Non-tensor entries (e.g. an epoch counter beside nothing else) are skipped.
            continue;
        };
        let storage = entries
            .get(&format!("{prefix}data/{}", t.key))
            .ok_or_else(|| format!("tensor `{name}`: storage `data/{}` is missing", t.key))?;
        let es = elem_size(t.dtype);
        let numel: usize = t.size.iter().product();
        // Row-major strides of `size`: a contiguous view is one slice of its storage.
        let mut contiguous = vec![1usize; t.size.len()];
        for d in (0..t.size.len().saturating_sub(1)).rev() {
            contiguous[d] = contiguous[d + 1] * t.size[d + 1];
        }
        if numel > 0 && (t.stride == contiguous || numel == 1) {
            let data = storage
                .get(t.offset * es..(t.offset + numel) * es)
                .ok_or_else(|| format!("tensor `{name}`: its view runs past its storage"))?
                .to_vec();
            out.push(RawTensor {
                name,
                dtype: t.dtype,
                shape: t.size.clone(),
                data,
            });
            continue;
        }
        let mut data = Vec::with_capacity(numel * es);
        let mut idx = vec![0usize; t.size.len()];
        for _ in 0..numel {
            let off = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
            let bytes = storage
                .get(off * es..(off + 1) * es)
                .ok_or_else(|| format!("tensor `{name}`: its view runs past its storage"))?;
            data.extend_from_slice(bytes);
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < t.size[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        out.push(RawTensor {
            name,
            dtype: t.dtype,
            shape: t.size.clone(),
            data,
        });
    }
    Ok(out)
}

/// The tensors as a safetensors file's bytes.
pub(crate) fn to_safetensors(tensors: &[RawTensor]) -> Result<Vec<u8>, String> {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for t in tensors {
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.data.len()]}),
        );
        offset += t.data.len();
    }
    let mut json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    for t in tensors {
        out.extend_from_slice(&t.data);
    }
    Ok(out)
}
