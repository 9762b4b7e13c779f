//! Fuzzes reading stored state back: row-codec values, a conversation's engine state, and a
//! damaged MLS row under a real group (see `witan_fuzz::stored_checks`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use witan_fuzz::stored_checks;

fuzz_target!(
    init: {
        witan_fuzz::seeds::write("valid", &stored_checks::seeds());
    },
    |data: &[u8]| {
        stored_checks::check(data);
    }
);
