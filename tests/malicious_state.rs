//! A malicious member or outsider against what a member stores and against joiners (issue
//! #17, the protocol audit): the ballot box, candidates of other rounds and the join queue
//! filled to their bounds, an add whose key package expired before its commit, a welcome for
//! another MLS group and a conversation sync not from the certifier. Packets are crafted with
//! the crate's public `wire`, `protocol` and `mls` modules (and OpenMLS for key packages);
//! `docs/security.md` maps the audit's findings to these tests.

#[path = "support/attack.rs"]
mod attack;
mod support;

use attack::*;
use support::{CONV, Net, fast_settings};
use witan::protocol::{Action, BallotError, Conversation, ProtocolError};
use witan::wire::{self, group_payload::Content};
use witan_testing::joining::MissedWelcome;

/// A join request of a fresh identity whose key package's lifetime ends at `not_after_s`
/// (seconds), built with OpenMLS as any outsider can.
fn short_lived_join_request(now_ms: u64, not_after_s: u64) -> Vec<u8> {
    join_request_of(&[77; 32], now_ms, Some(not_after_s))
}

/// Audit H5, D-40 (T6): an outsider's add is approved while its key package is valid and
/// reaches the commit after the key package's lifetime ended. It is resolved but dropped,
/// and a removal approved beside it is committed: nothing blocks later commits.
#[test]
fn an_approved_add_whose_key_package_expired_does_not_block_later_commits() {
    let mut net = Net::new(4);
    // Clocks at the real time, so that the key package's lifetime (checked by OpenMLS with
    // the system clock) can be passed by the injected clock.
    net.now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    net.form_among(4, fast_settings());
    net.assert_agree(&[0, 1, 2, 3]);
    let epoch = net.nodes[0].conv().epoch();
    // The join request arrives; the add is proposed and approved, but not committed yet.
    let request = short_lived_join_request(net.now, net.now / 1000 + 300);
    for i in 0..4 {
        net.receive(i, &request).unwrap();
    }
    net.deliver();
    for i in 0..4 {
        net.poll(i);
    }
    net.deliver();
    let add = net.nodes[0]
        .conv()
        .ballots()
        .open()
        .find(|b| matches!(b.action(), Action::Add { .. }))
        .map(|b| b.id())
        .expect("the add is proposed");
    // Ten minutes pass (the key package's lifetime is over); a removal is approved.
    net.now += 600_000;
    let target = net.nodes[3].id();
    net.act(1, |c, ctx| c.propose_removal(ctx, target).map(|(_, o)| o))
        .unwrap();
    net.run_for(60_000);
    for i in 0..3 {
        assert!(net.nodes[i].conv().epoch() > epoch, "node {i}");
        assert!(!is_member(&net, i, 3), "node {i}");
        assert_eq!(net.nodes[i].conv().members().len(), 3, "node {i}");
        assert_eq!(resolved(&net, i, add), Some(true), "node {i}");
    }
    net.assert_agree(&[0, 1, 2]);
}

/// The join request member `joiner` publishes (its envelope body), from its own step.
fn join_request_body(net: &mut Net, joiner: usize) -> Vec<u8> {
    let out = net
        .step(joiner, |conv, ctx| {
            let (c, out) = Conversation::request_join(ctx, CONV, fast_settings())?;
            *conv = Some(c);
            Ok(out)
        })
        .unwrap();
    let env = wire::decode_envelope(&out.outbound[0].payload).unwrap();
    env.body.to_vec()
}

/// A group of three, a joiner (offline) and an attacker, neither of them a member yet.
fn a_group_a_joiner_and_an_attacker() -> (Net, usize, usize) {
    let mut net = Net::form(3, fast_settings());
    net.run_for(5_000);
    let (joiner, attacker) = (3, 4);
    net.nodes.push(Net::new(6).nodes.pop().unwrap());
    net.nodes.push(Net::new(7).nodes.pop().unwrap());
    net.offline.insert(joiner);
    (net, joiner, attacker)
}

