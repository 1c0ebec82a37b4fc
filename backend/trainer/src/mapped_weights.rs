//! A bundle's `model.gguf` used in place through a read-only memory map, so a native predictor
//! holds each weight once.
//!
//! Why: every quantized matrix gets repacked for a fast kernel — q8_0 by our own AVX2 kernel
//! (`kernels::x86::q8_0`) when it is built, q4k by candle (AVX2 or better) into its tile
//! layout on first use — and the copy it was built from was kept next to it, so weights read
//! into memory were held twice (predict peaked at 1.9× the q8_0 bundle, 2.2× the q4k one). Here
//! the original blocks are views into the file: each matrix is packed as soon as it is built and
//! its pages are handed back to the kernel. Anything that reads the blocks again
//! (a machine or batch size candle does not pack for) faults them back in from the file, so
//! results never depend on whether a page was dropped. The word-embedding table's rows are read
//! from the file as they are looked up (`pread`), never through the map.
//!
//! The browser has no repacking and no files; it reads the same file with
//! `model::gguf::GgufWeights`.

use candle_core::quantized::k_quants::{self, BlockQ4K, BlockQ5_0, BlockQ8_0, GgmlType};
use candle_core::quantized::{gguf_file, GgmlDType, QStorage, QTensor, QuantizedType};
use candle_core::{CpuStorage, DType, Device, Module, Tensor};
use memmap2::{Mmap, UncheckedAdvice};
use model::gguf::{rotations, GgufError};
use model::layers::{Embedding, Linear};
use model::weights::expected_shapes;
use model::{ModelError, WeightSource, WeightsError};
use shared::config::ModelConfig;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::marker::PhantomData;
use std::sync::Arc;

/// Weights of one `model.gguf`, handed out tensor by tensor to `Classifier::new`.
pub struct MappedWeights {
    map: Arc<Mmap>,
    /// The same file, for reading embedding rows (`MappedBlocks::rows`).
    file: Arc<File>,
    content: gguf_file::Content,
    shapes: BTreeMap<String, Vec<usize>>,
    rotations: HashMap<String, usize>,
    device: Device,
}

impl MappedWeights {
    /// Maps `file` (already checked against the manifest) and reads its tensor directory.
    pub fn open(file: &std::fs::File, config: &ModelConfig) -> Result<Self, ModelError> {
        // SAFETY: a bundle's files are written once and never modified in place (a new version
        // is a new bundle), and the map is read-only; the file changing underneath would be
        // the same kind of corruption as a damaged download, not something this code causes.
        let map = unsafe { Mmap::map(file) }.map_err(|e| GgufError::Read(e.into()))?;
        let file = Arc::new(file.try_clone().map_err(|e| GgufError::Read(e.into()))?);
        let content = gguf_file::Content::read(&mut std::io::Cursor::new(&map[..])).map_err(GgufError::Read)?;
        let shapes = expected_shapes(config);
        let rotations = rotations(&content)?;
        for (name, want) in &shapes {
            let info = content.tensor_infos.get(name).ok_or_else(|| GgufError::Missing(name.clone()))?;
            if info.shape.dims() != want.as_slice() {
                let got = info.shape.dims().to_vec();
                return Err(GgufError::Shape { name: name.clone(), got, want: want.clone() }.into());
            }
        }
        Ok(MappedWeights { map: Arc::new(map), file, content, shapes, rotations, device: Device::Cpu })
    }

