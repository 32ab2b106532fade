//! Helpers shared by the unit and integration tests (hidden from the documented API).

use std::path::{Path, PathBuf};

/// A file from the workplace's `shared/` directory (the omnibus template, the seed):
/// `$DUO_SELFHOST_SHARED` when set, else the first ancestor of the crate that holds `shared/`.
/// The one place every test finds those fixtures; a checkout placed away from `shared/` fails
/// here with the fix, not with a bare "No such file".
pub fn shared_file(relative: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let from_env = std::env::var_os("DUO_SELFHOST_SHARED").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(manifest.ancestors().map(|dir| dir.join("shared")))
        .map(|shared| shared.join(relative))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "shared/{relative} is not in any ancestor of {}; check the project out beside \
                 shared/ or set DUO_SELFHOST_SHARED to that directory",
                manifest.display()
            )
        })
}
