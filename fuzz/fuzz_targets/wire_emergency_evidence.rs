//! Fuzzes `witan::wire::decode_emergency_evidence` (the evidence an emergency removal carries,
//! which every member decodes before checking its signatures): never panics; what decodes
//! validates and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use witan::wire;

fuzz_target!(
    init: {
        witan_fuzz::seeds::write("valid", &witan_fuzz::checks::decoder_seeds());
    },
    |data: &[u8]| {
        witan_fuzz::checks::decoder(
            data,
            wire::decode_emergency_evidence,
            wire::validate_emergency_evidence,
        );
    }
);
