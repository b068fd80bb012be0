//! Fuzz the shell quoter: any string without NUL quotes to printable ASCII lines with no
//! trailing space, and decoding the only forms the quoter emits (bare word, '…', \', "<LF>",
//! "$(printf '\ooo…')") gives back exactly the input. The real-shell round trip is the
//! proptest in planner/src/shell.rs; this checks far more inputs against the grammar.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let quoted = match writ::shell::quote(s) {
        Ok(q) => q,
        Err(_) => {
            assert!(s.contains('\0'));
            return;
        }
    };
    for line in quoted.split('\n') {
        assert!(
            line.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "{quoted:?}"
        );
        assert!(!line.ends_with(' '), "{quoted:?}");
    }
    assert!(!quoted.is_empty());
    assert_eq!(decode(&quoted), s.as_bytes(), "{quoted:?}");
});

/// Decode one word written in the quoter's output grammar; panics on anything else.
fn decode(q: &str) -> Vec<u8> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\'' {
            let end = i
                + 1
                + b[i + 1..]
                    .iter()
                    .position(|c| *c == b'\'')
                    .expect("closing quote");
            out.extend_from_slice(&b[i + 1..end]);
            i = end + 1;
        } else if b[i..].starts_with(b"\\'") {
            out.push(b'\'');
            i += 2;
        } else if b[i..].starts_with(b"\"\n\"") {
            out.push(b'\n');
            i += 3;
        } else if b[i..].starts_with(b"\"$(printf '") {
            i += 11;
            while b[i] == b'\\' {
                let oct = std::str::from_utf8(&b[i + 1..i + 4]).expect("octal");
                out.push(u8::from_str_radix(oct, 8).expect("octal digits"));
                i += 4;
            }
            assert!(b[i..].starts_with(b"')\""), "printf close");
            i += 3;
        } else {
            let c = b[i];
            assert!(
                c.is_ascii_alphanumeric() || b"_./:@,+%=-".contains(&c),
                "unexpected bare byte {c:#x} in {q:?}"
            );
            out.push(c);
            i += 1;
        }
    }
    out
}
