//! Chats read one at a time, as a live socket hands them over: each `receive` call is its
//! own durable step, and what it must write is the chat's row in the history's tail (one
//! page: no index, moved into the history with the next write of the secrets). The sender's ratchet
//! that reading advanced is written to the database later, together with the next ones — at
//! the latest after 64 chats or 10 seconds (`CARRY_BOUND`), at the next `poll`, `suspend`, or any step that
//! is not a chat read — so until then the database still holds those chats' keys. That is
//! safe: a copy of such a chat, read again after a kill, meets its row in the history and is
//! a duplicate that changes nothing. Once written, the keys are gone from the database: a
//! copy can no longer be read from it.

use witan::mls::{CARRY_BOUND, Layer};
use witan_testing::net::Packet;

#[path = "support/clients.rs"]
mod clients;

use clients::{CONV, World};

/// Whether secrets are carried past a step at all: not with the caches it needs switched
/// off (`WITAN_CACHE_OFF`), and then every chat read writes its sender's ratchet.
fn carried() -> bool {
    Layer::Secrets.enabled() && Layer::Kept.enabled()
}

/// Members 0 and 1 formed; member 0 has sent `count` chats, which are still in flight.
fn chats_in_flight(count: usize) -> (World, Vec<Packet>) {
    let mut w = World::new(&["member-0", "member-1"]);
    w.form(0, &[1]);
    w.net.clear();
    for i in 0..count {
        w.c(0)
            .send_message(CONV.into(), format!("chat {i}").into_bytes())
            .unwrap();
    }
    let chats = w.net.take_all();
    assert_eq!(chats.len(), count);
    (w, chats)
}

/// Member `i` reads `chats` one per `receive` call; each is accepted.
fn read_one_by_one(w: &World, i: usize, chats: &[Packet]) {
    for chat in chats {
        let report = w
            .receive_payloads(i, std::slice::from_ref(&chat.payload))
            .unwrap();
        assert_eq!((report.accepted, report.duplicates), (1, 0));
    }
}

fn connection(w: &World, i: usize) -> rusqlite::Connection {
    rusqlite::Connection::open(w.path(i)).unwrap()
}

/// Moves member `i`'s log into its database file and empties the log.
fn empty_log(w: &World, i: usize) {
    let busy: i64 = connection(w, i)
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint was blocked");
}

/// Pages written to member `i`'s log since it was emptied (each page is one frame).
fn log_frames(w: &World, i: usize) -> u64 {
    let page: u64 = connection(w, i)
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let size = std::fs::metadata(format!("{}-wal", w.path(i)))
        .map(|m| m.len())
        .unwrap_or(0);
    // The log's header is 32 bytes; each frame is a 24-byte header and a page.
    size.saturating_sub(32) / (page + 24)
}

/// Whether member `i`'s database can still read `chat`: its history is emptied, the member
/// reopened on it, and handed the copy.
fn database_still_reads(w: &mut World, i: usize, chat: &Packet) -> bool {
    w.kill(i);
    connection(w, i)
        .execute_batch("DELETE FROM messages; DELETE FROM messages_tail;")
        .unwrap();
    w.open(i);
    w.receive_payloads(i, std::slice::from_ref(&chat.payload))
        .unwrap();
    !w.history(i).is_empty()
}

#[test]
fn a_chat_read_alone_writes_one_page_its_history_row() {
    let (w, chats) = chats_in_flight(12);
    // The first read decodes the group and may write what it finds stale.
    read_one_by_one(&w, 1, &chats[..2]);
    empty_log(&w, 1);
    read_one_by_one(&w, 1, &chats[2..]);
    assert_eq!(w.history(1).len(), 12);
    // The row in the history's tail: one page, with room for a leaf that fills up (three
    // pages with each chat when nothing is carried: the history's row, its index and the
    // secrets).
    let per_chat = if carried() { 1 } else { 3 };
    let frames = log_frames(&w, 1);
    assert!(
        frames <= per_chat * 10 + 2,
        "{frames} pages written for 10 chats"
    );
}

