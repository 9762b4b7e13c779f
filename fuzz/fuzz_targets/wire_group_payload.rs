//! Fuzzes `witan::wire::decode_group_payload`: never panics; what decodes validates and
//! round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use witan::wire;

fuzz_target!(
    init: {
        witan_fuzz::seeds::write("valid", &witan_fuzz::checks::decoder_seeds());
    },
    |data: &[u8]| {
        witan_fuzz::checks::decoder(data, wire::decode_group_payload, wire::validate_group_payload);
    }
);
