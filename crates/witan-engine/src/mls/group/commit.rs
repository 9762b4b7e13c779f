//! Commits of a [`Group`]: creating one (kept pending until merged or cleared), staging a
//! received one to check it without changing anything, and merging the one a certificate
//! chose.
//!
//! Staging a commit is most of what applying it costs (OpenMLS checks its signatures and
//! path and hashes the whole ratchet tree: at 1,000 members about 7 % of a member's work on
//! a removal, docs/bench.md), and a member stages each candidate twice: to judge it before it
//! prevotes, and again when its certificate comes. So the last commit of another member a
//! caller judged is kept staged ([`Group::keep_staged`]) and handed back by
//! [`Group::stage_commit`] for the same bytes in the same epoch. Staging is a function of the
//! commit and the epoch's group (a remote commit's path secret is decrypted with this
//! member's leaf key, which changes only with the epoch), so the kept result is the one
//! staging again would give. It lives in memory only: a group loaded afresh stages again.

use super::*;

/// Result of [`Group::create_commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutput {
    /// The commit, a serialized `MlsMessage` (`PublicMessage`).
    pub commit: Vec<u8>,
    /// The Welcome for the added members, a serialized `MlsMessage`, if members were added.
    pub welcome: Option<Vec<u8>>,
}

/// A verified commit that has not been merged yet. Dropping it discards the candidate.
pub struct StagedCommitInfo {
    /// The member that created the commit.
    pub committer: MemberId,
    /// The epoch the commit applies to (the group advances to `epoch + 1` when merging).
    pub epoch: u64,
    /// Members added by the commit, in proposal order.
    pub added: Vec<MemberId>,
    /// Members removed by the commit, in proposal order.
    pub removed: Vec<MemberId>,
    /// Whether the local member is removed by the commit.
    pub self_removed: bool,
    staged: Staged,
}

/// The commit kept by [`Group::keep_staged`]: its bytes and what staging them gave.
#[derive(Debug)]
pub(super) struct KeptStage {
    commit: Vec<u8>,
    staged: StagedCommitInfo,
}

impl KeptStage {
    /// Whether this is the stage of `commit` in `epoch`.
    fn is_for(&self, commit: &[u8], epoch: u64) -> bool {
        self.commit == commit && self.staged.epoch == epoch
    }
}

enum Staged {
    /// A commit of another member.
    Remote(Box<StagedCommit>),
    /// Our own pending commit, identified by the confirmed transcript hash it produces.
    OwnPending(Vec<u8>),
}

impl std::fmt::Debug for StagedCommitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedCommitInfo")
            .field("committer", &self.committer)
            .field("epoch", &self.epoch)
            .field("added", &self.added)
            .field("removed", &self.removed)
            .field("self_removed", &self.self_removed)
            .field("own", &matches!(self.staged, Staged::OwnPending(_)))
            .finish()
    }
}

impl Group {
    /// Creates a commit adding the members of the given serialized key packages (validated
    /// with [`super::validate_key_package`]) and removing the given members. The commit stays
    /// pending until [`Group::merge_pending_commit`] or [`Group::clear_pending_commit`]; an
    /// earlier pending commit is cleared first.
    pub fn create_commit(
        &mut self,
        p: &MlsProvider,
        id: &Identity,
        adds: &[Vec<u8>],
        removes: &[MemberId],
    ) -> Result<CommitOutput, MlsError> {
        self.ensure_active()?;
        let mut key_packages = Vec::with_capacity(adds.len());
        let mut added: Vec<MemberId> = Vec::with_capacity(adds.len());
        for bytes in adds {
            let (kp, info) = check_key_package(p, bytes)?;
            if self.contains(&info.member_id) || added.contains(&info.member_id) {
                return Err(MlsError::InvalidKeyPackage(format!(
                    "{:?} is already a member or added twice",
                    info.member_id
                )));
            }
            added.push(info.member_id);
            key_packages.push(kp);
        }
        let own = self.inner.own_leaf_index();
        let mut leaves: Vec<LeafNodeIndex> = Vec::with_capacity(removes.len());
        for member in removes {
            let leaf = self
                .leaf_index(member)
                .ok_or(MlsError::UnknownMember(*member))?;
            if leaf == own {
                return Err(MlsError::InvalidCommit(
                    "a committer cannot remove itself".into(),
                ));
            }
            if !leaves.contains(&leaf) {
                leaves.push(leaf);
            }
        }
        self.clear_pending_commit(p)?;
        let bundle = (|| {
            self.inner_mut()
                .commit_builder()
                .propose_adds(key_packages)
                .propose_removals(leaves)
                .load_psks(p.storage())
                .map_err(|e| MlsError::Storage(e.to_string()))?
                .build(p.rand(), p.crypto(), &id.signer(), |_| true)
                .map_err(|e| MlsError::InvalidCommit(e.to_string()))?
                .stage_commit(p)
                .map_err(|e| MlsError::InvalidCommit(e.to_string()))
        })();
        self.note(&bundle);
        let (commit, welcome, _group_info) = bundle?.into_messages();
        Ok(CommitOutput {
            commit: commit.to_bytes().map_err(MlsError::internal)?,
            welcome: welcome
                .map(|w| w.to_bytes())
                .transpose()
                .map_err(MlsError::internal)?,
        })
    }

