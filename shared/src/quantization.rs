//! The weight formats a bundle can hold: what `import --quant` asks for and the manifest records.

use serde::{Deserialize, Serialize};

/// The weight format asked for on import. Matrices whose row length does not fit the
/// format's block fall back (q4k → q5_0 → f16; q8_0 → f16), as GGUF requires whole blocks.
/// q4k's fallback is q5_0, not q4_0: on all-MiniLM-L6-v2 (384-wide rows) q4_0 kept a mean
/// cosine of only 0.980 between quantized and f32 final hidden states, q5_0 keeps 0.993.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quantization {
    #[serde(rename = "q8_0")]
    Q8_0,
    #[serde(rename = "q4k")]
    Q4K,
    #[serde(rename = "f16")]
    F16,
    #[serde(rename = "f32")]
    F32,
}

impl Quantization {
    pub fn as_str(&self) -> &'static str {
        match self {
            Quantization::Q8_0 => "q8_0",
            Quantization::Q4K => "q4k",
            Quantization::F16 => "f16",
            Quantization::F32 => "f32",
        }
    }
}

impl std::str::FromStr for Quantization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "q8_0" | "q8" => Ok(Quantization::Q8_0),
            "q4k" | "q4_k" | "q4" => Ok(Quantization::Q4K),
            "f16" => Ok(Quantization::F16),
            "f32" => Ok(Quantization::F32),
            _ => Err(format!("unknown quantization {s:?}; use q8_0, q4k, f16 or f32")),
        }
    }
}

impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
