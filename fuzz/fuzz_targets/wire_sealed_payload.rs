//! Fuzzes `witan::wire::decode_sealed` and `decode_sealed_payload` (a sealed packet's body
//! and its plaintext): never panics; what decodes validates and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use witan::wire;

fuzz_target!(
    init: {
        witan_fuzz::seeds::write("valid", &witan_fuzz::checks::decoder_seeds());
    },
    |data: &[u8]| {
        witan_fuzz::checks::decoder(data, wire::decode_sealed, wire::validate_sealed);
        witan_fuzz::checks::decoder(
            data,
            wire::decode_sealed_payload,
            wire::validate_sealed_payload,
        );
    }
);
