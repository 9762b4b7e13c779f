//! A malicious member (issue #17, the protocol audit): one member runs a modified client and
//! crafts packets with the crate's public `wire`, `protocol` and `mls` modules, with its own
//! keys and MLS state. Each test is named for the attack and shows what the honest members
//! make of it; `docs/security.md` maps the audit's findings to these tests.

mod support;

use support::{CONV, Net, fast_settings};
use witan::mls::Group;
use witan::protocol::ballot_box::{ProposalContext, new_proposal, new_vote};
use witan::protocol::commit_round::{max_faulty, quorum};
use witan::protocol::{Action, BallotError, Conversation, Event, Output, ProtocolError, Settings};
use witan::wire::{self, group_payload::Content};

/// Settings of a group that votes by hand, silent voters counting as the group says.
fn manual(liveness_yes: bool) -> Settings {
    Settings {
        auto_vote_delay_ms: None,
        liveness_criteria_yes: liveness_yes,
        ..fast_settings()
    }
}

fn index_of(net: &Net, member: witan::mls::MemberId) -> usize {
    (0..net.nodes.len())
        .find(|i| net.nodes[*i].id() == member)
        .expect("a node")
}

fn resolved(net: &Net, i: usize, pid: u64) -> Option<bool> {
    net.nodes[i].events.iter().find_map(|e| match e {
        Event::ProposalResolved {
            proposal_id,
            approved,
        } if *proposal_id == pid => Some(*approved),
        _ => None,
    })
}

fn is_member(net: &Net, observer: usize, who: usize) -> bool {
    net.nodes[observer]
        .conv()
        .members()
        .contains(&net.nodes[who].id())
}

/// A proposal of member `i` with a context the attacker chooses.
fn crafted(
    net: &Net,
    i: usize,
    action: &Action,
    epoch: u64,
    members: usize,
    now_ms: u64,
    settings: &Settings,
) -> wire::Proposal {
    let cx = ProposalContext {
        conversation: CONV,
        epoch,
        members,
        now_ms,
        settings,
    };
    new_proposal(&net.nodes[i].identity, action, &cx)
}

/// A real MLS commit of member `i` removing `victim`, not merged (the pending commit is
/// cleared, as a modified client would after sending it).
fn removal_commit(net: &mut Net, i: usize, victim: witan::mls::MemberId) -> Vec<u8> {
    let mut commit = Vec::new();
    net.step(i, |_, ctx| {
        let mut group = Group::load(ctx.provider, CONV.as_bytes())?.expect("group");
        commit = group
            .create_commit(ctx.provider, ctx.identity, &[], &[victim])?
            .commit;
        group.clear_pending_commit(ctx.provider)?;
        Ok(Output::default())
    })
    .unwrap();
    commit
}

fn prevoted(net: &Net, from: usize, leader: usize) -> bool {
    net.in_flight_from(from, leader)
        .iter()
        .any(|c| matches!(c, Content::Prevote(_)))
}

/// Audit C1: a leader puts in its candidate a "decided" removal whose only vote is its own,
/// claiming one voter and an epoch far ahead, with a real MLS commit that removes the victim.
#[test]
fn a_leader_carrying_a_forged_one_voter_decision_gets_no_prevote_and_removes_nobody() {
    let mut net = Net::form(4, manual(false));
    net.run_for(10_000);
    let conv = net.nodes[0].conv().clone();
    let leader = index_of(&net, conv.leaders()[conv.commit_round().round() as usize]);
    let victim = (0..4).find(|i| *i != leader).unwrap();
    let honest: Vec<usize> = (0..4).filter(|i| *i != leader).collect();
    let s = conv.settings().clone();
    let forged = crafted(
        &net,
        leader,
        &Action::Remove {
            member: net.nodes[victim].id(),
        },
        conv.epoch() + 1000,
        1,
        net.now,
        &s,
    );
    let victim_id = net.nodes[victim].id();
    let commit = removal_commit(&mut net, leader, victim_id);
    let candidate = wire::Candidate {
        epoch: conv.epoch(),
        round: conv.commit_round().round(),
        proposer: net.nodes[leader].id().as_bytes().to_vec(),
        commit,
        welcome: Vec::new(),
        resolutions: vec![wire::Resolution {
            proposal: Some(forged),
            approved: true,
            ..wire::Resolution::default()
        }],
        pol: None,
    };
    let packet = net.craft(leader, Content::Candidate(candidate));
    for &i in &honest {
        let _ = net.receive(i, &packet);
        assert!(!prevoted(&net, i, leader), "node {i} prevoted the forgery");
    }
    net.run_for(60_000);
    for &i in &honest {
        assert!(is_member(&net, i, victim), "node {i}");
    }
    net.assert_agree(&honest);
}

