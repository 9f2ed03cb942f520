//! `tf.train.Example` as protobuf, by hand (three small messages).

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    Bytes(Vec<Vec<u8>>),
    Float(Vec<f32>),
    Int64(Vec<i64>),
}

/// Features by name; a `BTreeMap` so encoding is in key order (deterministic).
pub type Example = BTreeMap<String, Feature>;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("bad Example protobuf at byte {offset}: {message}")]
pub struct ExampleError {
    pub offset: usize,
    pub message: String,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_len_delimited(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn encode_feature(f: &Feature) -> Vec<u8> {
    let mut list = Vec::new();
    let tag = match f {
        Feature::Bytes(vs) => {
            for v in vs {
                put_len_delimited(&mut list, 0x0A, v);
            }
            0x0A
        }
        Feature::Float(vs) => {
            if !vs.is_empty() {
                let mut packed = Vec::with_capacity(vs.len() * 4);
                for v in vs {
                    packed.extend_from_slice(&v.to_le_bytes());
                }
                put_len_delimited(&mut list, 0x0A, &packed);
            }
            0x12
        }
        Feature::Int64(vs) => {
            if !vs.is_empty() {
                let mut packed = Vec::with_capacity(vs.iter().map(|&v| varint_len(v as u64)).sum());
                for &v in vs {
                    put_varint(&mut packed, v as u64);
                }
                put_len_delimited(&mut list, 0x0A, &packed);
            }
            0x1A
        }
    };
    let mut feature = Vec::with_capacity(list.len() + 6);
    put_len_delimited(&mut feature, tag, &list);
    feature
}

/// Serialises an Example (features in key order).
pub fn encode_example(ex: &Example, out: &mut Vec<u8>) {
    let mut features = Vec::new();
    for (k, f) in ex {
        let fb = encode_feature(f);
        let mut entry = Vec::with_capacity(k.len() + fb.len() + 8);
        put_len_delimited(&mut entry, 0x0A, k.as_bytes());
        put_len_delimited(&mut entry, 0x12, &fb);
        put_len_delimited(&mut features, 0x0A, &entry);
    }
    put_len_delimited(out, 0x0A, &features);
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, message: impl Into<String>) -> ExampleError {
        ExampleError {
            offset: self.base + self.pos,
            message: message.into(),
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn varint(&mut self) -> Result<u64, ExampleError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .data
                .get(self.pos)
                .ok_or_else(|| self.err("truncated varint"))?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint too long"))
    }

    fn bytes(&mut self) -> Result<Cursor<'a>, ExampleError> {
        let len = self.varint()? as usize;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.err("length past the end"))?;
        let c = Cursor {
            data: &self.data[self.pos..end],
            pos: 0,
            base: self.base + self.pos,
        };
        self.pos = end;
        Ok(c)
    }

    /// Skips a field of the given wire type.
    fn skip(&mut self, wire: u64) -> Result<(), ExampleError> {
        match wire {
            0 => {
                self.varint()?;
            }
            1 => self.pos += 8,
            2 => {
                self.bytes()?;
            }
            5 => self.pos += 4,
            w => return Err(self.err(format!("unsupported wire type {w}"))),
        }
        if self.pos > self.data.len() {
            return Err(self.err("field past the end"));
        }
        Ok(())
    }
}

