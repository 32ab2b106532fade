//! The compute devices llama.cpp sees in this build: which GPU backends were compiled in
//! (cargo features `cuda`, `vulkan`, `metal`), its backend device list, and the devices a model's
//! layers go to. It decides nothing about memory (budget.rs) and loads no model.

use llama_cpp_2::LlamaBackendDeviceType;

/// One entry of llama.cpp's backend device list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// llama.cpp's name: `CPU`, `Vulkan0`, `CUDA0`, `MTL0`.
    pub name: String,
    pub description: String,
    /// The backend it belongs to: `CPU`, `Vulkan`, `CUDA`, `Metal`.
    pub backend: String,
    pub memory_free: u64,
    pub memory_total: u64,
    pub kind: DeviceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Cpu,
    Gpu,
    IntegratedGpu,
    /// Accelerators (BLAS) and anything newer: never a target for layers.
    Other,
}

/// The GPU backends this binary was compiled with, by llama.cpp's names.
pub fn compiled_gpu_backends() -> Vec<&'static str> {
    let mut backends = Vec::new();
    if cfg!(feature = "cuda") {
        backends.push("CUDA");
    }
    if cfg!(feature = "vulkan") {
        backends.push("Vulkan");
    }
    // llama-cpp-2 turns Metal on by itself on Apple silicon.
    if cfg!(any(
        feature = "metal",
        all(target_os = "macos", target_arch = "aarch64")
    )) {
        backends.push("Metal");
    }
    backends
}

/// llama.cpp's backend device list (initialises llama.cpp's backend if needed).
pub fn list() -> anyhow::Result<Vec<Device>> {
    super::backend()?;
    Ok(llama_cpp_2::list_llama_ggml_backend_devices()
        .into_iter()
        .map(|d| Device {
            name: d.name,
            description: d.description,
            backend: d.backend,
            memory_free: d.memory_free as u64,
            memory_total: d.memory_total as u64,
            kind: match d.device_type {
                LlamaBackendDeviceType::Cpu => DeviceKind::Cpu,
                LlamaBackendDeviceType::Gpu => DeviceKind::Gpu,
                LlamaBackendDeviceType::IntegratedGpu => DeviceKind::IntegratedGpu,
                _ => DeviceKind::Other,
            },
        })
        .collect())
}

/// The devices llama.cpp puts offloaded layers on, as it picks them when loading a model:
/// every discrete GPU, else the integrated ones. Empty: every layer stays on the CPU.
pub fn offload_targets(devices: &[Device]) -> Vec<&Device> {
    let gpus: Vec<&Device> = devices
        .iter()
        .filter(|d| d.kind == DeviceKind::Gpu && d.backend != "RPC")
        .collect();
    if !gpus.is_empty() {
        return gpus;
    }
    devices
        .iter()
        .filter(|d| d.kind == DeviceKind::IntegratedGpu)
        .collect()
}

/// What serve runs on, for its startup line, `/v1/models` and doctor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accelerator {
    /// The backend offloaded layers run on (`Vulkan`), or `CPU`.
    pub backend: String,
    /// The names of the devices layers go to (`Vulkan0`); empty on the CPU.
    pub devices: Vec<String>,
    /// Free memory over those devices.
    pub memory_free: u64,
}

impl Accelerator {
    pub fn from_devices(devices: &[Device]) -> Accelerator {
        let targets = offload_targets(devices);
        Accelerator {
            backend: targets
                .first()
                .map(|d| d.backend.clone())
                .unwrap_or_else(|| "CPU".to_string()),
            devices: targets.iter().map(|d| d.name.clone()).collect(),
            memory_free: targets.iter().map(|d| d.memory_free).sum(),
        }
    }

    pub fn has_gpu(&self) -> bool {
        !self.devices.is_empty()
    }
}