/// Audit C2, HG-15, HG-16: a proposer chooses its own voting window (1 ms, or a year) or its
/// own silent-voter rule. The proposal is refused on receipt and changes nothing.
#[test]
fn a_proposal_with_its_own_voting_window_or_silent_voter_rule_is_refused() {
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let group = net.nodes[0].conv().settings().clone();
    let action = Action::Remove {
        member: net.nodes[3].id(),
    };
    let epoch = net.nodes[1].conv().epoch();
    let one_ms = Settings {
        vote_timeout_ms: 1,
        ..group.clone()
    };
    let a_year = Settings {
        vote_timeout_ms: 365 * 24 * 3_600_000,
        ..group.clone()
    };
    let lenient = Settings {
        liveness_criteria_yes: true,
        ..group.clone()
    };
    for rules in [one_ms, a_year, lenient] {
        let p = crafted(&net, 1, &action, epoch, 4, net.now, &rules);
        let packet = net.craft(1, Content::Proposal(p));
        let before = net.snapshot(2);
        let err = net.receive(2, &packet).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Vote(BallotError::Rules(_))),
            "{err}"
        );
        assert_eq!(net.snapshot(2), before);
    }
}

/// Audit C2 and HG-10: a proposal sent already expired (made two windows ago) is not decided
/// by silence at once: every member gets a full window of its own and is asked to vote.
#[test]
fn an_already_expired_proposal_gets_a_full_window_and_a_vote_request() {
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let s = net.nodes[0].conv().settings().clone();
    let t = s.vote_timeout_ms;
    let epoch = net.nodes[1].conv().epoch();
    let p = crafted(
        &net,
        1,
        &Action::Remove {
            member: net.nodes[3].id(),
        },
        epoch,
        4,
        net.now - 2 * t,
        &s,
    );
    let pid = p.proposal_id;
    let packet = net.craft(1, Content::Proposal(p));
    for i in [0, 2, 3] {
        net.receive(i, &packet).unwrap();
        let asked = net.count_events(
            i,
            |e| matches!(e, Event::VoteRequested(v) if v.proposal_id == pid),
        );
        assert_eq!(asked, 1, "node {i} is asked to vote");
    }
    net.run_for(t / 2);
    assert_eq!(
        resolved(&net, 0, pid),
        None,
        "decided before a window passed"
    );
    net.run_for(4 * t);
    for i in 0..4 {
        assert_eq!(resolved(&net, i, pid), Some(false), "node {i}");
        assert!(is_member(&net, i, 3));
    }
}

/// Audit C2 with the default silent-voter rule (silence counts as YES): an already expired
/// removal that only its proposer supports. A removal needs votes beyond its proposer's.
#[test]
fn an_already_expired_removal_backed_only_by_its_proposer_is_not_approved_by_silence() {
    let mut net = Net::form(4, manual(true));
    net.run_for(5_000);
    let s = net.nodes[0].conv().settings().clone();
    let t = s.vote_timeout_ms;
    let epoch = net.nodes[1].conv().epoch();
    let p = crafted(
        &net,
        1,
        &Action::Remove {
            member: net.nodes[3].id(),
        },
        epoch,
        4,
        net.now - 2 * t,
        &s,
    );
    let pid = p.proposal_id;
    let packet = net.craft(1, Content::Proposal(p));
    for i in [0, 2, 3] {
        net.receive(i, &packet).unwrap();
    }
    net.run_for(6 * t);
    for i in 0..4 {
        assert_eq!(resolved(&net, i, pid), Some(false), "node {i}");
        assert!(is_member(&net, i, 3), "node {i}");
    }
}