    /// The tensor as a view into the map when its type has one here, else copied (f32/f16
    /// tensors, which the model converts to float tensors anyway); and its bytes' range.
    /// `rows_from_file`: embedding lookups read their rows from the file instead of the map.
    fn qtensor(&self, name: &str, rows_from_file: bool) -> Result<(QTensor, (usize, usize)), ModelError> {
        if !self.shapes.contains_key(name) {
            return Err(WeightsError::Missing(name.to_string()).into());
        }
        let info = &self.content.tensor_infos[name];
        let dims = info.shape.dims().to_vec();
        let dtype = info.ggml_dtype;
        let bytes = info.shape.elem_count() / dtype.block_size() * dtype.type_size();
        let start = (self.content.tensor_data_offset + info.offset) as usize;
        let file = rows_from_file.then(|| self.file.clone());
        let view = match dtype {
            GgmlDType::Q8_0 => MappedBlocks::<BlockQ8_0>::storage(&self.map, start, bytes, file),
            GgmlDType::Q4K => MappedBlocks::<BlockQ4K>::storage(&self.map, start, bytes, file),
            GgmlDType::Q5_0 => MappedBlocks::<BlockQ5_0>::storage(&self.map, start, bytes, file),
            _ => None,
        };
        match view {
            Some(storage) => Ok((QTensor::new(storage, dims)?, (start, bytes))),
            None => {
                let mut reader = std::io::Cursor::new(&self.map[..]);
                let t = self.content.tensor(&mut reader, name, &self.device).map_err(GgufError::Read)?;
                Ok((t, (start, bytes)))
            }
        }
    }

    /// Drops the resident pages around a byte range; a later read faults them in from the file.
    /// Widened to whole 2 MiB blocks: the page cache may map the file in huge pages, which a
    /// smaller range leaves in place.
    fn release(&self, (start, len): (usize, usize)) {
        const HUGE_PAGE: usize = 2 << 20;
        let from = start / HUGE_PAGE * HUGE_PAGE;
        let to = (start + len).next_multiple_of(HUGE_PAGE).min(self.map.len());
        // SAFETY: the map is a read-only view of a file, never written, so dropped pages read
        // back exactly as they were. Failure only leaves the pages resident.
        let _ = unsafe { self.map.unchecked_advise_range(UncheckedAdvice::DontNeed, from, to - from) };
    }
}

impl WeightSource for MappedWeights {
    fn tensor(&mut self, name: &str) -> Result<Tensor, ModelError> {
        let (t, range) = self.qtensor(name, false)?;
        let t = t.dequantize(&self.device)?;
        self.release(range);
        Ok(match self.rotations.get(name) {
            Some(&block) => kernels::rotation::rotate_rows(&t, block)?,
            None => t,
        })
    }

    fn linear(&mut self, prefix: &str) -> Result<Linear, ModelError> {
        let name = format!("{prefix}.weight");
        let (weight, range) = self.qtensor(&name, false)?;
        let k = weight.shape().dims()[1];
        let rotation = self.rotations.get(&name).copied();
        let linear = Linear::quantized(weight, self.tensor(&format!("{prefix}.bias"))?, rotation)?;
        // One product makes candle pack the matrix now (where `Linear::quantized` left it to
        // candle), while its pages are resident, rather than at the first real call with every
        // matrix resident at once.
        linear.forward(&Tensor::zeros((1, k), DType::F32, &self.device)?)?;
        self.release(range);
        Ok(linear)
    }

    fn embedding(&mut self, name: &str) -> Result<Embedding, ModelError> {
        let (table, range) = self.qtensor(name, true)?;
        if matches!(table.dtype(), GgmlDType::F32 | GgmlDType::F16) {
            let table = table.dequantize(&self.device)?;
            self.release(range);
            return Ok(Embedding::Float(table));
        }
        // Stays quantized, and its rows are read from the file as texts look them up. Through
        // the map, each lookup made its page and, by the kernel's fault-around, up to 15
        // neighbouring ones part of this process: `predict` on 256 tweets held 31 MB of the
        // file against 10 MB read this way. Read rows stay in the page cache, not in the process.
        self.release(range);
        Ok(Embedding::Quantized(table))
    }

    fn differentiable(&self) -> bool {
        false
    }
}

/// Quantized blocks read in place from the map.
struct MappedBlocks<T> {
    map: Arc<Mmap>,
    start: usize,
    len: usize,
    /// When set, `embedding` reads its rows from this file (the map's) instead of the map.
    rows: Option<Arc<File>>,
    block: PhantomData<T>,
}