/// The attacker creates its own group under `conversation`, takes in the join request
/// `request` and returns the welcome its group sends.
fn impostor_welcome(
    net: &mut Net,
    attacker: usize,
    conversation: &str,
    request: &[u8],
) -> wire::Envelope {
    net.step(attacker, |conv, ctx| {
        let (c, out) = Conversation::create(ctx, conversation, fast_settings())?;
        *conv = Some(c);
        Ok(out)
    })
    .unwrap();
    net.receive(attacker, request).unwrap();
    for _ in 0..20 {
        net.now += 200;
        let out = net
            .step(attacker, |conv, ctx| conv.as_mut().unwrap().poll(ctx))
            .unwrap();
        for o in out.outbound {
            let env = wire::decode_envelope(&o.payload).unwrap();
            if env.kind == wire::PacketKind::Welcome as i32 {
                return env;
            }
        }
    }
    panic!("the attacker's group did not admit the joiner");
}

/// Audit H6 (T5): an attacker runs its own group "c2", admits the joiner's key package and
/// sends the welcome on the joiner's conversation. The welcome is for another MLS group: it
/// is refused, and the joiner joins the real group later.
#[test]
fn a_welcome_for_another_mls_group_is_refused() {
    let (mut net, joiner, attacker) = a_group_a_joiner_and_an_attacker();
    let body = join_request_body(&mut net, joiner);
    let rewrapped = wire::encode(&wire::Envelope::new(
        "c2",
        net.nodes[joiner].id().as_bytes(),
        wire::PacketKind::JoinRequest,
        body,
    ));
    let welcome = impostor_welcome(&mut net, attacker, "c2", &rewrapped);
    let forged = wire::encode(&wire::Envelope::new(
        CONV,
        welcome.sender.clone(),
        wire::PacketKind::Welcome,
        welcome.body,
    ));
    refused_while_pending(&mut net, joiner, &forged);
    net.reconnect(joiner);
    net.run_for(30_000);
    net.assert_agree(&[0, 1, 2, joiner]);
}

/// Audit H6: a member other than the certified commit's leader rebuilds a joiner's welcome
/// with a conversation sync of its own (another steward list). The joiner refuses it and
/// joins with the genuine one.
#[test]
fn a_conversation_sync_from_a_member_other_than_the_certifier_is_refused() {
    // The join request reaches the members (the joiner is offline for what comes back).
    let (mut net, missed) = three_and_a_missed_welcome();
    let MissedWelcome {
        joiner,
        backlog,
        envelope: genuine,
        packet,
    } = missed;
    let certifier = index_of(
        &net,
        witan::mls::MemberId::from_slice(&genuine.sender).unwrap(),
    );
    let impostor = (0..3).find(|i| *i != certifier).unwrap();
    // The impostor reads the genuine sync (it is a member of the new epoch) and sends its own.
    let mut sync = net.read_sync(impostor, &packet);
    sync.stewards = vec![net.nodes[impostor].id().as_bytes().to_vec()];
    let sealed = net.craft(impostor, Content::Sync(sync));
    let sealed_body = wire::decode_envelope(&sealed).unwrap().body;
    let forged = wire::encode(&wire::Envelope::new(
        CONV,
        net.nodes[impostor].id().as_bytes(),
        wire::PacketKind::Welcome,
        wire::encode(&wire::WelcomePacket {
            sync: sealed_body.to_vec().into(),
            ..packet.clone()
        }),
    ));
    refused_while_pending(&mut net, joiner, &forged);
    joins_from_backlog(&mut net, joiner, backlog);
}

/// `forged` is refused, the joiner keeps nothing of it and still waits for its welcome.
fn refused_while_pending(net: &mut Net, joiner: usize, forged: &[u8]) {
    let before = net.snapshot(joiner);
    assert!(net.receive(joiner, forged).is_err());
    assert_eq!(net.snapshot(joiner), before);
    assert_eq!(
        net.nodes[joiner].state(),
        witan::protocol::State::PendingJoin
    );
}

/// Three members, and a joiner whose welcome they sent while it was offline.
fn three_and_a_missed_welcome() -> (Net, MissedWelcome) {
    let mut net = Net::form(3, fast_settings());
    net.run_for(5_000);
    let missed = net.join_while_offline();
    (net, missed)
}

/// The joiner comes back, takes what it missed (the genuine welcome among it) and joins.
fn joins_from_backlog(net: &mut Net, joiner: usize, backlog: Vec<Vec<u8>>) {
    net.offline.remove(&joiner);
    for p in backlog {
        let _ = net.receive(joiner, &p);
    }
    net.run_for(10_000);
    net.assert_agree(&[0, 1, 2, joiner]);
}

