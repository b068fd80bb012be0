//! No input makes config loading panic: random YAML-ish text and random mutations of the good
//! fixtures all end in `Ok` or a config error whose rendering is terminal-safe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use proptest::prelude::*;

fn good_texts() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/good");
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let dir = e.unwrap().path().join("config");
        for f in std::fs::read_dir(dir).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|x| x == "yml") {
                out.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    out.sort();
    out
}

/// Load the text and check the outcome is well-formed.
fn check(text: &str) {
    match writ::config::from_str_unpinned(text) {
        Ok(c) => assert!(!c.service.as_str().is_empty()),
        Err(e) => {
            assert_eq!(e.exit_code(), 78, "{e:?}");
            let rendered = format!("{e}\n{}", e.hint().unwrap_or_default());
            assert!(
                rendered
                    .chars()
                    .all(|c| c == '\n' || c == '\t' || !c.is_control()),
                "control character in: {rendered:?}"
            );
        }
    }
}

const YAMLISH: &str = "[a-z_:\\-\\[\\]{}\"'&*!#%@|>\n ,.0-9<>~?=$`\\\\\u{a0}\u{202e}]{0,300}";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_yamlish_text_never_panics(text in YAMLISH) {
        check(&text);
    }

    #[test]
    fn mutated_good_configs_never_panic(
        which in 0usize..64,
        at in any::<prop::sample::Index>(),
        len in 0usize..12,
        insert in YAMLISH,
    ) {
        let texts = good_texts();
        let text = &texts[which % texts.len()];
        let mut chars: Vec<char> = text.chars().collect();
        let start = at.index(chars.len() + 1);
        let end = (start + len).min(chars.len());
        chars.splice(start..end, insert.chars());
        check(&chars.into_iter().collect::<String>());
    }
}

#[test]
fn every_good_deploy_file_alone_loads_or_fails_cleanly() {
    // Overlays alone lack required keys: they must fail with a diagnostic, not panic.
    for text in good_texts() {
        check(&text);
    }
}
