//! Votes outside MLS: a member's vote, prevote and precommit travel sealed under the epoch's
//! key and count through their own signature. Each test ends with what a member holds: a
//! genuine vote counts once wherever it arrives, one in another member's name never does and
//! changes nothing, and a vote sealed just before a commit still counts after it.

mod support;

use support::{Net, fast_settings};
use witan::mls::Layer;
use witan::protocol::{Action, ProtocolError};
use witan::wire::{self, group_payload::Content, sealed_payload::Content as Sealed};

/// A removal of member 3 proposed by member 0, known to `knowers` only (member 0 crafts it
/// beside its engine, so it does not hold it either). Its id.
fn proposal_known_to(net: &mut Net, knowers: &[usize]) -> u64 {
    proposal_packet_known_to(net, knowers).0
}

/// [`proposal_known_to`], with the proposal's packet (to deliver to others later).
fn proposal_packet_known_to(net: &mut Net, knowers: &[usize]) -> (u64, Vec<u8>) {
    let p = net.make_proposal(
        0,
        Action::Remove {
            member: net.nodes[3].id(),
        },
    );
    let pid = p.proposal_id;
    let packet = net.craft(0, Content::Proposal(p));
    for &i in knowers {
        net.receive(i, &packet).unwrap();
    }
    (pid, packet)
}

/// `vote` with the digest of proposal `pid` (as member 1 holds it).
fn signed(net: &Net, pid: u64, vote: wire::Vote) -> Sealed {
    let digest = net.nodes[1].conv().ballots().by_id(pid).unwrap().digest();
    Sealed::Vote(wire::SignedVote {
        proposal_digest: digest.to_vec(),
        vote: Some(vote),
    })
}

/// Feeds `packet` to member `i`, which must refuse it and change nothing. The error.
fn refused(net: &mut Net, i: usize, packet: &[u8]) -> ProtocolError {
    let before = net.snapshot(i);
    let Err(e) = net.receive(i, packet) else {
        panic!("member {i} took the packet");
    };
    assert_eq!(net.snapshot(i), before, "member {i} changed nothing");
    e
}

fn holds_vote_of(net: &Net, at: usize, pid: u64, voter: usize) -> bool {
    let voter = net.nodes[voter].id();
    net.nodes[at]
        .conv()
        .ballots()
        .by_id(pid)
        .is_some_and(|b| b.has_voted(&voter))
}

#[test]
fn a_vote_leaves_as_a_sealed_packet_and_counts_at_every_member() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    // Receiving the proposal, member 1 casts its automatic vote.
    let pid = proposal_known_to(&mut net, &[1, 2, 3]);
    let votes: Vec<wire::PacketKind> = net
        .in_flight_kinds_from(1, 2)
        .into_iter()
        .filter(|(_, c)| matches!(c, Content::Vote(v) if v.proposal_id == pid))
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(
        votes,
        vec![wire::PacketKind::Sealed],
        "one vote, sealed, no MLS one"
    );
    assert!(!holds_vote_of(&net, 2, pid, 1));
    net.deliver();
    for i in [2, 3] {
        assert!(
            holds_vote_of(&net, i, pid, 1),
            "member {i} counted the vote"
        );
    }
}

#[test]
fn a_sealed_vote_in_another_members_name_is_refused_and_changes_nothing() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    let pid = proposal_known_to(&mut net, &[1, 2, 3]);
    net.drop_in_flight();
    // Member 2 seals member 1's vote with its choice flipped: the signature no longer holds.
    let mut forged = net.sign_vote(1, 1, pid, true);
    forged.vote = false;
    let packet = net.seal(2, 2, signed(&net, pid, forged.clone()));
    assert!(matches!(
        refused(&mut net, 3, &packet),
        ProtocolError::Vote(_)
    ));
    assert!(!holds_vote_of(&net, 3, pid, 1));
    // The same forgery where the proposal has not arrived yet: checked against the digest it
    // names, refused there too, and nothing waits in member 1's name.
    assert!(matches!(
        refused(&mut net, 0, &packet),
        ProtocolError::Vote(_)
    ));
}

