//! Fuzz the allowed_signers parser: it never panics, and every entry it returns is usable
//! (pattern matching and window checks on it do not panic either).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use writ_exec::allowed_signers::AllowedSigners;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(signers) = AllowedSigners::parse(Path::new("fuzz"), text) {
        let now = jiff::Timestamp::UNIX_EPOCH;
        for e in &signers.entries {
            assert!(!e.principals.is_empty());
            let _ = e.allows_namespace("writ-plan:production");
            let _ = e.window(now);
        }
    }
});
