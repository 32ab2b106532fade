//! The gitlab.rb reader on arbitrary text: never panics; whatever it accepts, it accepts again
//! after a no-op edit.
#![no_main]

use duo_selfhost_fuzz::gitlab_rb::env::{effective_env, external_url, has_env_assignment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let env = effective_env(text);
    let has = has_env_assignment(text);
    assert_eq!(
        env.is_ok(),
        has.is_ok(),
        "reader and has_env_assignment disagree"
    );
    let _ = external_url(text);
});