fn decode_feature(mut c: Cursor) -> Result<Feature, ExampleError> {
    let mut feature = None;
    while !c.done() {
        let key = c.varint()?;
        let (field, wire) = (key >> 3, key & 7);
        if wire != 2 || !(1..=3).contains(&field) {
            c.skip(wire)?;
            continue;
        }
        let mut list = c.bytes()?;
        let mut f = match field {
            1 => Feature::Bytes(Vec::new()),
            2 => Feature::Float(Vec::new()),
            _ => Feature::Int64(Vec::new()),
        };
        while !list.done() {
            let k = list.varint()?;
            match (&mut f, k >> 3, k & 7) {
                (Feature::Bytes(v), 1, 2) => v.push(list.bytes()?.data.to_vec()),
                (Feature::Float(v), 1, 2) => {
                    let p = list.bytes()?;
                    if p.data.len() % 4 != 0 {
                        return Err(p.err("packed floats not a multiple of 4 bytes"));
                    }
                    v.extend(
                        p.data
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes(b.try_into().unwrap())),
                    );
                }
                (Feature::Float(v), 1, 5) => {
                    let b = list
                        .data
                        .get(list.pos..list.pos + 4)
                        .ok_or_else(|| list.err("truncated float"))?;
                    v.push(f32::from_le_bytes(b.try_into().unwrap()));
                    list.pos += 4;
                }
                (Feature::Int64(v), 1, 2) => {
                    let mut p = list.bytes()?;
                    while !p.done() {
                        v.push(p.varint()? as i64);
                    }
                }
                (Feature::Int64(v), 1, 0) => v.push(list.varint()? as i64),
                (_, _, w) => list.skip(w)?,
            }
        }
        feature = Some(f);
    }
    feature.ok_or_else(|| c.err("feature with no list"))
}

/// Parses a serialised Example.
pub fn decode_example(data: &[u8]) -> Result<Example, ExampleError> {
    let mut ex = Example::new();
    let mut top = Cursor {
        data,
        pos: 0,
        base: 0,
    };
    while !top.done() {
        let key = top.varint()?;
        if key != 0x0A {
            top.skip(key & 7)?;
            continue;
        }
        let mut features = top.bytes()?;
        while !features.done() {
            let key = features.varint()?;
            if key != 0x0A {
                features.skip(key & 7)?;
                continue;
            }
            let mut entry = features.bytes()?;
            let (mut name, mut value) = (None, None);
            while !entry.done() {
                let k = entry.varint()?;
                match k {
                    0x0A => {
                        let b = entry.bytes()?;
                        name = Some(
                            String::from_utf8(b.data.to_vec())
                                .map_err(|_| b.err("feature name is not UTF-8"))?,
                        );
                    }
                    0x12 => value = Some(decode_feature(entry.bytes()?)?),
                    _ => entry.skip(k & 7)?,
                }
            }
            let name = name.ok_or_else(|| entry.err("map entry without a key"))?;
            ex.insert(name, value.unwrap_or(Feature::Bytes(Vec::new())));
        }
    }
    Ok(ex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Example {
        let mut ex = Example::new();
        ex.insert(
            "image/encoded".into(),
            Feature::Bytes(vec![vec![0xff, 0xd8, 0xff], vec![]]),
        );
        ex.insert("image/height".into(), Feature::Int64(vec![480]));
        ex.insert("label".into(), Feature::Int64(vec![-1, 0, 300_000_000_000]));
        ex.insert("score".into(), Feature::Float(vec![0.5, -2.25]));
        ex.insert("empty".into(), Feature::Float(vec![]));
        ex
    }

    #[test]
    fn roundtrip_is_exact_and_deterministic() {
        let ex = sample();
        let mut a = Vec::new();
        encode_example(&ex, &mut a);
        let mut b = Vec::new();
        encode_example(&ex.clone().into_iter().rev().collect(), &mut b);
        assert_eq!(a, b);
        assert_eq!(decode_example(&a).unwrap(), ex);
    }

    #[test]
    fn known_bytes_for_a_tiny_example() {
        // {"a": int64_list [1]} as TensorFlow serialises it.
        let mut ex = Example::new();
        ex.insert("a".into(), Feature::Int64(vec![1]));
        let mut out = Vec::new();
        encode_example(&ex, &mut out);
        assert_eq!(
            out,
            vec![
                0x0A, 0x0C, 0x0A, 0x0A, 0x0A, 0x01, b'a', 0x12, 0x05, 0x1A, 0x03, 0x0A, 0x01, 0x01
            ]
        );
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut a = Vec::new();
        encode_example(&sample(), &mut a);
        for cut in 0..a.len() {
            let _ = decode_example(&a[..cut]);
        }
        assert!(decode_example(&a[..a.len() - 3]).is_err());
    }
}
