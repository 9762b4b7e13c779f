//! Stewards that fail: rotation through several steward lists, a silent epoch steward
//! replaced by its backup in the next round, several stewards' rounds ending in one commit
//! everywhere, an epoch steward back from offline following the group.

mod support;

use support::{Net, fast_settings};
use witan::protocol::{Event, State};

#[test]
fn seven_members_run_through_two_full_steward_lists() {
    let mut net = Net::new(17);
    net.create(0, fast_settings());
    for i in 1..7 {
        net.request_join(i);
    }
    net.run_for(30_000);
    let first_list = net.nodes[0].conv().stewards().clone();
    let mut lists = vec![first_list.clone()];
    for i in 7..17 {
        net.request_join(i);
        net.run_for(30_000);
        let current = net.nodes[0].conv().stewards().clone();
        if lists.last() != Some(&current) {
            lists.push(current);
        }
        let online: Vec<usize> = (0..=i).collect();
        net.assert_agree(&online);
    }
    // Lists renewed after formation: at least two were used up and replaced.
    let renewed: Vec<u64> = lists.iter().map(|l| l.base_epoch()).collect();
    let mut distinct = renewed.clone();
    distinct.dedup();
    assert!(distinct.len() >= 3, "steward lists seen: {renewed:?}");
    assert!(distinct.windows(2).all(|w| w[1] > w[0]));
    assert_eq!(net.nodes[3].conv().members().len(), 17);
}

#[test]
fn silent_epoch_steward_is_replaced_by_the_backup_and_loses_score() {
    let mut net = Net::form(7, fast_settings());
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let es = conv.leaders()[0];
    let backup = conv.leaders()[1];
    assert!(conv.stewards().contains(&backup));
    let es_idx = net.nodes.iter().position(|n| n.id() == es).unwrap();
    let target_idx = (0..7)
        .find(|i| {
            let id = net.nodes[*i].id();
            id != es && id != backup
        })
        .unwrap();
    let proposer = (0..7).find(|i| *i != es_idx && *i != target_idx).unwrap();
    net.offline.insert(es_idx);
    net.muted.insert(es_idx);
    let target = net.nodes[target_idx].id();
    net.act(proposer, |c, ctx| {
        c.propose_removal(ctx, target).map(|(_, o)| o)
    })
    .unwrap();
    net.run_for(30_000);
    let honest: Vec<usize> = (0..7)
        .filter(|i| *i != es_idx && *i != target_idx)
        .collect();
    net.assert_agree(&honest);
    let after = net.nodes[honest[0]].conv();
    assert!(
        !after.members().contains(&target),
        "the removal was committed without the epoch steward"
    );
    assert_eq!(
        after.scores().get(&es),
        Some(fast_settings().default_peer_score - fast_settings().score_missed_commit_penalty)
    );
    assert!(!after.stewards().contains(&es), "its slot was taken away");
    // Every honest member went past round 0, and the backup's value was certified.
    for &i in &honest {
        assert!(
            net.nodes[i]
                .events
                .contains(&Event::StateChanged(State::Freezing)),
            "node {i} froze"
        );
        let backup_rewarded =
            net.nodes[i].conv().scores().get(&backup) == Some(fast_settings().default_peer_score);
        assert!(backup_rewarded, "node {i}");
    }
}

#[test]
fn rounds_led_by_several_stewards_end_in_one_commit_everywhere() {
    // The epoch steward is silent; later rounds are led by the other stewards in turn, and
    // every member applies the same commit, which the equal epoch authenticators prove.
    let mut net = Net::form(9, fast_settings());
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let es = conv.leaders()[0];
    let es_idx = net.nodes.iter().position(|n| n.id() == es).unwrap();
    net.offline.insert(es_idx);
    net.muted.insert(es_idx);
    let target_idx = (0..9)
        .find(|i| *i != es_idx && !conv.stewards().contains(&net.nodes[*i].id()))
        .unwrap();
    let proposer = (0..9).find(|i| *i != es_idx && *i != target_idx).unwrap();
    let target = net.nodes[target_idx].id();
    net.act(proposer, |c, ctx| {
        c.propose_removal(ctx, target).map(|(_, o)| o)
    })
    .unwrap();
    net.run_for(30_000);
    let honest: Vec<usize> = (0..9)
        .filter(|i| *i != es_idx && *i != target_idx)
        .collect();
    net.assert_agree(&honest);
    assert_eq!(net.nodes[honest[0]].conv().members().len(), 8);
}

