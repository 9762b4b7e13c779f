//! Unit tests of the world as a whole (a few members forming a real conversation).

use std::sync::Arc;

use crate::{Dir, Ignore, MemberSpec, World, engine, secret_of};

/// Members `names`, the first the creator, all admitted by vote.
fn formed(names: &[&str]) -> World {
    let mut w = World::new(names);
    let joiners: Vec<usize> = (1..names.len()).collect();
    w.form(0, &joiners);
    w
}

#[test]
fn members_form_a_conversation_by_vote_and_agree() {
    let mut w = formed(&["ann", "ben", "cat"]);
    w.assert_agree(&[0, 1, 2]);
    assert_eq!(w.info(0).members.len(), 3);
    w.send(1, "hello");
    w.run_for(1_000);
    for i in 0..3 {
        assert_eq!(w.bodies(i), vec!["hello".to_string()], "{}", w.names[i]);
    }
    assert!(!w.events(2).is_empty(), "the recorder heard the story");
}

#[test]
fn a_closed_member_gets_what_it_missed_from_its_mailbox() {
    let mut w = formed(&["ann", "ben", "cat"]);
    w.close(2);
    w.send(0, "while you were away");
    w.deliver();
    assert_eq!(w.mailbox[2].len(), 1);
    w.reopen_quietly(2);
    assert!(w.bodies(2).is_empty());
    w.deliver_mailbox(2);
    assert!(w.mailbox[2].is_empty());
    assert_eq!(w.bodies(2), vec!["while you were away".to_string()]);
}

#[test]
fn a_crashed_member_hears_nothing_and_is_not_heard() {
    let mut w = formed(&["ann", "ben", "cat"]);
    w.crash(2);
    w.send(2, "lost");
    w.send(0, "not for cat");
    w.run_for(500);
    assert_eq!(w.bodies(1), vec!["not for cat".to_string()]);
    assert_eq!(
        w.bodies(2),
        vec!["lost".to_string()],
        "its own message only"
    );
    assert!(
        w.mailbox[2].is_empty(),
        "a crash loses packets, no mailbox keeps them"
    );
}

#[test]
fn a_cut_link_loses_packets_until_it_is_restored() {
    let mut w = formed(&["ann", "ben"]);
    w.cut(0, 1);
    w.send(0, "one");
    w.run_for(500);
    assert!(w.bodies(1).is_empty());
    w.uncut(0, 1);
    w.send(0, "two");
    w.run_for(500);
    assert_eq!(w.bodies(1), vec!["two".to_string()]);
}

#[test]
fn delivery_rounds_leave_out_the_publisher_and_count_receive_calls() {
    let mut w = formed(&["ann", "ben", "cat"]);
    let before = w.receive;
    w.send(0, "round");
    assert_eq!(w.deliver_round().unwrap(), 1);
    assert_eq!(w.receive.calls - before.calls, 2, "ben and cat, not ann");
    assert_eq!(w.receive.packets - before.packets, 2);
    assert_eq!(
        w.deliver_round().unwrap(),
        0,
        "nothing was published meanwhile"
    );
    assert_eq!(w.bodies(2), vec!["round".to_string()]);
}

#[test]
fn a_fixed_secret_gives_the_same_member_id_in_memory_and_on_file() {
    let spec = |i: usize| MemberSpec::named(&format!("m{i}")).with_secret(&secret_of(i));
    let mut w: World<Ignore> = World::empty(Dir::temp(), None, Box::new(|_, _| Arc::new(Ignore)));
    let on_file = w.add_member(spec(0));
    let in_memory = w.add_member(MemberSpec {
        in_memory: true,
        ..spec(0)
    });
    let other = w.add_member(spec(1));
    for i in [on_file, in_memory, other] {
        w.open(i);
    }
    assert_eq!(w.path(in_memory), ":memory:");
    assert_eq!(w.c(on_file).member_id(), w.c(in_memory).member_id());
    assert_ne!(w.c(on_file).member_id(), w.c(other).member_id());
    assert_eq!(w.index_of_member(&w.c(other).member_id()), Some(other));
}

#[test]
fn engine_members_form_a_conversation_and_agree() {
    let mut net = engine::Net::form(3, engine::fast_settings());
    net.assert_agree(&[0, 1, 2]);
    net.send(2, b"engine hello");
    net.run_for(1_000);
    for i in 0..3 {
        assert_eq!(net.history_bodies(i).len(), 1, "node {i}");
    }
}

/// A remote that keeps what it is handed and asks to run at a fixed time.
struct Keeper {
    got: std::rc::Rc<std::cell::RefCell<Vec<Vec<u8>>>>,
    wake_at: u64,
}

impl crate::Remote for Keeper {
    fn receive(&mut self, _now: u64, packets: Vec<Vec<u8>>) {
        self.got.borrow_mut().extend(packets);
    }
    fn poll(&mut self, _now: u64) -> Option<u64> {
        Some(self.wake_at)
    }
    fn take_published(&mut self) -> Vec<(String, Vec<u8>)> {
        Vec::new()
    }
}

#[test]
fn a_remote_member_gets_every_packet_and_its_wake_up_counts() {
    let mut w = formed(&["ann", "ben"]);
    let got = std::rc::Rc::default();
    let wake_at = w.now() + 7;
    let remote = w.add_remote(
        "far",
        Box::new(Keeper {
            got: std::rc::Rc::clone(&got),
            wake_at,
        }),
    );
    w.send(0, "to everyone");
    let published = w.net.last().expect("the chat is in flight").payload;
    w.deliver();
    assert_eq!(*got.borrow(), vec![published]);
    assert_eq!(
        w.poll_all(),
        Some(wake_at),
        "the remote's wake-up is the earliest"
    );
    assert!(w.client(remote).is_none());
}
