//! Copies of a chat message: the network, a push backlog and a live socket may each hand a
//! member the same packet. A copy is counted as a duplicate and changes nothing — in the same
//! epoch, after a commit, after a restart — and reading a chat leaves no de-duplication row
//! behind: the sender's MLS ratchet (whose key for that message is used up) and the
//! history's uniqueness already tell a copy from a new message. A copy older than the
//! sender's window of keys is refused instead (it cannot be told from a message too late
//! to read), and changes nothing either.

use witan_testing::net::Packet;

#[path = "support/clients.rs"]
mod clients;

use clients::{CONV, World};

/// Members 0 and 1 formed; member 2 (if any) stays outside. Member 0's chat `body`,
/// delivered to everyone once; its packet.
fn chatted(n: usize, body: &[u8]) -> (World, Packet) {
    let names: Vec<String> = (0..n).map(|i| format!("member-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut w = World::new(&names);
    w.form(0, &[1]);
    w.c(0).send_message(CONV.into(), body.to_vec()).unwrap();
    let chat = w.net.last().unwrap();
    w.deliver();
    assert_eq!(
        w.bodies(1),
        vec![String::from_utf8_lossy(body).into_owned()]
    );
    (w, chat)
}

/// Hands member `i` the packet again; the report as (accepted, duplicates, rejected).
fn again(w: &World, i: usize, chat: &Packet) -> (u32, u32, u32) {
    let report = w
        .receive_payloads(i, std::slice::from_ref(&chat.payload))
        .unwrap();
    (report.accepted, report.duplicates, report.rejected)
}

#[test]
fn reading_a_chat_adds_no_row_to_the_seen_packets() {
    let (mut w, _) = chatted(2, b"first");
    let seen = w.table_rows(1, "seen_packets").unwrap();
    w.c(0)
        .send_message(CONV.into(), b"second".to_vec())
        .unwrap();
    w.deliver();
    assert_eq!(w.bodies(1), vec!["first", "second"]);
    assert_eq!(w.table_rows(1, "seen_packets").unwrap(), seen);
}

#[test]
fn a_chat_delivered_again_in_its_epoch_is_a_duplicate() {
    let (w, chat) = chatted(2, b"once");
    let before = (w.history(1), w.events(1).len());
    assert_eq!(again(&w, 1, &chat), (0, 1, 0));
    assert_eq!(again(&w, 1, &chat), (0, 1, 0));
    assert_eq!((w.history(1), w.events(1).len()), before);
}

#[test]
fn a_chat_delivered_again_after_a_commit_is_a_duplicate() {
    let (mut w, chat) = chatted(3, b"before the join");
    let epoch = w.info(1).epoch;
    w.c(2).request_to_join(CONV.into()).unwrap();
    w.run_for(60_000);
    w.assert_agree(&[0, 1, 2]);
    assert!(w.info(1).epoch > epoch);
    let before = (w.history(1), w.events(1).len());
    assert_eq!(again(&w, 1, &chat), (0, 1, 0));
    assert_eq!((w.history(1), w.events(1).len()), before);
}

#[test]
fn a_chat_delivered_again_after_a_restart_is_a_duplicate() {
    let (mut w, chat) = chatted(2, b"kept on disk");
    w.close(1);
    w.open(1);
    let history = w.history(1);
    assert_eq!(again(&w, 1, &chat), (0, 1, 0));
    assert_eq!(w.history(1), history);
    // The member still reads what comes next.
    w.c(0).send_message(CONV.into(), b"next".to_vec()).unwrap();
    w.deliver();
    assert_eq!(w.bodies(1), vec!["kept on disk", "next"]);
}

#[test]
fn a_copy_from_beyond_the_senders_window_is_rejected_and_changes_nothing() {
    // A hundred later messages of the same sender push the copy's generation out of the window
    // MLS keeps (`OUT_OF_ORDER_TOLERANCE`): it can no longer be told from a message too late
    // to read, so it is refused, not counted as a duplicate — and still changes nothing.
    let (mut w, chat) = chatted(2, b"long ago");
    for i in 0..101 {
        w.c(0)
            .send_message(CONV.into(), format!("later {i}").into_bytes())
            .unwrap();
    }
    w.deliver();
    let before = (w.history(1), w.events(1).len(), w.info(1).epoch);
    assert_eq!(before.0.len(), 102);
    assert_eq!(again(&w, 1, &chat), (0, 0, 1));
    assert_eq!((w.history(1), w.events(1).len(), w.info(1).epoch), before);
}