/// Audit H2, M3, HG-8: a vote signed for one proposal is carried to another proposal with the
/// same id, or to another conversation. Votes bind the proposal's digest and the
/// conversation: neither counts.
#[test]
fn a_vote_moved_to_another_proposal_or_conversation_does_not_count() {
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let target = net.nodes[3].id();
    let mut pid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.deliver();
    let ballot = net.nodes[1].conv().ballots().by_id(pid).unwrap().clone();
    let me = &net.nodes[1].identity;
    // Signed for another conversation's copy of the proposal.
    let elsewhere = new_vote(
        me,
        "another-conversation",
        ballot.digest(),
        ballot.header(),
        true,
        net.now,
    );
    // Signed for a proposal with the same id and another payload (another digest).
    let mut other = ballot.header().clone();
    other.payload.push(0);
    let other_digest = wire::proposal_digest(CONV, &other);
    let collided = new_vote(me, CONV, &other_digest, &other, true, net.now);
    for vote in [elsewhere, collided] {
        assert_eq!(vote.proposal_id, pid);
        let packet = net.craft(1, Content::Vote(vote));
        let before = net.snapshot(2);
        let err = net.receive(2, &packet).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Vote(BallotError::Vote(_))),
            "{err}"
        );
        assert_eq!(net.snapshot(2), before);
    }
}

/// Audit M3, M4, HG-17: a proposal is replayed in another conversation, and a resolved one
/// is sent again in a later epoch. The first does not parse there (its id binds the
/// conversation), the second is remembered as resolved.
#[test]
fn a_proposal_replayed_in_another_conversation_or_after_its_resolution_is_refused() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(5_000);
    let target = net.nodes[3].id();
    let removal = net.make_proposal(0, Action::Remove { member: target });
    let mut moved = removal.clone();
    moved.proposal_id = witan::protocol::ballot_box::derive_proposal_id(
        "another-conversation",
        &moved.proposal_owner,
        moved.timestamp,
        &moved.payload,
    );
    let parsed = witan::protocol::ballot_box::parse(CONV, &moved);
    assert!(matches!(parsed, Err(BallotError::Malformed(_))));

    let rejected = net.make_proposal(
        0,
        Action::Emergency {
            member: net.nodes[2].id(),
            reason: "baseless".into(),
        },
    );
    let rid = rejected.proposal_id;
    let packet = net.craft(0, Content::Proposal(rejected.clone()));
    for i in 1..4 {
        net.receive(i, &packet).unwrap();
    }
    net.run_for(20_000);
    assert_eq!(resolved(&net, 1, rid), Some(false));
    let epoch = net.nodes[1].conv().epoch();
    let again = net.craft(0, Content::Proposal(rejected));
    let err = net.receive(1, &again).unwrap_err();
    assert!(
        matches!(err, ProtocolError::Vote(BallotError::Refused(_))),
        "{err}"
    );
    assert!(net.nodes[1].conv().ballots().by_id(rid).is_none());
    assert_eq!(net.nodes[1].conv().epoch(), epoch);
}

/// Audit M5, HG-6: a member votes YES to some members and NO to others. Its votes stop
/// counting everywhere, the proof travels, and the certified commit that resolves the
/// proposal costs the voter score at every member.
#[test]
fn a_member_voting_both_ways_leaves_a_proof_and_loses_score() {
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let target = net.nodes[3].id();
    let mut pid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.deliver();
    let yes = net.sign_vote(2, 0, pid, true);
    let no = net.sign_vote(2, 0, pid, false);
    let to_yes = net.craft(2, Content::Vote(yes));
    let to_no = net.craft(2, Content::Vote(no));
    net.receive(0, &to_yes).unwrap();
    net.receive(1, &to_no).unwrap();
    net.receive(0, &to_no).unwrap();
    assert!(
        net.count_events(
            0,
            |e| matches!(e, Event::Warning(w) if w.contains("both ways"))
        ) > 0
    );
    net.deliver();
    net.act(1, |c, ctx| c.vote(ctx, pid, true)).unwrap();
    net.run_for(30_000);
    let s = fast_settings();
    for i in [0, 1, 3] {
        assert!(resolved(&net, i, pid).is_some(), "node {i}");
        assert_eq!(
            net.nodes[i].conv().scores().get(&net.nodes[2].id()),
            Some(s.default_peer_score - s.score_invalid_candidate_penalty),
            "node {i}"
        );
    }
}

