//! The CPU features llama.cpp's kernels were compiled with, checked against this CPU before
//! the engine starts. A release build from source compiles them for x86-64-v3 (AVX2, FMA,
//! F16C, BMI2: llama.cpp's default); the portable build (scripts/build-portable) for the
//! x86_64 baseline, which every CPU runs. The rest of duo-selfhost is plain x86_64 either way,
//! so on an older CPU the admin commands work and `serve` refuses with this message instead of
//! dying of SIGILL halfway through loading a model.

use crate::error::Problem;

/// The features llama.cpp's CPU code was compiled with that this CPU lacks, as
/// `is_x86_feature_detected!` names them.
#[cfg(target_arch = "x86_64")]
fn missing_features() -> Vec<&'static str> {
    use llama_cpp_sys_2 as ggml;
    // SAFETY: each ggml_cpu_has_* returns a constant fixed when llama.cpp was compiled (whether
    // its code uses that instruction set); they touch no state.
    let compiled_with = unsafe {
        [
            ("avx", ggml::ggml_cpu_has_avx()),
            ("avx2", ggml::ggml_cpu_has_avx2()),
            ("fma", ggml::ggml_cpu_has_fma()),
            ("f16c", ggml::ggml_cpu_has_f16c()),
            ("bmi2", ggml::ggml_cpu_has_bmi2()),
            ("avx512f", ggml::ggml_cpu_has_avx512()),
        ]
    };
    compiled_with
        .into_iter()
        .filter(|(_, compiled)| *compiled != 0)
        .map(|(name, _)| name)
        .filter(|name| !cpu_has(name))
        .collect()
}

#[cfg(target_arch = "x86_64")]
fn cpu_has(feature: &str) -> bool {
    match feature {
        "avx" => std::arch::is_x86_feature_detected!("avx"),
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "fma" => std::arch::is_x86_feature_detected!("fma"),
        "f16c" => std::arch::is_x86_feature_detected!("f16c"),
        "bmi2" => std::arch::is_x86_feature_detected!("bmi2"),
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        _ => false,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn missing_features() -> Vec<&'static str> {
    Vec::new()
}

/// Refuses to start llama.cpp on a CPU that lacks what its kernels need, naming what is
/// missing and how to get a build for this CPU.
pub fn check() -> Result<(), Problem> {
    refuse_if_missing(&missing_features())
}

fn refuse_if_missing(missing: &[&str]) -> Result<(), Problem> {
    if missing.is_empty() {
        return Ok(());
    }
    Err(Problem::user(format!(
        "this CPU lacks {}, which this build's model engine kernels are compiled for (a build \
         from source uses x86-64-v3: AVX2, FMA, F16C, BMI2; Intel Haswell or AMD Zen and \
         newer). duo-selfhost's other commands work on this host; only serving a model here \
         does not",
        missing.join(", ")
    ))
    .hint(
        "serve the model on a newer host, or use the portable build (the packages; its kernels \
         run on every x86_64 CPU), or build from source on this host with \
         RUSTFLAGS='-C target-cpu=native' cargo build --release",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_without_avx2_is_refused_by_name_with_the_way_out() {
        let problem = refuse_if_missing(&["avx2", "fma"]).unwrap_err();
        assert!(
            problem.message.contains("lacks avx2, fma"),
            "{}",
            problem.message
        );
        assert!(problem.hint.unwrap().contains("target-cpu=native"));
    }

    #[test]
    fn this_machine_runs_the_engine() {
        // The tests run the real model on this machine, so it has what the kernels need.
        assert_eq!(missing_features(), Vec::<&str>::new());
        assert!(check().is_ok());
    }
}