#[test]
fn a_sealed_vote_that_arrives_before_its_proposal_counts_once_the_proposal_does() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    let (pid, proposal) = proposal_packet_known_to(&mut net, &[1]);
    net.drop_in_flight();
    let vote = net.sign_vote(1, 1, pid, false);
    let digest = net.nodes[1].conv().ballots().by_id(pid).unwrap().digest();
    let packet = net.seal(
        1,
        1,
        Sealed::Vote(wire::SignedVote {
            proposal_digest: digest.to_vec(),
            vote: Some(vote),
        }),
    );
    net.receive(2, &packet).unwrap();
    assert!(!holds_vote_of(&net, 2, pid, 1), "no proposal yet");
    net.receive(2, &proposal).unwrap();
    assert!(
        holds_vote_of(&net, 2, pid, 1),
        "counted when the proposal came"
    );
}

#[test]
fn a_sealed_vote_replayed_under_another_sender_changes_nothing() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    let pid = proposal_known_to(&mut net, &[1, 2, 3]);
    net.drop_in_flight();
    let me = net.nodes[1].id();
    let vote = net.nodes[1]
        .conv()
        .ballots()
        .by_id(pid)
        .unwrap()
        .signed_votes()
        .find(|v| witan::mls::MemberId::from_public_key(&v.vote_owner) == me)
        .cloned()
        .unwrap();
    let genuine = net.seal(1, 1, signed(&net, pid, vote));
    net.receive(3, &genuine).unwrap();
    assert!(holds_vote_of(&net, 3, pid, 1));
    let before = net.snapshot(3);
    // The same sealed bytes under member 2's name in the envelope: a replay, not a new vote.
    let mut env = wire::decode_envelope(&genuine).unwrap();
    env.sender = net.nodes[2].id().as_bytes().to_vec();
    net.receive(3, &wire::encode(&env)).unwrap();
    assert_eq!(net.snapshot(3), before);
    assert_eq!(
        net.nodes[3]
            .conv()
            .ballots()
            .by_id(pid)
            .unwrap()
            .votes()
            .count(),
        3,
        "the owner's vote, member 3's own and member 1's"
    );
}

#[test]
fn a_vote_naming_another_proposals_digest_is_refused() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    let pid = proposal_known_to(&mut net, &[1, 2, 3]);
    net.drop_in_flight();
    let vote = net.sign_vote(2, 1, pid, false);
    let packet = net.seal(
        2,
        2,
        Sealed::Vote(wire::SignedVote {
            proposal_digest: vec![0x42; 32],
            vote: Some(vote),
        }),
    );
    assert!(matches!(
        refused(&mut net, 3, &packet),
        ProtocolError::InvalidInput(_)
    ));
}

#[test]
fn a_packet_sealed_outside_the_group_or_altered_is_refused() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    let pid = proposal_known_to(&mut net, &[1, 2]);
    let vote = net.sign_vote(1, 1, pid, false);
    let packet = net.seal(1, 1, signed(&net, pid, vote));
    let mut env = wire::decode_envelope(&packet).unwrap();
    let mut body = wire::decode_sealed(&env.body).unwrap();
    body.ciphertext[3] ^= 0x10;
    env.body = wire::encode(&body).into();
    env.packet_id = wire::packet_id(&env.body).to_vec();
    assert!(matches!(
        refused(&mut net, 0, &wire::encode(&env)),
        ProtocolError::Mls(_)
    ));
    // Garbage in place of the sealed body.
    let garbage = wire::Envelope::new(
        support::CONV,
        net.nodes[1].id().as_bytes(),
        wire::PacketKind::Sealed,
        vec![0xff; 40],
    );
    refused(&mut net, 0, &wire::encode(&garbage));
}

/// A group of seven; member 0's removal of member 3 known to members 1 and 2 only, nothing
/// in flight. Its id, and member 0's epoch.
fn seven_with_a_proposal_known_to_two() -> (Net, u64, u64) {
    let mut net = Net::form(7, fast_settings());
    net.run_for(10_000);
    let pid = proposal_known_to(&mut net, &[1, 2]);
    net.drop_in_flight();
    let epoch = net.nodes[0].conv().epoch();
    (net, pid, epoch)
}