/// A join request of a fresh identity whose key package's lifetime ends at `not_after_s`
/// (seconds), built with OpenMLS as any outsider can.
fn short_lived_join_request(now_ms: u64, not_after_s: u64) -> Vec<u8> {
    join_request_of(&[77; 32], now_ms, Some(not_after_s))
}

/// A join request of the identity with `secret`, its key package built with OpenMLS (the
/// default lifetime unless `not_after_s` is given).
fn join_request_of(secret: &[u8; 32], now_ms: u64, not_after_s: Option<u64>) -> Vec<u8> {
    use openmls::prelude::{
        BasicCredential, CredentialWithKey, KeyPackage, Lifetime, MlsMessageOut, SignatureScheme,
        tls_codec::Serialize as _,
    };
    let identity = witan::mls::Identity::from_secret(secret).unwrap();
    let signer = openmls_basic_credential::SignatureKeyPair::from_raw(
        SignatureScheme::ED25519,
        identity.secret().to_vec(),
        identity.public_key().to_vec(),
    );
    let credential = CredentialWithKey {
        credential: BasicCredential::new(identity.member_id().as_bytes().to_vec()).into(),
        signature_key: identity.public_key().to_vec().into(),
    };
    let provider = openmls_rust_crypto::OpenMlsRustCrypto::default();
    let mut builder = KeyPackage::builder();
    if let Some(not_after_s) = not_after_s {
        builder = builder.key_package_lifetime(Lifetime::init(now_ms / 1000 - 3_600, not_after_s));
    }
    let bundle = builder
        .build(witan::mls::CIPHERSUITE, &provider, &signer, credential)
        .unwrap();
    let key_package = MlsMessageOut::from(bundle.key_package().clone())
        .tls_serialize_detached()
        .unwrap();
    wire::encode(&wire::Envelope::new(
        CONV,
        identity.member_id().as_bytes(),
        wire::PacketKind::JoinRequest,
        wire::encode(&wire::JoinRequest {
            key_package,
            requested_at_ms: now_ms,
        }),
    ))
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
    net.create(0, fast_settings());
    for i in 1..4 {
        net.request_join(i);
    }
    net.run_for(30_000);
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

/// Audit H4: before the epoch steward commits, another steward sends a candidate with
/// genuine resolutions and a garbage commit. It is not the round's leader: the candidate is
/// refused, the epoch steward commits in round 0, and no honest leader is penalised.
#[test]
fn a_garbage_candidate_from_another_steward_does_not_suppress_the_epoch_stewards_commit() {
    let mut net = Net::form(5, fast_settings());
    net.run_for(10_000);
    let conv = net.nodes[0].conv().clone();
    let order: Vec<usize> = conv.leaders().iter().map(|m| index_of(&net, *m)).collect();
    let (steward, other) = (order[0], order[1]);
    let x = order[4];
    let proposer = order[2];
    let epoch = conv.epoch();
    let target = net.nodes[x].id();
    net.act(proposer, |c, ctx| {
        c.propose_removal(ctx, target).map(|(_, o)| o)
    })
    .unwrap();
    net.deliver();
    for i in 0..5 {
        net.poll(i);
    }
    net.deliver();
    let resolutions = net.nodes[other].conv().resolutions_at(net.now);
    assert!(!resolutions.is_empty(), "the removal is decided");
    let garbage = wire::Candidate {
        epoch,
        round: 0,
        proposer: net.nodes[other].id().as_bytes().to_vec(),
        commit: vec![0xde, 0xad],
        welcome: Vec::new(),
        resolutions,
        pol: None,
    };
    let packet = net.craft(other, Content::Candidate(garbage));
    for i in (0..5).filter(|i| *i != other) {
        let _ = net.receive(i, &packet);
    }
    net.run_for(30_000);
    let s = fast_settings();
    for i in (0..5).filter(|i| *i != x) {
        let c = net.nodes[i].conv();
        assert_eq!(c.epoch(), epoch + 1, "node {i}");
        assert!(!is_member(&net, i, x), "node {i}");
        assert_eq!(
            c.scores().get(&net.nodes[steward].id()),
            Some(s.default_peer_score),
            "node {i}: the epoch steward was not penalised"
        );
    }
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
    env.body
}

/// Audit H6 (T5): an attacker runs its own group "c2", admits the joiner's key package and
/// sends the welcome on the joiner's conversation. The welcome is for another MLS group: it
/// is refused, and the joiner joins the real group later.
#[test]
fn a_welcome_for_another_mls_group_is_refused() {
    let mut net = Net::form(3, fast_settings());
    net.run_for(5_000);
    let (joiner, attacker) = (3, 4);
    net.nodes.push(Net::new(6).nodes.pop().unwrap());
    net.nodes.push(Net::new(7).nodes.pop().unwrap());
    net.offline.insert(joiner);
    let body = join_request_body(&mut net, joiner);
    net.step(attacker, |conv, ctx| {
        let (c, out) = Conversation::create(ctx, "c2", fast_settings())?;
        *conv = Some(c);
        Ok(out)
    })
    .unwrap();
    let rewrapped = wire::encode(&wire::Envelope::new(
        "c2",
        net.nodes[joiner].id().as_bytes(),
        wire::PacketKind::JoinRequest,
        body,
    ));
    net.receive(attacker, &rewrapped).unwrap();
    let mut welcome = None;
    for _ in 0..20 {
        net.now += 200;
        let out = net
            .step(attacker, |conv, ctx| conv.as_mut().unwrap().poll(ctx))
            .unwrap();
        for o in out.outbound {
            let env = wire::decode_envelope(&o.payload).unwrap();
            if env.kind == wire::PacketKind::Welcome as i32 {
                welcome = Some(env);
            }
        }
        if welcome.is_some() {
            break;
        }
    }
    let welcome = welcome.expect("the attacker's group admitted the joiner");
    let forged = wire::encode(&wire::Envelope::new(
        CONV,
        welcome.sender.clone(),
        wire::PacketKind::Welcome,
        welcome.body,
    ));
    let before = net.snapshot(joiner);
    assert!(net.receive(joiner, &forged).is_err());
    assert_eq!(net.snapshot(joiner), before);
    assert_eq!(
        net.nodes[joiner].state(),
        witan::protocol::State::PendingJoin
    );
    net.reconnect(joiner);
    net.run_for(30_000);
    net.assert_agree(&[0, 1, 2, joiner]);
}

/// Audit H6: a member other than the certified commit's leader rebuilds a joiner's welcome
/// with a conversation sync of its own (another steward list). The joiner refuses it and
/// joins with the genuine one.
#[test]
fn a_conversation_sync_from_a_member_other_than_the_certifier_is_refused() {
    let mut net = Net::form(3, fast_settings());
    net.run_for(5_000);
    net.nodes.push(Net::new(6).nodes.pop().unwrap());
    let joiner = 3;
    net.offline.insert(joiner);
    net.request_join(joiner);
    // The join request reaches the members (the joiner is offline for what comes back).
    net.run_for(30_000);
    let backlog = net.mailbox.remove(&joiner).unwrap_or_default();
    let genuine = backlog
        .iter()
        .filter_map(|p| wire::decode_envelope(p).ok())
        .find(|e| e.kind == wire::PacketKind::Welcome as i32)
        .expect("a welcome for the joiner");
    let packet = wire::decode_welcome_packet(&genuine.body).unwrap();
    let certifier = index_of(
        &net,
        witan::mls::MemberId::from_slice(&genuine.sender).unwrap(),
    );
    let impostor = (0..3).find(|i| *i != certifier).unwrap();
    // The impostor reads the genuine sync (it is a member of the new epoch) and sends its own.
    let mut sync = {
        let kv = net.nodes[impostor].kv.clone();
        let provider = witan::mls::MlsProvider::new(&kv);
        let mut group = Group::load(&provider, CONV.as_bytes()).unwrap().unwrap();
        let d = group.decrypt(&provider, &packet.sync).unwrap();
        match wire::decode_group_payload(&d.plaintext).unwrap().content {
            Some(Content::Sync(s)) => s,
            other => panic!("not a sync: {other:?}"),
        }
    };
    sync.stewards = vec![net.nodes[impostor].id().as_bytes().to_vec()];
    let sealed = net.craft(impostor, Content::Sync(sync));
    let sealed_body = wire::decode_envelope(&sealed).unwrap().body;
    let forged = wire::encode(&wire::Envelope::new(
        CONV,
        net.nodes[impostor].id().as_bytes(),
        wire::PacketKind::Welcome,
        wire::encode(&wire::WelcomePacket {
            sync: sealed_body,
            ..packet.clone()
        }),
    ));
    let before = net.snapshot(joiner);
    assert!(net.receive(joiner, &forged).is_err());
    assert_eq!(net.snapshot(joiner), before);
    net.offline.remove(&joiner);
    for p in backlog {
        let _ = net.receive(joiner, &p);
    }
    net.run_for(10_000);
    net.assert_agree(&[0, 1, 2, joiner]);
}

/// Audit H8, D-16, D-17 (T9): while an emergency is open, members vote NO on a removal. The
/// removal is not decided by silence behind the emergency, and the NO votes count.
#[test]
fn an_open_emergency_does_not_turn_silence_on_a_removal_into_approval() {
    let mut net = Net::form(5, manual(true));
    net.run_for(5_000);
    let target = net.nodes[3].id();
    let mut rid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        rid = id;
        Ok(out)
    })
    .unwrap();
    net.deliver();
    net.now += 1_000;
    let emergency = net.make_proposal(
        4,
        Action::Emergency {
            member: net.nodes[1].id(),
            reason: "crafted".into(),
        },
    );
    let packet = net.craft(4, Content::Proposal(emergency));
    for i in 0..4 {
        net.receive(i, &packet).unwrap();
    }
    for i in 1..4 {
        net.act(i, |c, ctx| c.vote(ctx, rid, false)).unwrap();
        net.deliver();
    }
    net.run_for(fast_settings().vote_timeout_ms * 6);
    for i in [0, 2] {
        assert!(is_member(&net, i, 3), "node {i}: the removal passed");
        assert!(
            is_member(&net, i, 1),
            "node {i}: the emergency passed by silence"
        );
        assert_eq!(resolved(&net, i, rid), Some(false), "node {i}");
    }
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

