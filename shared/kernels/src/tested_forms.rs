//! Which of the kernels' forms the tests ran (issue 34.5). The forms of a product give the same
//! numbers, so a product test passes whichever form actually ran: a dispatch that quietly takes
//! another form, or a test that never packs one, would go unseen. Each form's entry point notes
//! here that it ran (`ran`; compiled in test builds only: `cfg(test)` for the unit tests, the
//! `tested-forms` feature for the wasm tests, a crate of their own), and [`report`] says, form
//! by form, whether it ran or why not, and which forms this machine has that did not run. What
//! the machine has is read from the CPU's feature flags (x86), not from the kernels' own checks,
//! so that a wrong check there shows too.

use std::sync::atomic::{AtomicU32, Ordering};

/// Declares `KernelForm` with every form of each target (`arch variant "name";`, in the
/// report's order), `KernelForm::all()` and `KernelForm::name()` from one list.
macro_rules! kernel_forms {
    ($($arch:literal $variant:ident $name:literal;)*) => {
        /// A form of a kernel: an instruction set it is compiled for, or a layout it runs in.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum KernelForm {
            $(#[cfg(target_arch = $arch)] $variant,)*
        }

        impl KernelForm {
            /// Every form of this target, in the report's order.
            pub fn all() -> Vec<KernelForm> {
                vec![$(#[cfg(target_arch = $arch)] KernelForm::$variant,)*]
            }

            /// What the report calls it.
            pub fn name(self) -> &'static str {
                match self {
                    $(#[cfg(target_arch = $arch)] KernelForm::$variant => $name,)*
                }
            }
        }
    };
}

kernel_forms! {
    "x86_64" Q8_0Avx2 "q8_0 narrow avx2";
    "x86_64" Q8_0AvxVnni "q8_0 narrow avx-vnni";
    "x86_64" Q8_0Avx512Vnni "q8_0 narrow avx512-vnni";
    "x86_64" Q8_0Wide "q8_0 wide avx512-vnni";
    "x86_64" Q8_0Amx "q8_0 amx";
    "x86_64" Q4KAvx2 "q4k narrow avx2";
    "x86_64" Q4KAvxVnni "q4k narrow avx-vnni";
    "x86_64" Q4KAvx512Vnni "q4k narrow avx512-vnni";
    "x86_64" Q4KWide "q4k wide avx512-vnni";
    "x86_64" OpsAvx2 "gelu/softmax avx2";
    "x86_64" OpsAvx512 "gelu/softmax avx512";
    "x86_64" RotationAvx2 "rotation avx2";
    "wasm32" Q8_0Simd128 "q8_0 simd128";
    // Relaxed SIMD's 8-bit dot on unsigned weights.
    "wasm32" Q8_0Relaxed "q8_0 relaxed-simd";
    "wasm32" Q4KSimd128 "q4k simd128";
    "wasm32" Q4KRelaxed "q4k relaxed-simd";
}

use KernelForm::*;

impl KernelForm {
    /// Why this machine (and build) cannot run the form; `None` when it can.
    pub fn unavailable(self) -> Option<String> {
        #[cfg(target_arch = "x86_64")]
        {
            let features: &[&str] = match self {
                Q8_0Avx2 | Q4KAvx2 | OpsAvx2 => &["avx2", "fma"],
                Q8_0AvxVnni | Q4KAvxVnni => &["avx2", "fma", "avxvnni"],
                Q8_0Avx512Vnni | Q4KAvx512Vnni => &["avx2", "fma", "avx512vnni", "avx512vl"],
                Q8_0Wide | Q4KWide => &["avx2", "fma", "avx512f", "avx512bw", "avx512vnni"],
                Q8_0Amx => &["avx2", "fma", "avx512f", "amx-int8"],
                OpsAvx512 => &["avx2", "fma", "avx512f"],
                RotationAvx2 => &["avx2"],
            };
            let lacking: Vec<&str> = features.iter().copied().filter(|f| !cpu_has(f)).collect();
            if !lacking.is_empty() {
                return Some(format!("CPU lacks {}", lacking.join(", ")));
            }
            // Linux hands the tiles' state only to a process that asks; the tests ask as the
            // trainer does.
            if self == Q8_0Amx && !crate::x86::amx::enable() {
                return Some("the OS did not grant the AMX tile state".into());
            }
            None
        }
        #[cfg(target_arch = "wasm32")]
        match self {
            Q8_0Simd128 | Q4KSimd128 => None,
            #[cfg(not(feature = "relaxed-simd"))]
            Q8_0Relaxed | Q4KRelaxed => Some("the simd128 build: its relaxed-simd feature is off".into()),
            #[cfg(feature = "relaxed-simd")]
            Q8_0Relaxed if !crate::wasm::relaxed_u8_dot_is_exact() => {
                Some("this engine's relaxed 8-bit dot is not exact on unsigned bytes: V8 without AVX-VNNI".into())
            }
            #[cfg(feature = "relaxed-simd")]
            Q8_0Relaxed | Q4KRelaxed => None,
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "wasm32")))]
        match self {}
    }
}

