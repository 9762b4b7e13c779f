//! A guided tour of witan: six members, each a `WitanClient` with its own SQLite file, linked
//! by an in-process topic router and driven by a virtual clock, live through the life of a
//! group chat — formation by vote, chat, a member voted out while the epoch steward has
//! crashed (its round runs out and the next steward leads the commit instead), the crashed
//! steward removed — and finish with a summary table and an agreement
//! check (the process exits with status 1 if the honest members disagree).
//!
//! ```sh
//! cargo run --release --example demo            # the databases are deleted at the end
//! cargo run --release --example demo -- --keep  # keep them for inspection
//! ```
//!
//! Nothing here is special to the demo: the transport is a FIFO queue per topic, the clock
//! jumps to the earliest `PollReport::next_wakeup_at_ms` whenever no packet is in flight, and
//! every line of the timeline is an event the clients' listeners heard (grouped when several
//! members heard the same thing at the same virtual instant).

mod timeline;
mod world;

use std::collections::BTreeSet;
use std::process::ExitCode;

use witan::client::{
    ConversationInfo, ConversationSettings, ConversationState, default_conversation_settings,
};

use world::Demo;

const CONV: &str = "garden-club";
const NAMES: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
const START_MS: u64 = 1_750_000_000_000;

pub fn settings() -> ConversationSettings {
    ConversationSettings {
        pending_join_timeout_ms: 60_000,
        commit_inactivity_ms: 3_000,
        recovery_inactivity_ms: 2_000,
        freeze_window_ms: 1_000,
        vote_timeout_ms: 10_000,
        auto_vote_delay_ms: Some(500),
        commit_delay_ms: 200,
        max_clock_skew_ms: 5_000,
        ..default_conversation_settings()
    }
}

