//! Fuzz the plan decoder: it never panics, and whatever it accepts re-encodes to exactly the
//! input bytes (the canonical-form rule of docs/plan-format.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_exec::plan::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(plan) = decode(data) {
        let again = encode(&plan).expect("a decoded plan always encodes");
        assert_eq!(again, data, "decode accepted bytes that are not canonical");
    }
});
