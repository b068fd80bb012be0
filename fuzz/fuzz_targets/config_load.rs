//! Fuzz the config loader (strict YAML, merge-free path, validation): it never panics, and
//! every error it returns is a config error whose rendering holds no terminal control bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = writ::config::from_str_unpinned(text) {
        assert_eq!(e.exit_code(), 78);
        let rendered = format!("{e}\n{}", e.hint().unwrap_or_default());
        assert!(
            rendered
                .chars()
                .all(|c| c == '\n' || c == '\t' || !c.is_control()),
            "control character in a diagnostic"
        );
    }
});