fn main() -> ExitCode {
    let keep = std::env::args().any(|a| a == "--keep");
    let wall = std::time::Instant::now();
    println!("witan demo: six members, one group chat, virtual time\n");
    let mut d = Demo::new();
    form(&mut d);

    d.say("they chat");
    d.chat(ALICE, "Welcome to the garden club, everyone!");
    d.chat(BOB, "Thanks! The tomatoes are finally red.");
    d.chat(ERIN, "Anyone has spare basil seedlings?");
    d.run_for(2_000);

    let crashed = vote_out_while_the_steward_is_down(&mut d);

    d.say("chat goes on");
    d.chat(crashed.backup, "Sorry about that, we are back.");
    let remover = *d.live().first().expect("a member");
    d.say(&format!(
        "{} proposes to remove the unresponsive {}",
        NAMES[remover], NAMES[crashed.steward]
    ));
    let target = d.c(crashed.steward).member_id();
    let proposal = d
        .c(remover)
        .propose_removal(CONV.into(), target)
        .expect("propose");
    d.proposals
        .insert(proposal, format!("remove {}", NAMES[crashed.steward]));
    d.run_for(10_000);
    d.chat(crashed.accuser, "Peace restored.");
    d.run_for(2_000);

    let ok = summary(&d);
    println!(
        "\n{:.1} s of virtual time in {:.2} s of real time.",
        (d.now() - START_MS) as f64 / 1000.0,
        wall.elapsed().as_secs_f64()
    );
    if keep {
        let path = d.world.dir.keep();
        println!("Databases kept in {}", path.display());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;
const DAVE: usize = 3;
const ERIN: usize = 4;
const FRANK: usize = 5;

/// Alice creates the conversation and admits the others in two waves, the second by vote.
fn form(d: &mut Demo) {
    d.say("alice creates the conversation \"garden-club\"");
    let s = settings();
    println!(
        "           settings: commit inactivity {} s, freeze window {} s, vote timeout {} s, \
         auto-vote after {} ms",
        s.commit_inactivity_ms / 1000,
        s.freeze_window_ms / 1000,
        s.vote_timeout_ms / 1000,
        s.auto_vote_delay_ms.unwrap_or_default()
    );
    d.c(ALICE)
        .create_conversation(CONV.into(), s)
        .expect("create");
    d.print_events(true);

    d.say("bob, carol and dave ask to join; alice, alone, admits them");
    for i in [BOB, CAROL, DAVE] {
        d.c(i).request_to_join(CONV.into()).expect("join");
    }
    d.run_for(5_000);
    d.say("erin and frank ask to join; the four members vote");
    for i in [ERIN, FRANK] {
        d.c(i).request_to_join(CONV.into()).expect("join");
    }
    d.run_for(5_000);
}

/// Who took part in the removal voted while the epoch steward was down.
struct Crashed {
    /// The epoch steward that crashed.
    steward: usize,
    /// The steward after it in the list.
    backup: usize,
    /// The member that proposed the removal.
    accuser: usize,
}

/// The epoch steward crashes; a member posts spam and is voted out by hand; the next
/// steward's round commits the removal.
fn vote_out_while_the_steward_is_down(d: &mut Demo) -> Crashed {
    let before = d.info(ALICE);
    let steward = d.index(before.epoch_steward.as_deref().expect("an epoch steward"));
    let position = before
        .stewards
        .iter()
        .position(|s| Some(s) == before.epoch_steward.as_ref())
        .unwrap_or(0);
    let backup = d.index(&before.stewards[(position + 1) % before.stewards.len()]);
    d.say(&format!(
        "{} crashes: it stops polling and its packets are lost (epoch steward of epoch {}, \
         backup {})",
        NAMES[steward], before.epoch, NAMES[backup]
    ));
    d.world.crash(steward);
    d.present.remove(&steward);
    let live = d.live();
    let spammer = *live.iter().rev().find(|i| **i != backup).expect("a member");
    let accuser = *live.iter().find(|i| **i != spammer).expect("a member");
    d.chat(spammer, "BUY CHEAP GARDEN GNOMES!!!");

    d.say(&format!(
        "{} proposes to vote {} out; members vote by hand",
        NAMES[accuser], NAMES[spammer]
    ));
    let proposal = d
        .c(accuser)
        .propose_removal(CONV.into(), d.c(spammer).member_id())
        .expect("propose");
    d.proposals
        .insert(proposal, format!("remove {}", NAMES[spammer]));
    d.deliver();
    d.print_events(true);
    let mut voters: Vec<usize> = live.iter().copied().filter(|i| *i != accuser).collect();
    voters.sort_by_key(|i| *i != spammer); // the accused first
    for i in voters {
        vote_by_hand(d, i, proposal, i != spammer);
    }
    d.say(&format!(
        "nobody commits: {} is gone; after {} s its round runs out and the next steward \
         leads the commit, certified by a quorum of the members",
        NAMES[steward],
        settings().commit_inactivity_ms / 1000
    ));
    d.run_for(10_000);
    let after = d.info(accuser);
    let score = |info: &ConversationInfo, who: usize| {
        let id = d.c(who).member_id();
        info.members
            .iter()
            .find(|m| m.member_id == id)
            .map_or("-".to_string(), |m| m.score.to_string())
    };
    println!(
        "           recovered without {}: epoch {} -> {}; its score {} -> {} (missed commit)",
        NAMES[steward],
        before.epoch,
        after.epoch,
        score(&before, steward),
        score(&after, steward),
    );
    Crashed {
        steward,
        backup,
        accuser,
    }
}

/// Member `i` votes on `proposal` and the packets are delivered; a refusal is printed.
fn vote_by_hand(d: &mut Demo, i: usize, proposal: u64, approve: bool) {
    match d.c(i).vote(CONV.into(), proposal, approve) {
        Ok(()) => println!(
            "{}   {:<22} votes {}",
            Demo::stamp(d.now()),
            NAMES[i],
            if approve { "YES" } else { "NO" }
        ),
        Err(e) => println!(
            "{}   {:<22} does not vote: {e}",
            Demo::stamp(d.now()),
            NAMES[i]
        ),
    }
    d.deliver();
    d.print_events(true);
}

/// Prints one row per member and checks that the honest members agree. Returns the verdict.
fn summary(d: &Demo) -> bool {
    println!("\n== summary");
    let header: String = NAMES.iter().map(|n| format!("{n:>6}")).collect();
    println!(
        "{:<16} {:<9} {:>5} {:>7}  {:<24} {:>4}  scores:{header}",
        "member", "state", "epoch", "members", "stewards", "msgs"
    );
    for (i, name) in NAMES.iter().enumerate() {
        let info = d.info(i);
        let msgs = d
            .c(i)
            .messages(CONV.into(), None, 10_000)
            .map(|m| m.len())
            .unwrap_or(0);
        let scores: String = d
            .world
            .open_clients()
            .map(|(_, c)| {
                let id = c.member_id();
                let score = info.members.iter().find(|m| m.member_id == id);
                format!(
                    "{:>6}",
                    score.map_or("-".to_string(), |m| m.score.to_string())
                )
            })
            .collect();
        let label = if d.crashed(i) {
            format!("{name} (crashed)")
        } else {
            name.to_string()
        };
        println!(
            "{label:<16} {:<9} {:>5} {:>7}  {:<24} {msgs:>4}         {scores}",
            format!("{:?}", info.state),
            info.epoch,
            info.members.len(),
            d.names_of(&info.stewards)
        );
    }
    let honest = d.live();
    let reference = d.info(honest[0]);
    let auth = d.c(honest[0]).epoch_authenticator(CONV.into()).ok();
    let same = |i: usize| {
        let info = d.info(i);
        let ids = |c: &ConversationInfo| {
            c.members
                .iter()
                .map(|m| m.member_id.clone())
                .collect::<BTreeSet<_>>()
        };
        info.state == ConversationState::Working
            && info.epoch == reference.epoch
            && ids(&info) == ids(&reference)
            && info.stewards == reference.stewards
            && d.c(i).epoch_authenticator(CONV.into()).ok() == auth
    };
    let agree = honest.iter().all(|&i| same(i));
    let who: Vec<&str> = honest.iter().map(|i| NAMES[*i]).collect();
    println!(
        "\ncheck: {} honest members ({}) {} on epoch {}, members [{}] and stewards [{}]",
        honest.len(),
        who.join(", "),
        if agree { "AGREE" } else { "DISAGREE" },
        reference.epoch,
        d.set_of(
            &reference
                .members
                .iter()
                .map(|m| m.member_id.clone())
                .collect::<Vec<_>>()
        ),
        d.names_of(&reference.stewards)
    );
    agree && honest.len() >= 3
}