#[test]
fn an_epoch_steward_back_from_offline_follows_the_group_instead_of_forking() {
    // Found by the client's tests: the offline epoch steward, replaying its backlog, used to
    // commit its own candidate although the others had applied a backup's in a freeze round.
    // Forty steward orders (identities from fixed seeds) cover both roles of the offline node.
    for seed in 0..40u8 {
        let mut net = Net::new(3);
        for (k, n) in net.nodes.iter_mut().enumerate() {
            let mut secret = [seed; 32];
            secret[0] = k as u8;
            n.identity = witan::mls::Identity::from_secret(&secret).unwrap();
        }
        net.create(0, fast_settings());
        net.request_join(1);
        net.request_join(2);
        net.run_for(30_000);
        net.offline.insert(2);
        net.act(1, |c, ctx| c.leave(ctx)).unwrap();
        net.run_for(20_000);
        net.send(0, b"new epoch");
        net.deliver();
        net.reconnect(2);
        net.run_for(5_000);
        assert_eq!(
            net.epoch_authenticator(0),
            net.epoch_authenticator(2),
            "seed {seed}"
        );
        assert!(
            net.nodes[2].history.iter().any(|m| m.body == b"new epoch"),
            "seed {seed}"
        );
    }
}

/// A member whose round runs out holding work the others lack (a proposal fewer than a
/// quorum voted on: here its own removal of another member, which reached nobody and which,
/// unbacked, it considers rejected at expiry) shares it before its round moves on, so the
/// others vote on it and a leader commits it (F31: the share came after the round had moved on,
/// so it never ran).
#[test]
fn a_member_whose_round_runs_out_shares_the_work_fewer_than_a_quorum_voted_on() {
    use witan::wire::group_payload::Content;
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    let first = net.nodes[0].conv().leaders()[0];
    let holder = (0..4).find(|i| net.nodes[*i].id() != first).unwrap();
    let target = (0..4).find(|i| *i != holder).unwrap();
    for to in (0..4).filter(|i| *i != holder) {
        net.cut.insert((holder, to));
    }
    let removed = net.nodes[target].id();
    net.act(holder, |c, ctx| {
        c.propose_removal(ctx, removed).map(|(_, o)| o)
    })
    .unwrap();
    // Its window closes: the holder alone considers the removal decided (rejected: nobody
    // backed it) and starts its rounds; nothing it sends reaches the others.
    net.run_for(fast_settings().vote_timeout_ms + 100);
    net.cut.clear();
    let others: Vec<usize> = (0..4).filter(|i| *i != holder).collect();
    for &i in &others {
        assert!(net.nodes[i].conv().ballots().open().next().is_none());
    }
    // The holder alone, deadline by deadline, until its round moves on.
    let reader = others[0];
    let mut sent = Vec::new();
    for _ in 0..20 {
        let Some(at) = net.nodes[holder].conv().next_deadline() else {
            break;
        };
        net.now = net.now.max(at);
        net.poll(holder);
        sent = net.in_flight_from(holder, reader);
        if sent.iter().any(|c| matches!(c, Content::NewRound(_))) {
            break;
        }
    }
    assert!(
        sent.iter().any(|c| matches!(c, Content::NewRound(_))),
        "its round moved on"
    );
    assert!(
        sent.iter().any(|c| matches!(c, Content::Proposal(_))),
        "it shared the work when its round ran out: {sent:?}"
    );
    // The others learn it, back it, and the group commits it.
    net.run_for(60_000);
    let stay: Vec<usize> = (0..4).filter(|i| *i != target).collect();
    net.assert_agree(&stay);
    assert!(!net.nodes[holder].conv().members().contains(&removed));
    assert_eq!(net.nodes[target].state(), State::Left);
    for i in stay {
        assert!(net.nodes[i].conv().ballots().open().next().is_none(), "{i}");
    }
}
