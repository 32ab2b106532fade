//! The CPU features llama.cpp's kernels were compiled with, checked against this CPU before
//! the engine starts. A release build from source compiles them for x86-64-v3 (AVX2, FMA,
//! F16C, BMI2: llama.cpp's default) or, on arm64, armv8-a; the portable build
//! (scripts/build-portable) for the x86_64 baseline, which every CPU runs. The rest of duo-selfhost is plain x86_64 either way,
//! so on an older CPU the admin commands work and `serve` refuses with this message instead of
//! dying of SIGILL halfway through loading a model.
//!
//! The packages carry both portable builds: the baseline one as `bin/duo-selfhost` and one
//! with x86-64-v3 kernels in `libexec/duo-selfhost/`. `serve` in the baseline build hands over
//! to the faster one on a CPU that runs it ([`exec_faster_build`]), since llama.cpp chooses its
//! kernels when it is compiled, not at run time, unless built as loadable modules.

#[cfg(target_arch = "x86_64")]
use std::path::{Path, PathBuf};

use crate::error::Problem;

/// The file name of the build with x86-64-v3 kernels that packages install beside the baseline.
#[cfg(target_arch = "x86_64")]
pub const FAST_BUILD: &str = "duo-selfhost-x86-64-v3";

/// `baseline` keeps this build's kernels where the faster build would run (to compare them);
/// the baseline build sets it to `x86-64-v3` when it hands over, so that is never done twice.
#[cfg(target_arch = "x86_64")]
pub const BUILD_CHOICE_VAR: &str = "DUO_SELFHOST_CPU_BUILD";

/// The instruction sets llama.cpp's CPU kernels in this binary use, for the startup line.
pub fn kernel_features() -> Vec<&'static str> {
    compiled_features()
        .into_iter()
        .filter(|(_, compiled)| *compiled)
        .map(|(name, _)| name)
        .collect()
}

/// How the startup line names this build's kernels.
pub fn kernels_description() -> String {
    match kernel_features() {
        features if features.is_empty() => BASELINE_KERNELS.to_string(),
        features => format!("kernels for {}", features.join(", ")),
    }
}

/// What a build without optional instruction sets runs: SSE2 is part of every x86_64 CPU, and
/// NEON of every arm64 one (llama-cpp-sys-2 compiles aarch64 Linux builds for armv8-a unless
/// they are built with target-cpu=native).
#[cfg(target_arch = "x86_64")]
const BASELINE_KERNELS: &str = "baseline x86_64 kernels (SSE2)";
#[cfg(target_arch = "aarch64")]
const BASELINE_KERNELS: &str = "baseline arm64 kernels (armv8-a, NEON)";
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const BASELINE_KERNELS: &str = "llama.cpp's kernels for this architecture";

