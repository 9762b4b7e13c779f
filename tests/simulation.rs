//! The deterministic simulation (`tests/sim/`, shared with `examples/simulate.rs`).
//!
//! - The CI sweep: 220 seeds, five members, debug build, each seed a random mix of every
//!   fault family (`Faults::all`), split in four tests so `cargo test` runs
//!   them on two cores; and 100 seeds of the byzantine-member family, in two tests.
//! - Regression tests, one per bug the simulator caught, each pinned to its seed and its
//!   fault families (docs/simulation.md, "Findings").
//! - Self-tests of the checker: a seed replays identically, and a fork is reported.
//!
//! A failing seed reproduces with the command printed in the failure message.

mod sim;

use sim::{Config, Faults, Summary, Violation, run_seed};

fn sweep(name: &str, faults: Faults, seeds: std::ops::Range<u64>) {
    sweep_config(name, Config::ci(faults), seeds);
}

fn sweep_config(name: &str, cfg: Config, seeds: std::ops::Range<u64>) {
    let failures: Vec<String> = seeds
        .filter_map(|seed| run_seed(seed, &cfg).err())
        .map(|v| v.to_string())
        .collect();
    assert!(
        failures.is_empty(),
        "{} seed(s) violated an invariant; reproduce one with \
         `cargo run --release --example simulate -- --{name} --seed N --trace`:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// The CI sweep: 220 seeds, each a random mix of every family (`Faults::all`: churn, burst
// joins, a hostile or a slow network, short and long partitions, crashes and slow restarts,
// offline backlogs, clock skew, silent, bogus, replaying and equivocating members), in four
// tests so `cargo test` runs them on both cores.

#[test]
fn ci_mixed_seeds_0_to_54() {
    sweep("ci", Faults::all(), 0..55);
}

#[test]
fn ci_mixed_seeds_55_to_109() {
    sweep("ci", Faults::all(), 55..110);
}

#[test]
fn ci_mixed_seeds_110_to_164() {
    sweep("ci", Faults::all(), 110..165);
}

#[test]
fn ci_mixed_seeds_165_to_219() {
    sweep("ci", Faults::all(), 165..220);
}

// The byzantine-member family (issue #17): in every run one of the five members (fewer than
// a third) forges vote evidence in candidates, sends proposals with crafted voting windows,
// floods packets claiming future epochs and sends garbage candidates, with churn and a
// bounded hostile network. The long sweep: `simulate -- --byzantine-member --seeds 2000`.

fn byzantine_member() -> Config {
    Config {
        mix_chance: 1.0,
        ..Config::ci(Faults::byzantine_member_family())
    }
}

#[test]
fn ci_byzantine_member_seeds_0_to_49() {
    sweep_config("byzantine-member", byzantine_member(), 0..50);
}

#[test]
fn ci_byzantine_member_seeds_50_to_99() {
    sweep_config("byzantine-member", byzantine_member(), 50..100);
}

/// Runs `seed` of the bounded families' mix (the CI sweep before commits were certified,
/// where F11–F17 were found).
fn assert_mix_passes(seed: u64) {
    if let Err(v) = run_seed(seed, &Config::ci(Faults::bounded())) {
        panic!(
            "{v}\nreproduce: cargo run --release --example simulate -- --ci-bounded --seed {seed} \
             --trace"
        );
    }
}

/// Runs `seed` with exactly `families` active, in the CI sweep's shape.
fn exact(seed: u64, families: &[&str]) -> Result<Summary, Box<Violation>> {
    let mut faults = Faults::none();
    for f in families {
        faults.set(f, true).unwrap();
    }
    let cfg = Config {
        mix_chance: 1.0,
        ..Config::ci(faults)
    };
    run_seed(seed, &cfg)
}

fn assert_passes(seed: u64, families: &[&str]) {
    if let Err(v) = exact(seed, families) {
        panic!(
            "{v}\nreproduce: cargo run --release --example simulate -- --ci --only {} --exact \
             --seed {seed} --trace",
            families.join(",")
        );
    }
}

#[test]
fn a_seed_replays_identically() {
    let cfg = Config {
        trace: true,
        ..Config::ci(Faults::bounded())
    };
    let first = run_seed(3, &cfg).expect("seed 3 passes");
    let again = run_seed(3, &cfg).expect("seed 3 passes");
    assert!(first.trace.len() > 100, "the trace records the run");
    assert_eq!(sim::replay_key(&first.trace), sim::replay_key(&again.trace));
}

/// Found by the 3,000-seed sweep with `--check-determinism` (docs/simulation.md,
/// "Findings"): seed 498 ran one of two ways, because a replaying member picked what to
/// replay from its pool in the order of proposal digests, which hash random key-package
/// bytes; seed 1492 printed that pool, bytes and all, into its trace; seed 1237's trace listed
/// a call's packets in an order that follows proposal digests.
#[test]
fn a_replaying_member_replays_the_same_traffic_in_every_run() {
    let cfg = Config {
        trace: true,
        ..Config::ci(Faults::all())
    };
    for seed in [498, 1237, 1492] {
        let first = run_seed(seed, &cfg);
        let first = sim::trace_of(&first);
        assert!(
            first.iter().any(|l| l.contains("replayed traffic")),
            "seed {seed} has a replaying member"
        );
        for run in 1..=6 {
            let again = run_seed(seed, &cfg);
            assert_eq!(
                sim::replay_key(first),
                sim::replay_key(sim::trace_of(&again)),
                "run {run} of seed {seed} differs from the first"
            );
        }
    }
}

#[test]
fn the_checker_reports_two_members_in_one_epoch_with_different_keys_as_a_fork() {
    use witan::client::{ConversationInfo, ConversationState, MemberInfo};

    let mut sim = sim::Sim::new(1, Config::ci(Faults::none())).unwrap();
    let ids: Vec<String> = sim.members.iter().take(2).map(|m| m.id.clone()).collect();
    let info = ConversationInfo {
        conversation_id: sim::world::CONV.into(),
        state: ConversationState::Working,
        epoch: 4,
        members: ids
            .iter()
            .map(|id| MemberInfo {
                member_id: id.clone(),
                score: 100,
                is_steward: true,
            })
            .collect(),
        stewards: ids.clone(),
        epoch_steward: Some(ids[0].clone()),
        open_proposals: Vec::new(),
    };
    for (m, auth) in [(0, vec![1u8; 32]), (1, vec![1u8; 32])] {
        sim.members[m].view.info = Some(info.clone());
        sim.members[m].view.auth = auth;
    }
    assert!(sim.check_fork(1).is_ok(), "same epoch, same keys: no fork");
    sim.members[1].view.auth = vec![2u8; 32];
    let v = sim.check_fork(1).unwrap_err();
    assert_eq!(v.kind, "fork");
}

// ----- Regression tests: one per bug the simulator caught (docs/simulation.md, "Findings"),
// each pinned to the seed and fault families that found it. They run in every `cargo test`;
// F7, F8 and F10 (the forks of issue #15) run since the certified-commit engine.

/// F1: a member that sees traffic of the next epoch while it holds freeze-round candidates
/// applies the best of them *leaving its own out* (`apply_best_received` filtered
/// `committer != me`), although the others chose exactly its candidate: fork.
/// Fixed: its own candidate takes part in the selection like any other.
#[test]
fn f1_a_member_does_not_drop_its_own_candidate_when_the_group_moves_on() {
    assert_passes(2, &["churn", "network"]);
}

/// F2: members apply the best of an *incomplete* candidate set — on next-epoch traffic, or an
/// epoch steward that finds the others froze — while others wait for the full set: fork.
/// Fixed: next-epoch traffic triggers the selection only once every steward's candidate is
/// in; a late epoch steward joins the round as a voter (no candidate of its own that
/// members who already selected could not include), and a steward that already holds
/// another's candidate does not add one.
#[test]
fn f2_no_member_selects_before_the_candidate_set_is_complete() {
    assert_passes(159, &["churn", "network"]);
}

/// F3: `verify_evidence` accepts a proposal as decided YES once it expired, counting the
/// voters whose votes the candidate left out as YES: a member back from offline adopts the
/// bogus candidate's removal nobody voted for, then freezes and re-elects alone.
/// Fixed: evidence decides on the votes it carries; expiry decisions are each member's own.
#[test]
fn f3_evidence_of_an_expired_proposal_without_votes_is_refused() {
    assert_passes(22, &["bogus", "offline"]);
}

/// F4: a member back from offline refuses the proposals in its backlog that expired while it
/// was away (judged by its clock now), misses a steward election, and then refuses the new
/// stewards' candidates as "from a non-steward": it never catches up (and re-joining is
/// impossible, F9). Fixed: a proposal of the current epoch that expired before it arrived is
/// registered (without voting) and decided by expiry only after its backlog was read.
#[test]
fn f4_a_member_back_from_offline_follows_the_elections_it_missed() {
    assert_passes(9, &["churn", "offline"]);
}

/// F5a: the missed-commit penalty is applied by the members that ran the freeze round,
/// never by the epoch steward to itself: score tables differ. Fixed: every member derives
/// it from the applied commit (its author is not the epoch steward of its epoch).
#[test]
fn f5a_every_member_applies_the_missed_commit_penalty() {
    assert_passes(65, &["churn", "crashes"]);
}

/// F5b: an invalid candidate is penalised only by members still in its epoch and round.
/// Fixed: what a member finds wrong with a received candidate is kept as local suspicion
/// (it raises and votes emergencies), and reaches the shared table only through the vote.
#[test]
fn f5b_every_member_applies_the_invalid_candidate_penalty() {
    assert_passes(78, &["churn", "bogus"]);
}

/// F7: with deliveries slower than the freeze window (eventual delivery only), members
/// selected from different candidate sets: fork. Timer-based freeze rounds needed synchrony.
/// Fixed by certified commits: a commit applies only with a quorum's precommits, and timers
/// decide only when rounds move on (docs/safety.md).
#[test]
fn f7_slow_deliveries_do_not_fork_the_group() {
    assert_passes(4, &["slow-network"]);
}

/// F8: an epoch steward sending one valid commit to some members and another to the rest
/// forked the group: the epoch steward's candidate was applied on receipt. Fixed by certified
/// commits: a member signs one prevote per round, so two values cannot both gather a quorum.
#[test]
fn f8_an_equivocating_epoch_steward_does_not_fork_the_group() {
    assert_passes(0, &["churn", "equivocation"]);
}

/// F10: both sides of a partition longer than the voting and freeze windows decided and
/// committed on their own: split brain. Fixed by certified commits: only a side holding a
/// quorum of the epoch's members commits; the other catches up when the partition heals.
#[test]
fn f10_a_long_partition_does_not_split_the_group() {
    assert_passes(28, &["churn", "long-partitions"]);
}

// ----- Found in the CI mix (`--ci`, every bounded family) once F1–F5 were fixed; several
// were exposed by F3's stricter evidence rule. Pinned to their seed of the CI mix.

/// F11: a candidate referencing a proposal the receiver holds but has not decided yet (its
/// votes still on their way, or its clock a little behind the committer's at expiry) was
/// refused as "not finalized": a member back from offline refused the freeze round's
/// candidates and committed its own: fork. Fixed: such candidates are held and judged again
/// when the proposal is decided.
#[test]
fn f11_a_candidate_is_judged_once_its_proposals_are_decided_here() {
    assert_mix_passes(10);
}

/// F12: an emergency removal decided NO by some members before a commit removed its target
/// and dropped unresolved by the others (its votes, sent in the old epoch, cannot reach
/// members past it): the proposer's penalty differs between score tables. Fixed: score
/// effects of emergencies a commit makes moot are taken back at that commit.
#[test]
fn f12_an_emergency_made_moot_by_a_commit_leaves_no_score_behind() {
    assert_mix_passes(11);
}

/// F13: members that joined after a proposal was decided at expiry (silent voters counted)
/// could not verify the committer's evidence for it under F3's rule, refused every candidate
/// and were told to re-join. Fixed: a member that was not in the group in the proposal's
/// epoch (it could not have seen it) lets expiry decide the evidence.
#[test]
fn f13_a_joiner_accepts_evidence_decided_before_it_joined() {
    assert_mix_passes(26);
}

/// F14: a candidate from a member that an election, decided by the committer but not yet by
/// the receiver, makes a steward was refused as "from a non-steward"; the receiver then froze
/// and committed its own candidate: fork. Fixed: held until the election is decided.
#[test]
fn f14_a_candidate_from_a_steward_elect_waits_for_the_election() {
    assert_mix_passes(90);
}

/// F15: a member away in the middle of a freeze round closed it (no candidates, so
/// re-election) on the first packet of its backlog, before reading the candidates in it;
/// and a member whose own leave was approved and committed in its absence stayed in the old
/// epoch forever. Fixed: deadlines long overdue when a packet arrives wait for the poll after
/// the backlog; a member behind whose removal was approved has left.
#[test]
fn f15_a_leaving_member_back_from_offline_learns_it_left() {
    assert_mix_passes(77);
}

/// F16: a member back from a crash proposed (from the join request in its backlog) in the
/// epoch it was still in; the others, one commit ahead, refused the proposal as stale, were
/// then counted as silent YES at its expiry, and could not verify the commit carrying it,
/// while a member that joined after it could: split. Fixed: a proposal of a recent past
/// epoch whose voter count is that epoch's group size is registered and voted on.
#[test]
fn f16_a_proposal_made_one_epoch_behind_is_still_voted_on() {
    assert_mix_passes(342);
}

// ----- Found in the CI mix once commits were certified.

/// Runs `seed` of the CI sweep (every family).
fn assert_all_passes(seed: u64) {
    if let Err(v) = run_seed(seed, &Config::ci(Faults::all())) {
        panic!(
            "{v}\nreproduce: cargo run --release --example simulate -- --ci --seed {seed} --trace"
        );
    }
}

/// F18: a member whose own removal it alone considered decided (a bogus member's proposal
/// that only it held) passed every round it led, while the others, without work, let their
/// rounds rest: the epoch never ended for it. Fixed: a member whose round runs out, or that
/// passes its turn, shares its work (the proposals with the votes it holds).
#[test]
fn f18_work_one_member_holds_is_shared() {
    assert_mix_passes(131);
}

/// F19: a member that came back from offline proposed an add from its backlog, then a commit
/// added that member by another proposal; it resolved its own as "not approved" while, after
/// the member was removed again, the others registered it and committed it approved:
/// opposite decisions for one proposal. Fixed: a proposal a new epoch makes moot is
/// forgotten locally, never resolved; only a certified commit resolves.
#[test]
fn f19_a_moot_proposal_is_forgotten_not_resolved() {
    assert_mix_passes(136);
}

/// F20: one value was certified in two rounds; members that applied different certificates
/// penalised the leaders of different failed rounds: steward lists and scores diverged.
/// Fixed: the leaders penalised are those ahead of the value's author in the epoch's order,
/// a function of the value alone.
#[test]
fn f20_penalties_depend_on_the_certified_value_not_its_round() {
    assert_all_passes(147);
}

/// F21: a leader could only propose its first value of an epoch again (one MLS commit per
/// epoch); once an emergency opened, the others refused it for ever: no round ended. Fixed:
/// a value without a polka is valid only from its author, so an author that saw no polka
/// for its value knows it cannot be certified and builds a fresh one.
#[test]
fn f21_a_leader_replaces_a_stale_value_nobody_locked() {
    assert_all_passes(152);
}

/// F22: a member that had left and joined again took a byzantine member's replay of its own
/// old leave proposal (resolved long before it re-joined) as open work, and its rounds
/// never ended. Fixed: a member refuses proposals made before it joined.
#[test]
fn f22_a_rejoined_member_refuses_proposals_older_than_its_membership() {
    assert_all_passes(156);
}

/// F23: the members a commit added never got their welcome when the value was certified in
/// a later round than the one it was first proposed in: the certificate named the first
/// proposer (silent by then), and only a certificate's proposer sends the welcome. The group
/// listed a member that never arrived. Fixed: a certificate carries the candidate as its
/// former proposed it (round and proposer), so whoever formed it sends the welcome.
#[test]
fn f23_whoever_forms_a_certificate_welcomes_the_members_it_adds() {
    assert_all_passes(1042);
}

/// F24: round timeouts doubled; after a few rounds that failed (a leader whose proposals
/// others had not seen, one that passed, a byzantine one) the next took a minute to start,
/// and the group had not committed when the network had long healed. Fixed: timeouts grow
/// linearly (freeze window × round), capped.
#[test]
fn f24_rounds_after_a_few_failed_ones_do_not_take_minutes() {
    assert_all_passes(2432);
}

/// F25: a leader proposed again a locked value that removes it, formed the certificate and
/// left with it, so nobody welcomed the member the commit added. Fixed: a leader passes its
/// turn rather than propose a value that removes it.
#[test]
fn f25_a_leader_does_not_certify_its_own_removal() {
    assert_all_passes(525);
}

/// F26: a joiner refused a genuine welcome: it counted a commit's removals by proposal (three
/// emergency removals of one member counted three), and required more than f signatures of
/// members it can see even when the commit removed most of the signers. Fixed: distinct
/// removed members, and a quorum less the removed members, at least one.
#[test]
fn f26_a_joiner_checks_the_certificate_against_the_members_it_can_see() {
    assert_all_passes(951);
}

/// F27: a member back with its backlog proposed the add of a join request whose key package
/// an earlier commit had used (the member had joined and been removed since); the group
/// committed it, and the member could never arrive. Fixed: members remember the key packages
/// commits used, refuse them, and resolve an approved add of one as dropped.
#[test]
fn f27_a_used_key_package_is_never_added_again() {
    assert_all_passes(543);
}

/// F28: two members' rounds stayed one apart for ever (each started its timers when it saw
/// the work), and a group of two needs both in one round. Fixed: NewRound messages go to
/// everyone, so a member still in an earlier round moves on once more than f members are
/// ahead.
#[test]
fn f28_members_whose_rounds_drifted_apart_meet_again() {
    assert_all_passes(2001);
}

/// F29: two honest members ran a full round behind the third (a silent byzantine member in
/// the fourth seat, so the three are a quorum only together). The leader ahead formed the
/// polka of its round from the late prevotes, but it had moved on by then and precommitted
/// only in its current round: two precommits, never three. Fixed: a member precommits the
/// polka of a round it has left as long as it has prevoted in no later round (which keeps
/// every certificate's precommits ahead of its signers' later prevotes, see docs/safety.md).
#[test]
fn f29_a_member_that_moved_on_precommits_a_late_polka_of_its_round() {
    assert_all_passes(5152);
}

/// F30: a join request made before its member entered the group (a renewal, or a copy from a
/// member whose clock ran behind) reached members late and was taken for a re-join: the
/// group removed the member and re-added a leaf its device never asked for (`ghost`). Fixed:
/// members remember when they applied each later member's add and ignore a current member's
/// requests made before then.
#[test]
fn f30_a_stale_join_request_of_a_member_is_not_a_re_join() {
    assert_all_passes(595);
    assert_all_passes(709);
}

/// Runs `seed` of the full mix (every family, one chaos round) with `members` members.
fn assert_full_passes(seed: u64, members: usize) {
    if let Err(v) = run_seed(seed, &Config::full(members)) {
        panic!(
            "{v}\nreproduce: cargo run --release --example simulate -- --seed {seed} --members \
             {members} --trace"
        );
    }
}

/// F31: members that joined after a proposal was made never learned it: they refuse a
/// proposal made before they joined (F22), so the share of its holder's work at each round
/// timeout was refused, and its holder ran its rounds alone for fifty seconds, until it led
/// one and its candidate showed the others the work; the group had not committed when the
/// calm period ended.
#[test]
fn f31_a_proposal_open_when_a_member_joins_is_one_it_accepts_later() {
    assert_full_passes(1036, 12);
}

/// The sleeping-phones family (`tests/sim/sleeping.rs`): eight phones asleep 90 % of the
/// time. Every seed stays one group (no fork, no proposal resolved both ways, nobody told to
/// re-join, the removed member told it left), and every measure completes within its
/// deadline: both joins, the removal, and the re-election that takes a silent epoch
/// steward's slot away (docs/simulation.md, "Sleeping phones").
#[test]
fn sleeping_phones_seeds_0_to_5_stay_one_group_and_admit_remove_and_replace_a_silent_steward() {
    let cfg = sim::sleeping::SleepConfig::new(8);
    let mut failures = Vec::new();
    for seed in 0..6 {
        let o = sim::sleeping::check(seed, &cfg);
        if o.incomplete() || !o.violations.is_empty() {
            failures.push(format!("{o:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "reproduce with `cargo run --release --example simulate -- --sleeping-phones \
         --members 8 --seed N`:\n{}",
        failures.join("\n")
    );
}
