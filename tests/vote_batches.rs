//! Sealed votes at a client: those that arrive together are checked as one batch, and a
//! packet the client has read already costs no signature check when it comes again (the live
//! relay and a catch-up from the store often bring the same packets). The only test of its
//! binary, because it reads the process-wide signature counter.

#[path = "support/clients.rs"]
mod clients;

use clients::{CONV, World};
use witan::client::InboundPacket;
use witan::wire;
use witan_engine::metrics;

/// Runs the world until it is quiet, recording what member `watched` receives.
fn run_recording(w: &mut World, watched: usize, horizon_ms: u64) -> Vec<InboundPacket> {
    let mut got = Vec::new();
    let end = w.now() + horizon_ms;
    for _ in 0..10_000 {
        let taken = w
            .deliver_round_by(|i, c, packets| {
                if i == watched {
                    got.extend(packets.iter().cloned());
                }
                c.receive(packets).map(|_| 1)
            })
            .unwrap();
        let next = w.poll_all();
        if taken > 0 {
            continue;
        }
        match next {
            Some(at) if at > w.now() && at <= end => w.set_now(at),
            Some(at) if at <= w.now() => {}
            _ => return got,
        }
    }
    panic!("the world did not settle");
}

fn is_sealed(p: &InboundPacket) -> bool {
    wire::decode_envelope(&p.payload).is_ok_and(|e| e.kind == wire::PacketKind::Sealed as i32)
}

#[test]
fn sealed_votes_a_member_has_seen_cost_no_signature_check_when_they_come_again() {
    let mut w = World::new(&["ann", "bob", "cat", "dan", "eve", "fay"]);
    w.form(0, &[1, 2, 3, 4, 5]);
    w.run_for(10_000);
    let fay = w.c(5).member_id();
    w.c(1).propose_removal(CONV.into(), fay.clone()).unwrap();
    let got = run_recording(&mut w, 0, 120_000);
    assert!(
        !w.info(0).members.iter().any(|m| m.member_id == fay),
        "the removal went through"
    );
    let count = got.iter().filter(|p| is_sealed(p)).count();
    assert!(count >= 4, "ann received the votes sealed ({count})");

    // Everything again, in one call each: the packets that are not sealed are duplicates
    // (their seen marks); the sealed ones leave no mark and are read again, but change
    // nothing and cost not one signature check (a vote held already or on a resolved
    // proposal counts for nothing; a round message held already or of a past epoch neither).
    let (sealed, others): (Vec<_>, Vec<_>) = got.into_iter().partition(is_sealed);
    let before = metrics::counters();
    let report = w.c(0).receive(others.clone()).unwrap();
    assert_eq!(report.duplicates as usize, others.len());
    let state = w.c(0).engine_state(CONV.into()).unwrap();
    let report = w.c(0).receive(sealed.clone()).unwrap();
    assert_eq!(report.rejected, 0, "copies are not refused");
    assert_eq!(w.c(0).engine_state(CONV.into()).unwrap(), state);
    let spent = metrics::counters().since(&before);
    assert_eq!(
        spent.signatures, 0,
        "signatures checked for packets already seen"
    );
}