/// Audit M1 and HG-16: one member sends proposals without end, each as large as a payload may
/// be. It gets its share of the ballot box and no more, and the member's stored state stays
/// far inside the notification extension's 16 MiB budget.
#[test]
fn one_member_cannot_open_more_than_its_share_of_proposals() {
    use witan::protocol::ballot_box::{MAX_OPEN_BYTES, MAX_OPEN_PER_OWNER};
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let s = net.nodes[0].conv().settings().clone();
    let epoch = net.nodes[1].conv().epoch();
    let reason = "x".repeat(1000);
    let mut refused = 0;
    for k in 0..(MAX_OPEN_PER_OWNER as u64 + 16) {
        let p = crafted(
            &net,
            1,
            &Action::Emergency {
                member: net.nodes[3].id(),
                reason: reason.clone(),
                evidence: Vec::new(),
            },
            epoch,
            4,
            net.now + k,
            &s,
        );
        let packet = net.craft(1, Content::Proposal(p));
        match net.receive(2, &packet) {
            Ok(()) => {}
            Err(ProtocolError::Vote(BallotError::Full(_))) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    let open = net.nodes[2].conv().ballots().open().count();
    assert!(open <= MAX_OPEN_PER_OWNER, "{open} open");
    assert!(refused >= 16, "{refused} refused");
    let state = net.nodes[2].conv().to_bytes().len();
    assert!(state <= MAX_OPEN_BYTES + 256 * 1024, "{state} bytes");
    assert!(state < 16 * 1024 * 1024);
}

/// Audit M1, the commit round's part: a member that leads some of the next rounds sends, for
/// each, a candidate as large as a packet allows. The candidates a member keeps besides its
/// current round's are bounded in bytes, so its state stays inside the notification
/// extension's budget.
#[test]
fn a_leader_of_later_rounds_cannot_fill_the_state_with_huge_candidates() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(5_000);
    let conv = net.nodes[0].conv().clone();
    let order: Vec<usize> = conv.leaders().iter().map(|m| index_of(&net, *m)).collect();
    let round = conv.commit_round().round();
    let (victim, byzantine) = (order[0], order[1]);
    let mut sent = 0;
    for r in round + 1..=round + 8 {
        if order[r as usize % order.len()] != byzantine {
            continue;
        }
        let candidate = wire::Candidate {
            epoch: conv.epoch(),
            round: r,
            proposer: net.nodes[byzantine].id().as_bytes().to_vec(),
            commit: vec![r as u8; 5 * 1024 * 1024],
            ..wire::Candidate::default()
        };
        let packet = net.craft(byzantine, Content::Candidate(candidate));
        let _ = net.receive(victim, &packet);
        sent += 1;
    }
    assert!(sent >= 2, "{sent}");
    let state = net.nodes[victim].conv().to_bytes().len();
    assert!(
        state <= 9 * 1024 * 1024,
        "{state} bytes of state after {sent} candidates"
    );
}

/// Audit M1, outsiders: anyone who knows the conversation id floods the welcome topic with
/// join requests of fresh identities. A member keeps at most 1,024 of them and 1 MiB of key
/// packages, the oldest going first, and its state stays far inside the extension's budget.
#[test]
fn outsiders_flooding_join_requests_fill_only_the_bounded_join_queue() {
    use witan::protocol::join_queue::{MAX_REQUEST_BYTES, MAX_REQUESTS};
    let mut net = Net::form(4, fast_settings());
    net.run_for(5_000);
    let conv = net.nodes[0].conv().clone();
    // The last member of the leader order proposes a join only after its takeover window:
    // the requests stay in its queue.
    let victim = index_of(&net, *conv.leaders().last().unwrap());
    for k in 0..(MAX_REQUESTS as u32 + 44) {
        let mut secret = [9u8; 32];
        secret[..4].copy_from_slice(&k.to_be_bytes());
        let request = join_request_of(&secret, net.now, None);
        net.receive(victim, &request).unwrap();
    }
    let joins = net.nodes[victim].conv().joins();
    assert!(joins.len() <= MAX_REQUESTS, "{} requests", joins.len());
    assert!(joins.len() >= MAX_REQUESTS - 8, "{} requests", joins.len());
    let state = net.nodes[victim].conv().to_bytes().len();
    assert!(state <= MAX_REQUEST_BYTES + 256 * 1024, "{state} bytes");
}

/// The key package of a fresh identity carrying `padding` bytes (valid, as an outsider makes
/// one), with its member id.
fn padded_key_package(k: u32, padding: usize, now_ms: u64) -> (witan::mls::MemberId, Vec<u8>) {
    let mut secret = [0x3c; 32];
    secret[..4].copy_from_slice(&k.to_be_bytes());
    let env = wire::decode_envelope(&padded_join_request_of(&secret, now_ms, None, padding));
    let request = wire::decode_join_request(&env.unwrap().body).unwrap();
    let member = witan::mls::Identity::from_secret(&secret)
        .unwrap()
        .member_id();
    (member, request.key_package)
}

/// Issue #17, the state budget: everything others can make a member keep, filled to its
/// bound at once — outsiders' join requests with large key packages, a byzantine member's
/// add proposals of large key packages (its share of the ballot box and beyond), votes for
/// proposals nobody has seen, packet-sized candidates of the later rounds a byzantine member
/// leads and of the current round a byzantine member leads. The member's whole state (what
/// a notification extension decodes on a wake-up) stays inside the 16 MiB budget with room
/// for the parts this test cannot fill cheaply (the resolved-proposal memory, 0.2 MiB).
#[test]
fn every_part_others_can_grow_filled_at_once_stays_inside_the_wake_up_budget() {
    const MIB: usize = 1024 * 1024;
    let mut net = Net::form(7, fast_settings());
    net.run_for(5_000);
    let conv = net.nodes[0].conv().clone();
    let order: Vec<usize> = conv.leaders().iter().map(|m| index_of(&net, *m)).collect();
    let round = conv.commit_round().round();
    let n = order.len();
    let current = order[round as usize % n];
    let later = order[(round as usize + 1) % n];
    // The last of the leader order proposes no join before its takeover window.
    let victim = order[n - 1];
    join_requests_of_outsiders(&mut net, victim);
    byzantine_adds_until_refused(&mut net, &conv, victim, [current, later]);
    orphan_votes(&mut net, victim, [current, later]);
    packet_sized_candidates(&mut net, &conv, victim, (current, later), &order);
    let victim_conv = net.nodes[victim].conv();
    let state = victim_conv.to_bytes().len();
    // The parts this test cannot fill cheaply, at their bounds: the certified-commit archive
    // (2 MiB, or its newest entry: a certified candidate and its certificate) and the
    // resolved-proposal memory (4,096 digests and times).
    // (Packets kept in rows of their own are not state.)
    let archived: usize = victim_conv
        .archived()
        .iter()
        .filter(|(_, _, in_state)| *in_state)
        .map(|(_, b, _)| b)
        .sum();
    let unfilled = (2 * MIB + 256 * 1024).saturating_sub(archived) + 4096 * 48;
    assert!(
        state + unfilled <= 16 * MIB - MIB,
        "{state} bytes of state with every part filled ({unfilled} more at the other bounds)"
    );
}

/// Outsiders' join requests of fresh identities with 4 KiB key packages, past the queue's
/// bound.
fn join_requests_of_outsiders(net: &mut Net, victim: usize) {
    use witan::protocol::join_queue::MAX_REQUESTS;
    for k in 0..(MAX_REQUESTS as u32 + 64) {
        let mut secret = [0x7e; 32];
        secret[..4].copy_from_slice(&k.to_be_bytes());
        let request = padded_join_request_of(&secret, net.now, None, 4096);
        net.receive(victim, &request).unwrap();
    }
}

/// Two byzantine members propose adds of 60 KiB key packages until the ballot box refuses
/// them.
fn byzantine_adds_until_refused(
    net: &mut Net,
    conv: &Conversation,
    victim: usize,
    owners: [usize; 2],
) {
    let n = conv.leaders().len();
    let s = conv.settings().clone();
    let mut refused = 0;
    for (b, owner) in owners.into_iter().enumerate() {
        for k in 0..80u32 {
            let (member, key_package) = padded_key_package(k + 1000 * b as u32, 60_000, net.now);
            let action = Action::Add {
                member,
                key_package,
            };
            let p = crafted(
                &*net,
                owner,
                &action,
                conv.epoch(),
                n,
                net.now + u64::from(k),
                &s,
            );
            let packet = net.craft(owner, Content::Proposal(p));
            match net.receive(victim, &packet) {
                Ok(()) => {}
                Err(ProtocolError::Vote(BallotError::Full(_))) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(refused > 0, "the ballot box was filled to its bound");
}

/// Votes of two byzantine members for proposals the victim has not seen: each one's share
/// of orphans.
fn orphan_votes(net: &mut Net, victim: usize, owners: [usize; 2]) {
    for owner in owners {
        for k in 0..64u64 {
            let vote = wire::Vote {
                vote_owner: net.nodes[owner].identity.public_key().to_vec(),
                proposal_id: (1 << 40) + k,
                timestamp: net.now,
                vote: true,
                vote_hash: vec![1; 32],
                signature: vec![2; 64],
                ..wire::Vote::default()
            };
            let packet = net.craft(owner, Content::Vote(vote));
            let _ = net.receive(victim, &packet);
        }
    }
}

/// Candidates as large as a packet allows from the byzantine leaders: the current round's
/// (`leaders.0`), and later rounds' (`leaders.1`).
fn packet_sized_candidates(
    net: &mut Net,
    conv: &Conversation,
    victim: usize,
    (current, later): (usize, usize),
    order: &[usize],
) {
    const MIB: usize = 1024 * 1024;
    let (round, n) = (conv.commit_round().round(), order.len());
    let candidate = |r: u32, proposer: Vec<u8>, size: usize| wire::Candidate {
        epoch: conv.epoch(),
        round: r,
        proposer,
        commit: vec![r as u8; size],
        ..wire::Candidate::default()
    };
    let mut sent = 0;
    for r in round..=round + 8 {
        let who = order[r as usize % n];
        if who == current || who == later {
            let size = if r == round { 7 * MIB } else { 15 * MIB / 16 };
            let c = candidate(r, net.nodes[who].id().as_bytes().to_vec(), size);
            let packet = net.craft(who, Content::Candidate(c));
            let _ = net.receive(victim, &packet);
            sent += 1;
        }
    }
    assert!(sent >= 3, "{sent} candidates");
}

/// Audit H6 (variant): an impostor creates its own group under the conversation's *same* id
/// and welcomes the joiner first. A joiner that names a member it expects (the one who
/// invited it) refuses a welcome whose certificate that member did not sign, changes nothing,
/// and joins the real group when its welcome comes.
#[test]
fn an_impostor_group_under_the_same_id_cannot_welcome_a_joiner_that_names_an_expected_member() {
    let (mut net, joiner, attacker) = a_group_a_joiner_and_an_attacker();
    let expected = net.nodes[0].id();
    let out = net
        .step(joiner, |conv, ctx| {
            let (c, out) =
                Conversation::request_join_expecting(ctx, CONV, fast_settings(), Some(expected))?;
            *conv = Some(c);
            Ok(out)
        })
        .unwrap();
    let request = out.outbound[0].payload.clone();
    net.offline.insert(attacker);
    let welcome = wire::encode(&impostor_welcome(&mut net, attacker, CONV, &request));
    let before = net.snapshot(joiner);
    let refused = net.receive(joiner, &welcome);
    assert!(
        matches!(refused, Err(ProtocolError::UntrustedWelcome(_))),
        "{refused:?}"
    );
    assert_eq!(net.snapshot(joiner), before);
    assert_eq!(
        net.nodes[joiner].state(),
        witan::protocol::State::PendingJoin
    );
    net.reconnect(joiner);
    net.run_for(30_000);
    net.assert_agree(&[0, 1, 2, joiner]);
}

/// The certified commit travels beside the sync in the welcome packet, outside its
/// encryption: anyone relaying the packet can swap or drop it. A joiner refuses a packet
/// whose commit is not the certified one (the certificate's digest covers it) or is
/// missing, keeps nothing of it, and joins with the genuine packet.
#[test]
fn a_welcome_packet_whose_commit_is_swapped_or_dropped_is_refused() {
    let (mut net, missed) = three_and_a_missed_welcome();
    let joiner = missed.joiner;
    let mut altered = missed.packet.commit.to_vec();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    for commit in [altered, Vec::new()] {
        let forged = wire::encode(&wire::Envelope::new(
            CONV,
            missed.envelope.sender.clone(),
            wire::PacketKind::Welcome,
            wire::encode(&wire::WelcomePacket {
                commit: commit.into(),
                ..missed.packet.clone()
            }),
        ));
        refused_while_pending(&mut net, joiner, &forged);
    }
    joins_from_backlog(&mut net, joiner, missed.backlog);
}