#[test]
fn a_vote_sealed_before_a_commit_opens_after_it_until_its_epoch_is_too_old() {
    let (mut net, pid, sealed_at) = seven_with_a_proposal_known_to_two();
    // A forgery: whether it opened shows in the error (a bad vote, not a stale packet).
    let mut forged = net.sign_vote(1, 1, pid, true);
    forged.vote = false;
    let packet = net.seal(1, 1, signed(&net, pid, forged));
    let mut removed = 6;
    let mut tries = 0;
    let (mut opened, mut stale) = (0, 0);
    while net.nodes[0].conv().epoch() < sealed_at + 4 {
        let target = net.nodes[removed].id();
        net.act(0, |c, ctx| c.propose_removal(ctx, target).map(|(_, o)| o))
            .unwrap();
        net.run_for(60_000);
        removed -= 1;
        tries += 1;
        assert!(tries < 4, "removals commit");
        let epoch = net.nodes[0].conv().epoch();
        let outcome = net.receive(0, &packet);
        if epoch <= sealed_at + witan::mls::MAX_PAST_EPOCHS as u64 {
            assert!(
                matches!(outcome, Err(ProtocolError::Vote(_))),
                "epoch {epoch}: opened and refused as a forgery, got {outcome:?}"
            );
            opened += 1;
        } else {
            assert!(
                matches!(outcome, Err(ProtocolError::Stale)),
                "epoch {epoch}: too old"
            );
            stale += 1;
        }
    }
    assert!(
        opened > 0 && stale > 0,
        "both sides of the window were tried"
    );
    // The keys kept are those of the current epoch and the last MAX_PAST_EPOCHS, stored with
    // the state.
    let conv = net.nodes[0].conv();
    let epoch = conv.epoch();
    let kept: Vec<u64> = (epoch - witan::mls::MAX_PAST_EPOCHS as u64..=epoch).collect();
    assert_eq!(conv.sealing_epochs(), kept);
    let back = witan::protocol::Conversation::from_bytes(&conv.to_bytes()).unwrap();
    assert_eq!(back.sealing_epochs(), kept);
}

/// Sealed votes of `voters` on proposal `pid`, each sealed by its own voter.
fn sealed_votes(net: &Net, pid: u64, voters: &[usize], approve: bool) -> Vec<Vec<u8>> {
    voters
        .iter()
        .map(|&v| {
            let vote = net.sign_vote(v, v, pid, approve);
            net.seal(v, v, signed(net, pid, vote))
        })
        .collect()
}

/// A group of six; member 0's removal of member 3 known to all the others, nothing in flight.
fn six_with_a_proposal() -> (Net, u64) {
    let mut net = Net::form(6, fast_settings());
    net.run_for(10_000);
    let pid = proposal_known_to(&mut net, &[1, 2, 3, 4, 5]);
    net.drop_in_flight();
    (net, pid)
}

#[test]
fn sealed_votes_that_arrive_together_are_checked_as_one_batch_and_each_counts_once() {
    let (mut net, pid) = six_with_a_proposal();
    let packets = sealed_votes(&net, pid, &[1, 2, 3, 4], true);
    // With the cache layer `votes` off (WITAN_CACHE_OFF) nothing is batched, and every
    // outcome below must be the same.
    let batched = if Layer::Votes.enabled() { 4 } else { 0 };
    assert_eq!(
        net.check_sealed_votes(5, &packets),
        batched,
        "one batch proved all four"
    );
    assert_eq!(net.nodes[5].conv().proved_votes(), batched);
    // The batch opened them: each packet's vote is taken from what it opened when the packet
    // is applied, not opened again.
    assert_eq!(net.nodes[5].conv().opened_votes(), batched);
    for (applied, p) in packets.iter().enumerate() {
        net.receive(5, p).unwrap();
        assert_eq!(
            net.nodes[5].conv().opened_votes(),
            batched.saturating_sub(applied + 1)
        );
    }
    for voter in 1..=4 {
        assert!(
            holds_vote_of(&net, 5, pid, voter),
            "vote of {voter} counted"
        );
    }
    // A vote proved by the batch counts once: fed again, it changes nothing.
    let before = net.snapshot(5);
    net.nodes[5].seen.clear();
    net.receive(5, &packets[0]).unwrap();
    assert_eq!(net.snapshot(5), before);
    // The next batch starts from nothing: what was proved is not kept beyond it.
    assert_eq!(net.check_sealed_votes(5, &packets[..1]), 0);
    assert_eq!(net.nodes[5].conv().proved_votes(), 0);
    assert_eq!(net.nodes[5].conv().opened_votes(), 0);
}