#[cfg(target_arch = "x86_64")]
fn compiled_features() -> [(&'static str, bool); 6] {
    use llama_cpp_sys_2 as ggml;
    // SAFETY: each ggml_cpu_has_* returns a constant fixed when llama.cpp was compiled (whether
    // its code uses that instruction set); they touch no state.
    unsafe {
        [
            ("avx", ggml::ggml_cpu_has_avx() != 0),
            ("avx2", ggml::ggml_cpu_has_avx2() != 0),
            ("fma", ggml::ggml_cpu_has_fma() != 0),
            ("f16c", ggml::ggml_cpu_has_f16c() != 0),
            ("bmi2", ggml::ggml_cpu_has_bmi2() != 0),
            ("avx512f", ggml::ggml_cpu_has_avx512() != 0),
        ]
    }
}

#[cfg(target_arch = "aarch64")]
fn compiled_features() -> [(&'static str, bool); 4] {
    use llama_cpp_sys_2 as ggml;
    // SAFETY: as on x86_64, constants fixed when llama.cpp was compiled. NEON itself is part
    // of armv8-a, so only the extensions beyond it are listed.
    unsafe {
        [
            ("dotprod", ggml::ggml_cpu_has_dotprod() != 0),
            ("fp16", ggml::ggml_cpu_has_fp16_va() != 0),
            ("i8mm", ggml::ggml_cpu_has_matmul_int8() != 0),
            ("sve", ggml::ggml_cpu_has_sve() != 0),
        ]
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn compiled_features() -> [(&'static str, bool); 0] {
    []
}

/// Where a package or the tarball puts the faster build, from the running binary's path:
/// `PREFIX/bin/duo-selfhost` -> `PREFIX/libexec/duo-selfhost/duo-selfhost-x86-64-v3`.
#[cfg(target_arch = "x86_64")]
fn fast_build_beside(exe: &Path) -> Option<PathBuf> {
    let prefix = exe.parent()?.parent()?;
    Some(prefix.join("libexec/duo-selfhost").join(FAST_BUILD))
}

/// In a build with baseline kernels, on a CPU with everything x86-64-v3 kernels use, replaces
/// this process with the faster build when it is installed beside this one: same arguments,
/// same environment. Returns Ok when there is nothing faster to run; this build then serves.
#[cfg(target_arch = "x86_64")]
pub fn exec_faster_build() -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;

    if !kernel_features().is_empty()
        || std::env::var_os(BUILD_CHOICE_VAR).is_some()
        || !V3_FEATURES.iter().all(|feature| cpu_has(feature))
    {
        return Ok(());
    }
    let Some(faster) = std::env::current_exe()
        .ok()
        .and_then(|exe| fast_build_beside(&exe))
        .filter(|path| path.is_file())
    else {
        return Ok(());
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(&faster);
    if let Some(argv0) = args.next() {
        command.arg0(argv0);
    }
    let err = command.args(args).env(BUILD_CHOICE_VAR, "x86-64-v3").exec();
    Err(Problem::tool(format!(
        "could not start the faster build of the model engine, {}: {err}",
        faster.display()
    ))
    .hint(format!(
        "reinstall the package, or set {BUILD_CHOICE_VAR}=baseline to serve with the baseline \
         kernels"
    ))
    .into())
}

#[cfg(not(target_arch = "x86_64"))]
pub fn exec_faster_build() -> anyhow::Result<()> {
    Ok(())
}

/// What the x86-64-v3 kernels use (ggml's AVX2 build flags).
#[cfg(target_arch = "x86_64")]
const V3_FEATURES: [&str; 5] = ["avx", "avx2", "fma", "f16c", "bmi2"];

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

#[cfg(target_arch = "aarch64")]
fn cpu_has(feature: &str) -> bool {
    match feature {
        "dotprod" => std::arch::is_aarch64_feature_detected!("dotprod"),
        "fp16" => std::arch::is_aarch64_feature_detected!("fp16"),
        "i8mm" => std::arch::is_aarch64_feature_detected!("i8mm"),
        "sve" => std::arch::is_aarch64_feature_detected!("sve"),
        _ => false,
    }
}

/// The features llama.cpp's CPU code was compiled with that this CPU lacks.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn missing_features() -> Vec<&'static str> {
    kernel_features()
        .into_iter()
        .filter(|name| !cpu_has(name))
        .collect()
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
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
        "this CPU lacks {}, which this build's model engine kernels are compiled for \
         ({SOURCE_BUILD_KERNELS}). duo-selfhost's other commands work on this host; only \
         serving a model here does not",
        missing.join(", ")
    ))
    .hint(format!(
        "serve the model on a newer host, or use the portable build (the packages; its kernels \
         run on every {ARCH_NAME} CPU), or build from source on this host with \
         RUSTFLAGS='-C target-cpu=native' cargo build --release",
    )))
}

/// What a build from source compiles llama.cpp's CPU code for, by architecture.
#[cfg(target_arch = "x86_64")]
const SOURCE_BUILD_KERNELS: &str =
    "a build from source uses x86-64-v3: AVX2, FMA, F16C, BMI2; Intel Haswell or AMD Zen and newer";
#[cfg(target_arch = "aarch64")]
const SOURCE_BUILD_KERNELS: &str =
    "it was built with target-cpu=native on another CPU; a build without it uses armv8-a";
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SOURCE_BUILD_KERNELS: &str = "it was built for another CPU";

#[cfg(target_arch = "x86_64")]
const ARCH_NAME: &str = "x86_64";
#[cfg(target_arch = "aarch64")]
const ARCH_NAME: &str = "arm64";
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH_NAME: &str = std::env::consts::ARCH;

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

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_faster_build_is_looked_for_under_the_same_prefix() {
        assert_eq!(
            fast_build_beside(Path::new("/usr/bin/duo-selfhost")).unwrap(),
            Path::new("/usr/libexec/duo-selfhost/duo-selfhost-x86-64-v3")
        );
        assert_eq!(
            fast_build_beside(Path::new("/opt/duo-selfhost-0.1.0/bin/duo-selfhost")).unwrap(),
            Path::new("/opt/duo-selfhost-0.1.0/libexec/duo-selfhost/duo-selfhost-x86-64-v3")
        );
    }

    #[test]
    fn this_machine_runs_the_engine() {
        // The tests run the real model on this machine, so it has what the kernels need.
        assert_eq!(missing_features(), Vec::<&str>::new());
        assert!(check().is_ok());
    }
}