/// Audit M16, HG-13: in a group of two, one member proposes removing the other while it is
/// offline. Silence never approves in a group of two: the removal is rejected.
#[test]
fn in_a_group_of_two_an_offline_member_is_not_removed_by_silence() {
    let mut net = Net::form(2, fast_settings());
    net.run_for(5_000);
    net.offline.insert(1);
    let target = net.nodes[1].id();
    let mut pid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.run_for(60_000);
    assert!(is_member(&net, 0, 1));
    assert_ne!(resolved(&net, 0, pid), Some(true));
}

/// Audit M12: vote counts and group sizes at the limits of the integer types do not overflow
/// the decision rule or the quorum arithmetic (a panic in debug builds, a wrong quorum in
/// release ones).
#[test]
fn vote_counts_and_group_sizes_at_the_integer_limits_do_not_overflow() {
    use witan::protocol::ballot_box::decide;
    for n in [u64::MAX, u64::MAX - 1, 1 << 63, u32::MAX as u64 + 1] {
        assert_eq!(decide(n, 0, n, false, true), Some(false));
        assert_eq!(decide(n, n / 2 + 1, 0, false, true), None);
        assert_eq!(decide(n, 0, 0, true, false), Some(false));
        let _ = decide(n, u64::MAX, u64::MAX, true, true);
    }
    for n in [usize::MAX, usize::MAX - 1, usize::MAX / 2 + 1] {
        let q = quorum(n);
        assert!(q > n / 2 && q <= n, "q({n}) = {q}");
        assert!(2 * (q as u128) > n as u128 + max_faulty(n) as u128);
    }
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
/// join requests of fresh identities. A member keeps at most 256 of them and 4 MiB of key
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

/// Audit M8, D-33: the round-0 leader proposes a candidate that leaves one of two approved
/// removals out (censorship by omission), before its own client's honest one. Whether that
/// value is certified or its round fails, the omitted removal stays open and decided, and a
/// later leader commits it: both removals end up committed.
#[test]
fn a_leader_that_leaves_an_approved_removal_out_does_not_keep_it_out() {
    let mut net = Net::form(7, fast_settings());
    net.run_for(10_000);
    let conv = net.nodes[0].conv().clone();
    let order: Vec<usize> = conv.leaders().iter().map(|m| index_of(&net, *m)).collect();
    let leader = order[0];
    let (x, y) = (order[5], order[6]);
    for target in [x, y] {
        let id = net.nodes[target].id();
        net.act(order[1], |c, ctx| {
            c.propose_removal(ctx, id).map(|(_, o)| o)
        })
        .unwrap();
    }
    net.deliver();
    for i in 0..7 {
        net.poll(i);
    }
    net.deliver();
    let x_id = net.nodes[x].id();
    let kept: Vec<wire::Resolution> = net.nodes[leader]
        .conv()
        .resolutions_at(net.now)
        .into_iter()
        .filter(|r| {
            r.proposal
                .as_ref()
                .and_then(|p| witan::protocol::ballot_box::parse_payload(p).ok())
                .is_some_and(|(a, _)| a.target() == x_id)
        })
        .collect();
    assert_eq!(kept.len(), 1, "both removals are decided, one is kept");
    let commit = removal_commit(&mut net, leader, x_id);
    let censored = wire::Candidate {
        epoch: conv.epoch(),
        round: 0,
        proposer: net.nodes[leader].id().as_bytes().to_vec(),
        commit,
        welcome: Vec::new(),
        resolutions: kept,
        pol: None,
    };
    let packet = net.craft(leader, Content::Candidate(censored));
    for i in (0..7).filter(|i| *i != leader) {
        let _ = net.receive(i, &packet);
    }
    net.run_for(120_000);
    let rest: Vec<usize> = (0..5).map(|k| order[k]).collect();
    for &i in &rest {
        assert!(!is_member(&net, i, x), "node {i}");
        assert!(
            !is_member(&net, i, y),
            "node {i}: the omitted removal was kept out"
        );
    }
    net.assert_agree(&rest);
}

/// Audit M13: the other members vote a member's leave down. The member is told (its leave is
/// resolved not approved), stays a member in the group's view and its own, and may ask again.
#[test]
fn a_leave_voted_down_is_reported_and_can_be_asked_again() {
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let leave_id = |net: &Net| {
        net.nodes[0]
            .conv()
            .ballots()
            .open()
            .find(|b| matches!(b.action(), Action::Leave { .. }))
            .map(|b| b.id())
            .expect("the leave is open")
    };
    net.act(3, |c, ctx| c.leave(ctx)).unwrap();
    net.deliver();
    let pid = leave_id(&net);
    for i in 0..3 {
        net.act(i, |c, ctx| c.vote(ctx, pid, false)).unwrap();
        net.deliver();
    }
    net.run_for(30_000);
    assert_eq!(resolved(&net, 3, pid), Some(false));
    assert!(is_member(&net, 0, 3));
    assert!(!net.nodes[3].conv().is_leaving());
    assert_eq!(net.nodes[3].state(), witan::protocol::State::Working);
    net.act(3, |c, ctx| c.leave(ctx)).unwrap();
    net.deliver();
    let again = leave_id(&net);
    for i in 0..3 {
        net.act(i, |c, ctx| c.vote(ctx, again, true)).unwrap();
        net.deliver();
    }
    net.run_for(30_000);
    assert!(!is_member(&net, 0, 3));
    assert_eq!(net.nodes[3].state(), witan::protocol::State::Left);
}