/// The startup line: the backend, then every device with its memory. A GPU backend compiled in
/// without a device says so, with where llama.cpp looks.
pub fn describe(devices: &[Device], compiled: &[&str]) -> String {
    let accelerator = Accelerator::from_devices(devices);
    let backend = if accelerator.has_gpu() || compiled.is_empty() {
        accelerator.backend.clone()
    } else {
        format!("CPU ({} compiled in, no device found)", compiled.join(", "))
    };
    let listed: Vec<String> = devices
        .iter()
        .map(|d| {
            format!(
                "{} \"{}\" {} free of {}",
                d.name,
                d.description,
                crate::serve_config::ByteSize(d.memory_free),
                crate::serve_config::ByteSize(d.memory_total)
            )
        })
        .collect();
    format!("backend: {backend}; devices: {}", listed.join(", "))
}

/// Why a compiled-in GPU backend may see no device, for a hint.
pub fn no_device_hint(compiled: &[&str]) -> Option<&'static str> {
    if compiled.contains(&"Vulkan") {
        Some(
            "llama.cpp's Vulkan backend skips CPU-type Vulkan devices (lavapipe/llvmpipe) unless \
             GGML_VK_VISIBLE_DEVICES names them; check the driver with `vulkaninfo --summary`",
        )
    } else if compiled.contains(&"CUDA") {
        Some("check the driver with `nvidia-smi`, and CUDA_VISIBLE_DEVICES if it is set")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, backend: &str, kind: DeviceKind, free: u64) -> Device {
        Device {
            name: name.into(),
            description: format!("{name} card"),
            backend: backend.into(),
            memory_free: free,
            memory_total: free * 2,
            kind,
        }
    }

    #[test]
    fn layers_go_to_discrete_gpus_before_integrated_ones() {
        let cpu = device("CPU", "CPU", DeviceKind::Cpu, 1 << 30);
        let igpu = device("Vulkan1", "Vulkan", DeviceKind::IntegratedGpu, 2 << 30);
        let gpu = device("Vulkan0", "Vulkan", DeviceKind::Gpu, 8 << 30);
        let both = [cpu.clone(), gpu.clone(), igpu.clone()];
        let names = |ds: &[Device]| -> Vec<String> {
            offload_targets(ds).iter().map(|d| d.name.clone()).collect()
        };
        assert_eq!(names(&both), ["Vulkan0"]);
        assert_eq!(names(&[cpu.clone(), igpu.clone()]), ["Vulkan1"]);
        assert!(names(std::slice::from_ref(&cpu)).is_empty());
        let on = Accelerator::from_devices(&both);
        assert_eq!(on.backend, "Vulkan");
        assert_eq!(on.memory_free, 8 << 30);
        let off = Accelerator::from_devices(&[cpu]);
        assert_eq!(off.backend, "CPU");
        assert!(!off.has_gpu());
    }

    #[test]
    fn the_startup_line_names_the_backend_and_every_device() {
        let cpu = device("CPU", "CPU", DeviceKind::Cpu, 1 << 30);
        let gpu = device("CUDA0", "CUDA", DeviceKind::Gpu, 8 << 30);
        assert_eq!(
            describe(&[cpu.clone(), gpu], &["CUDA"]),
            "backend: CUDA; devices: CPU \"CPU card\" 1.0 GiB free of 2.0 GiB, CUDA0 \"CUDA0 card\" 8.0 GiB free of 16.0 GiB"
        );
        assert_eq!(
            describe(std::slice::from_ref(&cpu), &["Vulkan"]),
            "backend: CPU (Vulkan compiled in, no device found); devices: CPU \"CPU card\" 1.0 GiB free of 2.0 GiB"
        );
        assert!(describe(&[cpu], &[]).starts_with("backend: CPU; devices: CPU"));
    }

    #[test]
    fn this_build_lists_its_cpu() {
        let devices = list().unwrap();
        assert!(
            devices.iter().any(|d| d.kind == DeviceKind::Cpu),
            "{devices:?}"
        );
        if compiled_gpu_backends().is_empty() {
            assert!(!Accelerator::from_devices(&devices).has_gpu());
        }
    }
}
