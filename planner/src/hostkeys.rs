//! Pinned SSH host keys from a known_hosts-format file in the repo (being written).
