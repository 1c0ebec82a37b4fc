//! Downloaded bundle files stay in JS memory (a `Uint8Array`); Rust reads them through
//! [`JsReader`], which copies only the range asked for into wasm memory. wasm linear memory
//! never shrinks, so a model file copied in whole would keep the worker at about twice the
//! model's size for its whole life; this way it holds the quantized weights and little else.

use js_sys::Uint8Array;
use std::io::{Read, Seek, SeekFrom};

/// A growable byte buffer in JS memory, for a download whose size is only a hint.
pub struct JsBuffer {
    bytes: Uint8Array,
    len: u32,
}

impl JsBuffer {
    pub fn with_capacity(capacity: u32) -> Self {
        JsBuffer { bytes: Uint8Array::new_with_length(capacity), len: 0 }
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn push(&mut self, chunk: &Uint8Array) {
        let needed = self.len + chunk.length();
        if needed > self.bytes.length() {
            let grown = Uint8Array::new_with_length(needed.max(self.bytes.length().saturating_mul(2)));
            grown.set(&self.bytes.subarray(0, self.len), 0);
            self.bytes = grown;
        }
        self.bytes.set(chunk, self.len);
        self.len = needed;
    }

    /// The bytes received, without copying.
    pub fn finish(self) -> Uint8Array {
        self.bytes.subarray(0, self.len)
    }
}

/// `Read + Seek` over a `Uint8Array`.
pub struct JsReader {
    bytes: Uint8Array,
    pos: u64,
}

impl JsReader {
    pub fn new(bytes: &Uint8Array) -> Self {
        JsReader { bytes: bytes.clone(), pos: 0 }
    }
}

impl Read for JsReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let len = self.bytes.length() as u64;
        let start = self.pos.min(len);
        let n = (len - start).min(out.len() as u64);
        if n > 0 {
            self.bytes.subarray(start as u32, (start + n) as u32).copy_to(&mut out[..n as usize]);
        }
        self.pos = start + n;
        Ok(n as usize)
    }
}

impl Seek for JsReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let len = self.bytes.length() as i128;
        let pos = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => len + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if pos < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"));
        }
        self.pos = pos as u64;
        Ok(self.pos)
    }
}
