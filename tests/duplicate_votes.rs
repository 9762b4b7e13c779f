//! Copies of sealed votes, prevotes and precommits: the network, a push backlog and a live
//! socket may each hand a member the same packet. Reading them leaves no de-duplication row
//! (a commit brings each member one of each per member, and their marks were most of what a
//! large group's removal wrote): a copy is the same vote again, which the ballot box or the
//! round counts once. So a copy changes nothing — while its proposal is open, once a commit
//! resolved it, and after a restart.

use witan::client::InboundPacket;
use witan::wire::{self, PacketKind};

#[path = "support/clients.rs"]
mod clients;

use clients::{CONV, World};

/// The packets member 1 was handed, by kind (a copy of each sealed one), and how many it
/// sent that were not sealed.
#[derive(Default)]
struct Handed {
    sealed: Vec<Vec<u8>>,
    others: usize,
    sent_others: usize,
}

fn is_sealed(payload: &[u8]) -> bool {
    wire::decode_envelope(payload).is_ok_and(|e| e.kind == PacketKind::Sealed as i32)
}

/// Counts member 1's packets in flight that are not sealed (each is in flight for one round).
fn note_sent(w: &World, handed: &mut Handed) {
    let in_flight = w.net.take_all();
    handed.sent_others += in_flight
        .iter()
        .filter(|p| p.from == 1 && !is_sealed(&p.payload))
        .count();
    for p in in_flight {
        w.net.inject(p);
    }
}

/// Five members, formed.
fn formed() -> World {
    let mut w = World::new(&["m0", "m1", "m2", "m3", "m4"]);
    w.form(0, &[1, 2, 3, 4]);
    w
}

/// Member 0 proposes to remove member 4.
fn propose(w: &World) -> u64 {
    let gone = w.c(4).member_id();
    w.c(0).propose_removal(CONV.into(), gone).unwrap()
}

/// One step of the world: delivery rounds (each member's packets of a round in one
/// `receive` call) until nothing is in flight, noting what member 1 is handed; then a poll of
/// every member, and the clock moved to the next wake-up if nothing was sent.
fn step(w: &mut World, handed: &mut Handed) {
    while {
        note_sent(w, handed);
        w.deliver_round_by(|i, c, packets| {
            if i == 1 {
                note(handed, &packets);
            }
            c.receive(packets).map(|_| 1)
        })
        .unwrap()
            > 0
    } {}
    let next = w.poll_all();
    if w.net.in_flight() == 0
        && let Some(at) = next
    {
        w.set_now(at.max(w.now() + 1));
    }
}

/// [`formed`] and [`propose`], run until member 1 sees the removal done; what member 1 was
/// handed meanwhile.
fn removal_watched_by_1(w: &mut World) -> Handed {
    propose(w);
    let mut handed = Handed::default();
    for _ in 0..1_000 {
        step(w, &mut handed);
        if w.info(1).members.len() == 4 {
            note_sent(w, &mut handed);
            return handed;
        }
    }
    panic!("the removal did not complete");
}

fn note(handed: &mut Handed, packets: &[InboundPacket]) {
    for p in packets {
        if is_sealed(&p.payload) {
            handed.sealed.push(p.payload.clone());
        } else {
            handed.others += 1;
        }
    }
}

/// Hands member `i` the packet again: the report as (accepted, duplicates, rejected), and
/// whether its stored state stayed as it was.
fn again(w: &World, i: usize, payload: &[u8]) -> ((u32, u32, u32), bool) {
    let before = w.c(i).engine_state(CONV.into()).unwrap();
    let report = w.receive_payloads(i, &[payload.to_vec()]).unwrap();
    let after = w.c(i).engine_state(CONV.into()).unwrap();
    (
        (report.accepted, report.duplicates, report.rejected),
        before == after,
    )
}

/// Hands member 1 a copy of each sealed packet it was handed: its stored state stays as it
/// was and it is not refused (a copy of a vote whose proposal is resolved counts for
/// nothing; one addressed to another member, or of a round of a past epoch, is passed over as
/// the first was), and the members still agree.
fn copies_change_nothing(w: &mut World, handed: &Handed) {
    // What is due now runs first (the last step may have moved the clock), so that a change
    // below can only come from a copy.
    w.poll_all();
    for payload in &handed.sealed {
        let ((_, _, rejected), unchanged) = again(w, 1, payload);
        assert!(unchanged, "a copy changed the stored state");
        assert_eq!(rejected, 0, "a copy is not refused");
    }
    w.run_for(10_000);
    w.assert_agree(&[0, 1, 2, 3]);
}

#[test]
fn a_removals_sealed_votes_leave_no_row_in_the_seen_packets() {
    let mut w = formed();
    let seen = w.table_rows(1, "seen_packets").unwrap();
    let handed = removal_watched_by_1(&mut w);
    // Votes of the other voters, and prevotes and precommits.
    assert!(handed.sealed.len() >= 3, "{} sealed", handed.sealed.len());
    // A mark for each packet member 1 read or sent that was not sealed, at most.
    let marked = w.table_rows(1, "seen_packets").unwrap() - seen;
    let others = handed.others + handed.sent_others;
    assert!(
        marked <= others as i64,
        "{marked} rows for {others} packets not sealed ({} sealed)",
        handed.sealed.len()
    );
}

#[test]
fn a_copy_of_a_sealed_vote_changes_nothing_once_its_proposal_is_resolved() {
    let mut w = formed();
    let handed = removal_watched_by_1(&mut w);
    copies_change_nothing(&mut w, &handed);
}

#[test]
fn a_copy_of_a_sealed_vote_changes_nothing_after_a_restart() {
    let mut w = formed();
    let handed = removal_watched_by_1(&mut w);
    w.kill(1);
    w.open(1);
    copies_change_nothing(&mut w, &handed);
}

#[test]
fn a_copy_of_a_vote_while_its_proposal_is_open_is_a_duplicate() {
    let mut w = formed();
    propose(&w);
    let mut handed = Handed::default();
    for _ in 0..1_000 {
        if !handed.sealed.is_empty() {
            break;
        }
        step(&mut w, &mut handed);
    }
    let vote = handed.sealed.first().expect("a member votes").clone();
    // What is due now runs first (the last step may have moved the clock).
    w.poll_all();
    assert_eq!(w.info(1).members.len(), 5, "the proposal is still open");
    for _ in 0..2 {
        assert_eq!(again(&w, 1, &vote), ((0, 1, 0), true));
    }
}