impl<T: GgmlType + 'static> MappedBlocks<T> {
    /// None when the bytes are out of bounds or misaligned for `T` (the caller then copies).
    fn storage(map: &Arc<Mmap>, start: usize, bytes: usize, rows: Option<Arc<File>>) -> Option<QStorage> {
        let size = std::mem::size_of::<T>();
        let in_bounds = start.checked_add(bytes).is_some_and(|end| end <= map.len());
        let aligned = (map.as_ptr() as usize + start).is_multiple_of(std::mem::align_of::<T>());
        if !in_bounds || !aligned || !bytes.is_multiple_of(size) {
            return None;
        }
        let blocks = MappedBlocks::<T> { map: map.clone(), start, len: bytes / size, rows, block: PhantomData };
        Some(QStorage::Cpu(Box::new(blocks)))
    }

    fn blocks(&self) -> &[T] {
        // SAFETY: bounds and alignment were checked in `storage`; GGML blocks are plain integers
        // and f16 values, valid for any bit pattern; the map lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(self.start).cast::<T>(), self.len) }
    }
}

impl<T: GgmlType> MappedBlocks<T> {
    /// Blocks `range` of this tensor read from `file` into `buf`.
    fn read_blocks(&self, file: &File, range: std::ops::Range<usize>, buf: &mut Vec<T>) -> candle_core::Result<()> {
        buf.clear();
        buf.resize_with(range.len(), T::zeros);
        let size = std::mem::size_of::<T>();
        // SAFETY: GGML blocks are plain integers and f16 values, valid for any bit pattern.
        let bytes = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), buf.len() * size) };
        read_exact_at(file, bytes, (self.start + range.start * size) as u64)?;
        Ok(())
    }
}

/// Fills `buf` from `offset` in `file` without moving a shared cursor.
#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

impl<T: GgmlType + 'static> QuantizedType for MappedBlocks<T> {
    fn dtype(&self) -> GgmlDType {
        T::DTYPE
    }

    fn matmul_t(&self, mkn: (usize, usize, usize), lhs: &[f32], dst: &mut [f32]) -> candle_core::Result<()> {
        k_quants::matmul(mkn, lhs, self.blocks(), dst)
    }

    fn matmul_t_f16(
        &self,
        mkn: (usize, usize, usize),
        lhs: &[half::f16],
        dst: &mut [half::f16],
    ) -> candle_core::Result<()> {
        k_quants::matmul_f16(mkn, lhs, self.blocks(), dst)
    }

    fn embedding(&self, ids: &[u32], rows: usize, hidden: usize) -> candle_core::Result<CpuStorage> {
        let row_blocks = hidden / T::BLCK_SIZE;
        if !hidden.is_multiple_of(T::BLCK_SIZE) || self.len != rows * row_blocks {
            candle_core::bail!("quantized table of {} blocks does not hold {rows} rows of {hidden}", self.len)
        }
        let mut out = vec![0f32; ids.len() * hidden];
        let mut read: Vec<T> = Vec::new();
        for (dst, &id) in out.chunks_exact_mut(hidden.max(1)).zip(ids) {
            let row = id as usize;
            if row >= rows {
                candle_core::bail!("embedding id {row} is out of range for {rows} rows")
            }
            let range = row * row_blocks..(row + 1) * row_blocks;
            match &self.rows {
                Some(file) => {
                    self.read_blocks(file, range, &mut read)?;
                    T::to_float(&read, dst);
                }
                None => T::to_float(&self.blocks()[range], dst),
            }
        }
        Ok(CpuStorage::F32(out))
    }

    fn dequantize(&self, elem_count: usize) -> candle_core::Result<CpuStorage> {
        let mut out = vec![0f32; elem_count];
        T::to_float(self.blocks(), &mut out);
        Ok(CpuStorage::F32(out))
    }

    fn storage_size_in_bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }

    fn as_ptr(&self) -> *const u8 {
        self.blocks().as_ptr().cast()
    }

    fn block_size(&self) -> usize {
        T::BLCK_SIZE
    }

    // candle writes blocks only into storage it allocates itself for `QTensor::quantize`.
    fn from_float(&mut self, _xs: &[f32]) {
        unreachable!("mapped model weights are read-only")
    }

    fn from_float_imatrix(&mut self, _xs: &[f32], _imatrix: &[f32], _n_per_row: usize) {
        unreachable!("mapped model weights are read-only")
    }

    fn size(&self) -> usize {
        self.storage_size_in_bytes()
    }
}
