//! The gitlab.rb editor on arbitrary text and edits: never panics, never trips its own
//! read-back check (an `Internal` error is a planner bug), and an edited file reads back as
//! the old env with the edits applied.
#![no_main]

use arbitrary::Arbitrary;
use duo_selfhost_fuzz::gitlab_rb::env::{effective_env, EnvChange, EnvError};
use duo_selfhost_fuzz::gitlab_rb::plan::plan_edit;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Change {
    Set(u8, String),
    Unset(u8),
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    text: &'a str,
    changes: Vec<Change>,
}

/// Keys from a small pool, so edits hit keys the text already has.
fn key(n: u8) -> String {
    const POOL: &[&str] = &["AI_GATEWAY_URL", "TZ", "A", "_b", "DUO_WORKFLOW_URL"];
    match POOL.get(n as usize % 8) {
        Some(k) => k.to_string(),
        None => format!("K{n}"),
    }
}

fuzz_target!(|input: Input| {
    let changes: Vec<EnvChange> = input
        .changes
        .iter()
        .take(6)
        .map(|c| match c {
            Change::Set(k, v) => EnvChange::set(key(*k), v.clone()),
            Change::Unset(k) => EnvChange::unset(key(*k)),
        })
        .collect();
    let Ok(before) = effective_env(input.text) else {
        // Text the reader refuses is refused by the editor too.
        assert!(plan_edit(input.text, &changes).is_err());
        return;
    };
    match plan_edit(input.text, &changes) {
        Ok(None) => {}
        Ok(Some(new)) => {
            let after = effective_env(&new).expect("the edited file parses");
            let mut expected: Vec<(String, String)> = before.0.clone();
            for change in &changes {
                match change {
                    EnvChange::Set { key, value } => {
                        match expected.iter_mut().find(|(k, _)| k == key) {
                            Some(slot) => slot.1 = value.clone(),
                            None => expected.push((key.clone(), value.clone())),
                        }
                    }
                    EnvChange::Unset { key } => expected.retain(|(k, _)| k != key),
                }
            }
            let mut got = after.0.clone();
            got.sort();
            expected.sort();
            assert_eq!(got, expected);
        }
        Err(EnvError::Internal(message)) => panic!("planner bug: {message}"),
        Err(_) => {}
    }
});
