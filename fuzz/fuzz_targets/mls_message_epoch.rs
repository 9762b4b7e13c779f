//! Fuzzes `Group::message_epoch` on the fixed MLS fixture group (see `witan_fuzz::mls_checks`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use witan_fuzz::{mls_checks, mls_fixture};

fuzz_target!(
    init: {
        let fx = mls_fixture::get();
        witan_fuzz::seeds::write("valid", &mls_checks::seeds(&fx.messages()));
    },
    |data: &[u8]| {
        mls_checks::message_epoch(data);
    }
);