#[test]
fn chats_read_alone_then_a_kill_come_back_as_duplicates_and_change_nothing() {
    let (mut w, chats) = chats_in_flight(5);
    read_one_by_one(&w, 1, &chats);
    let (history, events) = (w.history(1), w.events(1).len());
    w.kill(1);
    w.open(1);
    for chat in &chats {
        let report = w
            .receive_payloads(1, std::slice::from_ref(&chat.payload))
            .unwrap();
        assert_eq!((report.accepted, report.duplicates), (0, 1));
    }
    assert_eq!((w.history(1), w.events(1).len()), (history, events));
    // The member still reads what comes next.
    w.c(0).send_message(CONV.into(), b"next".to_vec()).unwrap();
    w.deliver();
    assert_eq!(w.history(1).len(), 6);
    assert_eq!(w.bodies(1).last().map(String::as_str), Some("next"));
}

#[test]
fn a_poll_after_chats_read_alone_removes_their_keys_from_the_database() {
    let (mut w, chats) = chats_in_flight(3);
    read_one_by_one(&w, 1, &chats);
    w.c(1).poll().unwrap();
    assert!(!database_still_reads(&mut w, 1, &chats[0]));
}

#[test]
fn a_suspend_after_chats_read_alone_removes_their_keys_from_the_database() {
    let (mut w, chats) = chats_in_flight(3);
    read_one_by_one(&w, 1, &chats);
    w.c(1).suspend();
    assert!(!database_still_reads(&mut w, 1, &chats[1]));
}

#[test]
fn closing_a_client_after_chats_read_alone_removes_their_keys_from_the_database() {
    let (mut w, chats) = chats_in_flight(3);
    read_one_by_one(&w, 1, &chats);
    w.close(1);
    w.open(1);
    assert!(!database_still_reads(&mut w, 1, &chats[2]));
}

#[test]
fn the_keys_of_chats_read_alone_stay_in_the_database_for_a_bounded_number_of_chats() {
    let (mut w, chats) = chats_in_flight(CARRY_BOUND.chats as usize + 1);
    read_one_by_one(&w, 1, &chats);
    assert!(!database_still_reads(&mut w, 1, &chats[0]));
}

#[test]
fn the_keys_of_chats_read_alone_stay_in_the_database_for_a_bounded_time() {
    let (mut w, chats) = chats_in_flight(2);
    read_one_by_one(&w, 1, &chats[..1]);
    w.clock.set(w.clock.now() + CARRY_BOUND.ms + 1);
    read_one_by_one(&w, 1, &chats[1..]);
    assert!(!database_still_reads(&mut w, 1, &chats[0]));
}

#[test]
fn without_a_poll_the_database_still_reads_the_last_chats_read_alone() {
    // The window the other tests close: the keys of the last chats read stay in the
    // database until something writes them, and nothing is read twice for it.
    let (mut w, chats) = chats_in_flight(3);
    read_one_by_one(&w, 1, &chats);
    let reads = database_still_reads(&mut w, 1, &chats[2]);
    assert_eq!(reads, carried());
    if reads {
        assert_eq!(w.bodies(1), vec!["chat 2"]);
    }
}

#[test]
fn the_history_tail_holds_the_chats_of_one_carry_at_most() {
    let (mut w, chats) = chats_in_flight(5);
    read_one_by_one(&w, 1, &chats[..3]);
    let rows = |w: &World, table: &str| w.table_rows(1, table).unwrap();
    if carried() {
        assert_eq!((rows(&w, "messages_tail"), rows(&w, "messages")), (3, 0));
    }
    // The carry ends unwritten; the first step of the next one moves what the tail holds
    // into the history (its own chat too), the second adds its own.
    w.kill(1);
    w.open(1);
    read_one_by_one(&w, 1, &chats[3..]);
    let tail = if carried() { 1 } else { 0 };
    assert_eq!(
        (rows(&w, "messages_tail"), rows(&w, "messages")),
        (tail, 5 - tail)
    );
    let bodies: Vec<String> = (0..5).map(|i| format!("chat {i}")).collect();
    assert_eq!(w.bodies(1), bodies);
    let seqs: Vec<u64> = w.history(1).iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
}
