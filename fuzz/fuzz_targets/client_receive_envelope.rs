//! Fuzzes `WitanClient::receive` on a live member of a formed conversation (structured input; see
//! `witan_fuzz::client_checks`): never an `Err`, never an internal rejection, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use witan_fuzz::{client_checks, watch};

fuzz_target!(
    init: {
        watch::install();
        witan_fuzz::seeds::write("valid", &client_checks::structured_seeds());
    },
    |data: &[u8]| {
        client_checks::structured(data);
    }
);
