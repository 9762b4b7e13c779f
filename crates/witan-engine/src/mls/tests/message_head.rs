//! A packet's MLS header is read for routing without decoding the message
//! (`key_package::message_head`): it must name the group and epoch the full decoder finds, for
//! both kinds of protocol message, and refuse what is not one.

use super::*;
use crate::mls::key_package::parse_message;
use openmls::prelude::{MlsMessageBodyIn, ProtocolMessage};

/// Group id and epoch as OpenMLS's full decoder reads them.
fn fully_decoded(bytes: &[u8]) -> (Vec<u8>, u64) {
    let pm = match parse_message(bytes).unwrap().extract() {
        MlsMessageBodyIn::PublicMessage(m) => ProtocolMessage::from(m),
        MlsMessageBodyIn::PrivateMessage(m) => ProtocolMessage::from(m),
        _ => panic!("not a protocol message"),
    };
    (pm.group_id().as_slice().to_vec(), pm.epoch().as_u64())
}

#[test]
fn the_header_of_a_chat_and_of_a_commit_names_the_group_and_epoch_the_full_decoder_finds() {
    let (mut a, _b, c) = three_members();
    let chat = a.encrypt(b"private");
    let commit = a.commit(&[], &[c.mid()]).commit;
    for message in [&chat, &commit] {
        assert_eq!(
            Group::message_header(message).unwrap(),
            fully_decoded(message)
        );
    }
    assert_eq!(Group::message_header(&chat).unwrap(), (GID.to_vec(), 1));
}

#[test]
fn a_welcome_a_key_package_a_short_header_or_another_version_is_refused() {
    let (a, _b, _c, welcome) = three_members_with_welcome();
    let key_package = {
        let p = MlsProvider::new(&a.kv);
        crate::mls::new_key_package(&p, &Identity::from_secret(&[41; 32]).unwrap()).unwrap()
    };
    for not_protocol in [&welcome, &key_package] {
        assert!(matches!(
            Group::message_header(not_protocol),
            Err(MlsError::Malformed(_))
        ));
    }
    let mut a = a;
    let chat = a.encrypt(b"x");
    // Cut inside the group id (after version, format and its length: 5 bytes).
    let short = &chat[..chat.len().min(10)];
    assert!(matches!(
        Group::message_header(short),
        Err(MlsError::Malformed(_))
    ));
    let mut other_version = chat.clone();
    other_version[1] = 2;
    assert!(matches!(
        Group::message_header(&other_version),
        Err(MlsError::Malformed(_))
    ));
    let too_large = vec![0u8; crate::mls::key_package::MAX_MLS_MESSAGE_BYTES + 1];
    assert!(matches!(
        Group::message_header(&too_large),
        Err(MlsError::Malformed(_))
    ));
}
