//! Finding the host's programs: on PATH, else in omnibus GitLab's own directories, where a GitLab
//! host keeps `gitlab-ctl`, Ruby and openssl without putting them on PATH.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable called `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// `name` on PATH, else omnibus GitLab's own copy at `omnibus`.
pub fn find_on_path_or_omnibus(name: &str, omnibus: &str) -> Option<PathBuf> {
    find_on_path(name).or_else(|| {
        let omnibus = Path::new(omnibus);
        is_executable(omnibus).then(|| omnibus.to_path_buf())
    })
}
