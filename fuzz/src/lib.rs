//! Shared pieces of witan's fuzz targets (one file per target in `fuzz_targets/`, each a thin
//! call into this crate): the properties checked per target ([`checks`] for the wire
//! decoders, [`mls_checks`], [`client_checks`], [`stored_checks`] for state read back from the
//! database), byte patches on the valid sample messages of `witan_wire::samples` ([`mutate`]),
//! seed corpus writing ([`seeds`]), a detector for `internal` rejections ([`watch`]), and the fixtures built once per process: a small MLS
//! group over `MemoryKv` ([`mls_fixture`]) and a live `WitanClient` member of a formed
//! conversation ([`client_fixture`]). See docs/fuzzing.md.

pub mod checks;
pub mod client_checks;
pub mod client_fixture;
pub mod mls_checks;
pub mod mls_fixture;
pub mod mutate;
pub mod seeds;
pub mod stored_checks;
pub mod watch;

/// Whether `WITAN_FUZZ_DEBUG` is set: targets then print what each input led to (to check
/// by hand that seeds reach the deep paths, e.g. `WITAN_FUZZ_DEBUG=1 <target binary> <file>`).
pub fn debug_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("WITAN_FUZZ_DEBUG").is_some())
}

/// Prints `what()` when [`debug_enabled`].
pub fn debug(what: impl FnOnce() -> String) {
    if debug_enabled() {
        eprintln!("witan-fuzz: {}", what());
    }
}