#[test]
fn a_vote_a_batch_opened_is_refused_as_stale_once_its_epoch_is_too_old_like_one_opened_late() {
    let (mut net, pid, sealed_at) = seven_with_a_proposal_known_to_two();
    let packets = sealed_votes(&net, pid, &[1, 2], true);
    let batched = if Layer::Votes.enabled() { 2 } else { 0 };
    assert_eq!(net.check_sealed_votes(0, &packets), batched);
    // The group moves on by removals while the packets wait; no other batch comes.
    let mut removed = 6;
    while net.nodes[0].conv().epoch() <= sealed_at + witan::mls::MAX_PAST_EPOCHS as u64 {
        assert!(removed > 3, "removals commit");
        let target = net.nodes[removed].id();
        net.act(0, |c, ctx| c.propose_removal(ctx, target).map(|(_, o)| o))
            .unwrap();
        net.run_for(60_000);
        removed -= 1;
    }
    assert_eq!(
        net.nodes[0].conv().opened_votes(),
        batched,
        "what the batch opened is still kept"
    );
    let before = net.snapshot(0);
    for p in &packets {
        assert!(
            matches!(net.receive(0, p), Err(ProtocolError::Stale)),
            "the epoch's key is gone: stale, opened or not"
        );
    }
    assert_eq!(net.snapshot(0), before);
}

#[test]
fn a_packet_that_differs_from_one_a_batch_opened_is_not_taken_for_it() {
    let (mut net, pid) = six_with_a_proposal();
    let packets = sealed_votes(&net, pid, &[1, 2], true);
    let batched = if Layer::Votes.enabled() { 2 } else { 0 };
    assert_eq!(net.check_sealed_votes(5, &packets), batched);
    // The same envelope with one byte of its sealed body flipped: its own bytes are opened
    // (and refused), not the vote the batch opened from the original.
    let mut env = wire::decode_envelope(&packets[0]).unwrap();
    let mut body = env.body.to_vec();
    let last = body.len() - 1;
    body[last] ^= 1;
    env.body = body.into();
    let altered = wire::encode(&env);
    let before = net.snapshot(5);
    assert!(
        net.receive(5, &altered).is_err(),
        "the altered packet is refused"
    );
    assert_eq!(net.snapshot(5), before);
    assert_eq!(net.nodes[5].conv().opened_votes(), batched);
    for p in &packets {
        net.receive(5, p).unwrap();
    }
    for voter in [1, 2] {
        assert!(
            holds_vote_of(&net, 5, pid, voter),
            "vote of {voter} counted"
        );
    }
}

#[test]
fn a_forged_vote_among_votes_that_arrive_together_is_refused_alone_and_the_others_count() {
    let (mut net, pid) = six_with_a_proposal();
    let mut packets = sealed_votes(&net, pid, &[1, 3, 4], true);
    let digest = *net.nodes[1].conv().ballots().by_id(pid).unwrap().digest();
    // Member 2 seals member 1's vote flipped. As it is, its hash no longer matches its
    // fields: the batch passes it over (its packet will be refused) and proves the rest.
    let mut flipped = net.sign_vote(1, 1, pid, true);
    flipped.vote = false;
    let stale_hash = net.seal(2, 2, signed(&net, pid, flipped.clone()));
    let mut with_it = packets.clone();
    with_it.insert(1, stale_hash);
    let batched = if Layer::Votes.enabled() { 3 } else { 0 };
    assert_eq!(net.check_sealed_votes(5, &with_it), batched);
    // With its hash made over the flipped fields, only the signature is wrong: then the
    // batch cannot pass, and proves nothing.
    flipped.vote_hash = wire::vote_hash(support::CONV, &digest, &flipped).to_vec();
    let forged = net.seal(2, 2, signed(&net, pid, flipped));
    packets.insert(1, forged.clone());
    assert_eq!(
        net.check_sealed_votes(5, &packets),
        0,
        "the batch proves nothing"
    );
    assert_eq!(net.nodes[5].conv().proved_votes(), 0);
    for p in packets.iter().filter(|p| **p != forged) {
        net.receive(5, p).unwrap();
    }
    assert!(matches!(
        refused(&mut net, 5, &forged),
        ProtocolError::Vote(_)
    ));
    for voter in [1, 3, 4] {
        assert!(
            holds_vote_of(&net, 5, pid, voter),
            "vote of {voter} counted"
        );
    }
    let voter1 = net.nodes[1].id();
    let ballot = net.nodes[5].conv().ballots().by_id(pid).unwrap();
    assert!(ballot.has_voted(&voter1));
    let values: Vec<bool> = ballot.votes().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        vec![true; 5],
        "the owner, member 5 itself and the three voters, all yes: the forgery changed no vote"
    );
}
