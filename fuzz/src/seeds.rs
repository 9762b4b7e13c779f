//! Seed corpus writing. `scripts/fuzz.sh` sets `WITAN_FUZZ_SEED_DIR` to the target's corpus
//! directory; a target's `init` (which libFuzzer runs before it reads the corpus) writes its
//! seeds there, built from valid messages of this very process (so MLS seeds decrypt with
//! this process's fixture). Without the variable nothing is written.

use std::path::PathBuf;

/// Environment variable naming the directory to write seeds into.
pub const SEED_DIR_VAR: &str = "WITAN_FUZZ_SEED_DIR";

/// Writes each seed as `seed-<name>-<index>` into the seed directory, if one is set.
/// Existing seed files of the same name are replaced (their keys are from an older process).
pub fn write(name: &str, seeds: &[Vec<u8>]) {
    let Some(dir) = std::env::var_os(SEED_DIR_VAR).map(PathBuf::from) else {
        return;
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("witan-fuzz: cannot create {}: {e}", dir.display());
        return;
    }
    for (i, seed) in seeds.iter().enumerate() {
        let path = dir.join(format!("seed-{name}-{i:03}"));
        if let Err(e) = std::fs::write(&path, seed) {
            eprintln!("witan-fuzz: cannot write {}: {e}", path.display());
        }
    }
}

/// `prefix` followed by `body` (seeds of targets whose first bytes pick a mode).
pub fn with_prefix(prefix: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(body);
    v
}