    /// Merges our pending commit, advancing the epoch.
    pub fn merge_pending_commit(&mut self, p: &MlsProvider) -> Result<(), MlsError> {
        if !self.has_pending_commit() {
            return Err(MlsError::NoPendingCommit);
        }
        self.kept = None;
        let merged = self.inner_mut().merge_pending_commit(p);
        self.note(&merged);
        merged.map_err(|e| MlsError::InvalidCommit(e.to_string()))
    }

    /// Drops our pending commit (another candidate won). No-op without a pending commit.
    pub fn clear_pending_commit(&mut self, p: &MlsProvider) -> Result<(), MlsError> {
        let cleared = self.inner_mut().clear_pending_commit(p.storage());
        self.note(&cleared);
        cleared.map_err(|e| MlsError::Storage(e.to_string()))
    }

    /// Verifies a serialized commit of the current epoch without changing the group.
    ///
    /// Only Add and Remove proposals are accepted, every added leaf must carry a valid
    /// member-id credential, and the committer may not change its own identity. Our own pending
    /// commit, received back from the network, is recognised and merged as such.
    pub fn stage_commit(
        &mut self,
        p: &MlsProvider,
        commit: &[u8],
    ) -> Result<StagedCommitInfo, MlsError> {
        self.ensure_active()?;
        if let Some(staged) = self.take_kept(commit) {
            return Ok(staged);
        }
        let pm = self.commit_of_this_epoch(commit)?;
        let epoch = self.epoch();
        crate::metrics::commit_staged();
        let processed = self.inner_mut().process_message(p, pm);
        self.note(&processed);
        let processed = processed.map_err(|e| match e {
            ProcessMessageError::StorageError(e) => MlsError::Storage(e.to_string()),
            e => MlsError::InvalidCommit(e.to_string()),
        })?;
        let committer = credential_member_id(processed.credential())?;
        let (staged, (added, removed), self_removed) = match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(sc) => {
                check_identities(&sc, committer)?;
                let described = self.describe(&sc)?;
                let self_removed = sc.self_removed();
                (Staged::Remote(sc), described, self_removed)
            }
            ProcessedMessageContent::OwnPendingCommit => {
                let sc = self
                    .inner
                    .pending_commit()
                    .ok_or(MlsError::NoPendingCommit)?;
                let fingerprint = sc.group_context().confirmed_transcript_hash().to_vec();
                (
                    Staged::OwnPending(fingerprint),
                    self.describe(sc)?,
                    sc.self_removed(),
                )
            }
            _ => return Err(MlsError::NotACommit),
        };
        Ok(StagedCommitInfo {
            committer,
            epoch,
            added,
            removed,
            self_removed,
            staged,
        })
    }

    /// `commit` read as a commit in a public message of this group and this epoch.
    fn commit_of_this_epoch(&self, commit: &[u8]) -> Result<ProtocolMessage, MlsError> {
        let pm = match parse_message(commit)?.extract() {
            MlsMessageBodyIn::PublicMessage(m) => ProtocolMessage::from(m),
            _ => return Err(MlsError::NotACommit),
        };
        if pm.content_type() != ContentType::Commit {
            return Err(MlsError::NotACommit);
        }
        if pm.group_id() != self.inner.group_id() {
            return Err(MlsError::WrongGroup);
        }
        let epoch = self.epoch();
        if pm.epoch().as_u64() != epoch {
            return Err(MlsError::WrongEpoch {
                message_epoch: pm.epoch().as_u64(),
                group_epoch: epoch,
            });
        }
        Ok(pm)
    }

    /// Keeps `staged`, what [`Group::stage_commit`] gave for `commit`, for the next time the
    /// same commit is staged in this epoch (its merge once certified). One commit is kept: a
    /// later one takes its place. Our own pending commit is not kept (staging it is cheap).
    pub fn keep_staged(&mut self, commit: &[u8], staged: StagedCommitInfo) {
        if matches!(staged.staged, Staged::Remote(_)) && staged.epoch == self.epoch() {
            self.kept = Some(Box::new(KeptStage {
                commit: commit.to_vec(),
                staged,
            }));
        }
    }

    /// Whether a staged `commit` is kept for this epoch.
    pub fn has_kept_stage(&self, commit: &[u8]) -> bool {
        self.kept
            .as_ref()
            .is_some_and(|k| k.is_for(commit, self.epoch()))
    }

    /// The kept stage of `commit` in this epoch, if any; the slot is emptied either way (a
    /// caller staging another commit has moved on from the kept one).
    fn take_kept(&mut self, commit: &[u8]) -> Option<StagedCommitInfo> {
        let kept = self.kept.take()?;
        kept.is_for(commit, self.epoch()).then_some(kept.staged)
    }

    /// Merges a commit staged by [`Group::stage_commit`] in the current epoch.
    pub fn merge_staged(
        &mut self,
        p: &MlsProvider,
        staged: StagedCommitInfo,
    ) -> Result<(), MlsError> {
        if staged.epoch != self.epoch() {
            return Err(MlsError::WrongEpoch {
                message_epoch: staged.epoch,
                group_epoch: self.epoch(),
            });
        }
        self.kept = None;
        match staged.staged {
            Staged::Remote(sc) => {
                let merged = self.inner_mut().merge_staged_commit(p, *sc);
                self.note(&merged);
                merged.map_err(|e| MlsError::InvalidCommit(e.to_string()))
            }
            Staged::OwnPending(fingerprint) => {
                let current = self
                    .inner
                    .pending_commit()
                    .map(|sc| sc.group_context().confirmed_transcript_hash().to_vec());
                if current.as_deref() != Some(fingerprint.as_slice()) {
                    return Err(MlsError::NoPendingCommit);
                }
                self.merge_pending_commit(p)
            }
        }
    }

    /// Checks the proposal types of a commit and names the added and removed members.
    fn describe(&self, sc: &StagedCommit) -> Result<(Vec<MemberId>, Vec<MemberId>), MlsError> {
        let bad = |m: String| MlsError::InvalidCommit(m);
        for qp in sc.queued_proposals() {
            if !matches!(qp.proposal(), Proposal::Add(_) | Proposal::Remove(_)) {
                return Err(bad(format!(
                    "unsupported proposal {:?}",
                    qp.proposal().proposal_type()
                )));
            }
        }
        let mut added = Vec::new();
        for add in sc.add_proposals() {
            added.push(credential_member_id(
                add.add_proposal().key_package().leaf_node().credential(),
            )?);
        }
        let mut removed = Vec::new();
        for rm in sc.remove_proposals() {
            let leaf = rm.remove_proposal().removed();
            let member = self
                .inner
                .member_at(leaf)
                .ok_or_else(|| bad(format!("removes empty leaf {}", leaf.u32())))?;
            removed.push(credential_member_id(&member.credential)?);
        }
        Ok((added, removed))
    }
}

/// A remote commit's identities: the committer's new leaf, if the commit has a path, keeps
/// its member id, and every added leaf carries a valid member-id credential.
fn check_identities(sc: &StagedCommit, committer: MemberId) -> Result<(), MlsError> {
    let bad = MlsError::InvalidCommit;
    if let Some(leaf) = sc.update_path_leaf_node() {
        let id = leaf_member_id(leaf.credential(), leaf.signature_key().as_slice())
            .map_err(|e| bad(e.to_string()))?;
        if id != committer {
            return Err(bad("committer changed its identity".into()));
        }
    }
    for add in sc.add_proposals() {
        let leaf = add.add_proposal().key_package().leaf_node();
        leaf_member_id(leaf.credential(), leaf.signature_key().as_slice())
            .map_err(|e| bad(format!("added member: {e}")))?;
    }
    Ok(())
}
