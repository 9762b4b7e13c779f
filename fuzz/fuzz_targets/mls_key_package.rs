//! Fuzzes `witan::mls::validate_key_package` on the fixed MLS fixture group (see
//! `witan_fuzz::mls_checks`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use witan_fuzz::{mls_checks, mls_fixture};

fuzz_target!(
    init: {
        let fx = mls_fixture::get();
        let valid = std::slice::from_ref(&fx.key_package);
        witan_fuzz::seeds::write("valid", &mls_checks::seeds(valid));
    },
    |data: &[u8]| {
        mls_checks::key_package(data);
    }
);
