//! The properties every decoder target checks: decoding never panics; whatever decodes also
//! passes the matching `validate_*`; and its re-encoding decodes again to the same message.

use std::fmt::Debug;

use witan::wire::{self, WireError};

/// Runs `decode` on `data`; on success checks `validate` and the round trip.
pub fn decoder<M>(
    data: &[u8],
    decode: fn(&[u8]) -> Result<M, WireError>,
    validate: fn(&M) -> Result<(), WireError>,
) where
    M: prost::Message + PartialEq + Debug,
{
    let Ok(m) = decode(data) else { return };
    if let Err(e) = validate(&m) {
        panic!("decoded message fails validation: {e}\n{m:?}");
    }
    let again = wire::encode(&m);
    match decode(&again) {
        Ok(m2) => assert_eq!(m, m2, "re-encoding changed the message"),
        Err(e) => panic!("re-encoded message does not decode: {e}\n{m:?}"),
    }
}

/// Seeds for the decoder targets: the samples, plus the MLS fixture's real messages wrapped
/// in the messages that carry them.
pub fn decoder_seeds() -> Vec<Vec<u8>> {
    let mut v = witan_wire::samples::all_encoded();
    let fx = crate::mls_fixture::get();
    let welcome = wire::WelcomePacket {
        welcome: fx.welcome.clone(),
        sync: wire::encode(&witan_wire::samples::sync()),
        joiners: vec![vec![9; 20]],
        commit: Default::default(),
    };
    let join = wire::JoinRequest {
        key_package: fx.key_package.clone(),
        requested_at_ms: 1_700_000_000_000,
    };
    v.push(wire::encode(&welcome));
    v.push(wire::encode(&join));
    let conv = "conversation-1";
    v.push(wire::encode(&wire::Envelope::new(
        conv,
        [1u8; 20],
        wire::PacketKind::Welcome,
        wire::encode(&welcome),
    )));
    v.push(wire::encode(&wire::Envelope::new(
        conv,
        [2u8; 20],
        wire::PacketKind::JoinRequest,
        wire::encode(&join),
    )));
    v.push(wire::encode(&wire::Envelope::new(
        conv,
        [3u8; 20],
        wire::PacketKind::Group,
        fx.application.clone(),
    )));
    v
}
