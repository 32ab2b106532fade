//! The CPU features llama.cpp's kernels were compiled for, checked before the engine starts.
//! The release builds (portable or not) compile llama.cpp's CPU code for x86-64-v3 (AVX2,
//! FMA, F16C, BMI2), llama.cpp's own default; the rest of duo-selfhost is plain x86_64. On an
//! older CPU the admin commands work, and `serve` refuses with this message instead of dying of
//! SIGILL halfway through loading a model.

use crate::error::Problem;

/// The x86_64 features llama.cpp's CPU code is built with (its GGML_* defaults without
/// GGML_NATIVE), as `is_x86_feature_detected!` names them.
#[cfg(target_arch = "x86_64")]
fn missing_features() -> Vec<&'static str> {
    let detected = [
        ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
        ("avx", std::arch::is_x86_feature_detected!("avx")),
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("fma", std::arch::is_x86_feature_detected!("fma")),
        ("f16c", std::arch::is_x86_feature_detected!("f16c")),
        ("bmi2", std::arch::is_x86_feature_detected!("bmi2")),
    ];
    detected
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| name)
        .collect()
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
        "this CPU lacks {}, which the model engine's kernels are built for (x86-64-v3: AVX2, \
         FMA, F16C, BMI2; Intel Haswell or AMD Zen and newer). duo-selfhost's other commands \
         work on this host; only serving a model here does not",
        missing.join(", ")
    ))
    .hint(
        "serve the model on a newer host, or build duo-selfhost from source on this one with \
         RUSTFLAGS='-C target-cpu=native' cargo build --release, which builds the kernels for \
         this CPU",
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
