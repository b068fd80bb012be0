//! Reading untrusted input files with a size cap, so a hostile plan, signature or policy file
//! cannot make the executor allocate without bound. The cap is checked before the bytes are
//! trusted for anything.

use std::io::Read as _;
use std::path::Path;

use crate::Error;

/// Read at most `max` bytes of `path`; a longer file is [`Error::TooLarge`] (callers that read
/// something other than a plan map it to their own variant).
pub(crate) fn read_capped(path: &Path, max: usize) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() > max {
        let size = std::fs::metadata(path)
            .ok()
            .and_then(|m| usize::try_from(m.len()).ok())
            .map_or(bytes.len(), |n| n.max(bytes.len()));
        return Err(Error::TooLarge { size, max });
    }
    Ok(bytes)
}
