//! The smoke test that CI also runs on 64-bit ARM: scripts/test-cross.sh cross-builds it for
//! `aarch64-unknown-linux-gnu` and runs it under `qemu-aarch64`. It takes the native parts a
//! phone runs — SQLCipher with the vendored OpenSSL, OpenMLS and its Rust crypto — through
//! one short story on encrypted databases, and stays small so that it is quick under
//! emulation. On the build machine it runs with the other tests.

#[path = "support/clients.rs"]
mod clients;

use std::sync::Arc;

use clients::{Listener, NodeTransport, World};
use witan::client::{ClientConfig, WitanClient, WitanError};

const BODY: &str = "the first message on this machine";

/// The database file and its write-ahead log, as they are on disk.
fn on_disk(path: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn two_members_on_encrypted_databases_exchange_a_message_that_stays_unreadable_on_disk() {
    let mut w = World::new_encrypted(&["alice", "bob"]);
    w.form(0, &[1]);
    w.assert_agree(&[0, 1]);
    assert_eq!(w.info(1).members.len(), 2, "bob was admitted by vote");

    w.send(0, BODY);
    w.run_for(1_000);
    assert_eq!(w.bodies(1), [BODY], "bob decrypted alice's message");
    assert_eq!(w.bodies(0), [BODY]);

    // At rest: neither the message nor the conversation's name is in bob's files.
    w.close(1);
    let bytes = on_disk(&w.path(1));
    assert!(!contains(&bytes, BODY.as_bytes()));
    assert!(!contains(&bytes, clients::CONV.as_bytes()));

    // Another key is refused with a typed error; bob's own key opens the file again.
    let wrong = WitanClient::open(
        ClientConfig {
            database_path: w.path(1),
            identity_secret: None,
            database_key: Some(vec![0x5a; 32]),
            role: None,
        },
        Arc::new(NodeTransport::new(w.net.clone(), 1)),
        Arc::new(Listener::default()),
    )
    .unwrap_err();
    assert!(matches!(&wrong, WitanError::Storage { reason } if reason.contains("wrong key")));
    w.open(1);
    assert_eq!(w.bodies(1), [BODY]);
}