/// Whether the CPU has `feature` (x86-64: std's runtime detection, which also checks that the
/// OS saves the registers; AMX from /proc/cpuinfo, which std cannot detect on stable Rust).
#[cfg(target_arch = "x86_64")]
fn cpu_has(feature: &str) -> bool {
    match feature {
        "avx2" => is_x86_feature_detected!("avx2"),
        "fma" => is_x86_feature_detected!("fma"),
        "avxvnni" => is_x86_feature_detected!("avxvnni"),
        "avx512f" => is_x86_feature_detected!("avx512f"),
        "avx512bw" => is_x86_feature_detected!("avx512bw"),
        "avx512vl" => is_x86_feature_detected!("avx512vl"),
        "avx512vnni" => is_x86_feature_detected!("avx512vnni"),
        "amx-int8" => std::fs::read_to_string("/proc/cpuinfo")
            .map(|info| info.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "amx_int8")))
            .unwrap_or(false),
        _ => unreachable!("unknown feature {feature}"),
    }
}

static RAN: AtomicU32 = AtomicU32::new(0);

/// Notes that `form` ran (called from each form's entry point).
pub fn ran(form: KernelForm) {
    RAN.fetch_or(1 << form as u32, Ordering::Relaxed);
}

/// Whether `form` has run in this process.
fn has_run(form: KernelForm) -> bool {
    RAN.load(Ordering::Relaxed) & (1 << form as u32) != 0
}

/// One line per form (`q8_0 amx: run`, `q4k wide avx512-vnni: not run (CPU lacks avx512vnni)`),
/// and the forms this machine has that did not run (which the caller fails on).
pub fn report() -> (Vec<String>, Vec<&'static str>) {
    let mut lines = Vec::new();
    let mut missed = Vec::new();
    for form in KernelForm::all() {
        let line = match (has_run(form), form.unavailable()) {
            (true, _) => "run".to_owned(),
            (false, Some(why)) => format!("not run ({why})"),
            (false, None) => {
                missed.push(form.name());
                "NOT RUN, though this machine has it".to_owned()
            }
        };
        lines.push(format!("{}: {line}", form.name()));
    }
    (lines, missed)
}

/// Runs the tests that exercise the x86 forms, then reports them. Their numbers alone cannot
/// tell the forms apart, so this is what fails when one was skipped.
#[cfg(all(test, target_arch = "x86_64"))]
#[test]
fn every_form_this_cpu_has_ran() {
    use std::io::Write;
    crate::x86::q8_0::tests::matches_candles_q8_0_product();
    crate::x86::q4k::tests::matches_candles_q4k_product();
    crate::ops::native::tests::every_vector_form_gives_the_plain_bits();
    crate::rotation::tests::every_form_gives_the_same_bits();
    let (lines, missed) = report();
    // Straight to stderr, past the test harness's capture: the CI log shows the forms of every
    // run, passed or failed.
    let mut err = std::io::stderr().lock();
    for line in &lines {
        writeln!(err, "kernel form {line}").unwrap();
    }
    assert!(missed.is_empty(), "this CPU has forms that no test ran (a dispatch that skips them?): {missed:?}");
}
