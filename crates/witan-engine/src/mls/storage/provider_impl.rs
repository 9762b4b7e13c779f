//! OpenMLS' `StorageProvider` for [`MlsStorage`]: each entity OpenMLS stores, mapped to its
//! row label and to the storage's get/put/delete and list operations.

use super::*;

/// Write/read/delete of one value keyed by the group id, with the trait's generic order
/// `<GroupId, Value>`.
macro_rules! group_value {
    ($write:ident, $read:ident, $delete:ident, $bound:ident, $label:expr) => {
        group_value!($write, $read, $delete, $bound, $label, put);
    };
    ($write:ident, $read:ident, $delete:ident, $bound:ident, $label:expr, $put:ident) => {
        group_value!($write, $read, $delete, $bound, $label, $put, get, del);
    };
    // `$put`, `$get`, `$del` handle the row: `put`/`get`/`del`, or ones with their own rule
    // for that value.
    (
        $write:ident, $read:ident, $delete:ident, $bound:ident, $label:expr,
        $put:ident, $get:ident, $del:ident
    ) => {
        fn $write<G: traits::GroupId<CURRENT_VERSION>, T: traits::$bound<CURRENT_VERSION>>(
            &self,
            group_id: &G,
            value: &T,
        ) -> Result<(), Self::Error> {
            self.$put($label, group_id, value)
        }

        fn $read<G: traits::GroupId<CURRENT_VERSION>, T: traits::$bound<CURRENT_VERSION>>(
            &self,
            group_id: &G,
        ) -> Result<Option<T>, Self::Error> {
            self.$get($label, group_id)
        }

        fn $delete<G: traits::GroupId<CURRENT_VERSION>>(
            &self,
            group_id: &G,
        ) -> Result<(), Self::Error> {
            self.$del($label, group_id)
        }
    };
}

impl StorageProvider<CURRENT_VERSION> for MlsStorage<'_> {
    type Error = MlsStorageError;

    group_value!(
        write_mls_join_config,
        mls_group_join_config,
        delete_group_config,
        MlsGroupJoinConfig,
        JOIN_CONFIG,
        put_join_config
    );
    group_value!(write_tree, tree, delete_tree, TreeSync, TREE);
    group_value!(
        write_interim_transcript_hash,
        interim_transcript_hash,
        delete_interim_transcript_hash,
        InterimTranscriptHash,
        TRANSCRIPT_HASH
    );
    group_value!(
        write_context,
        group_context,
        delete_context,
        GroupContext,
        CONTEXT
    );
    group_value!(
        write_confirmation_tag,
        confirmation_tag,
        delete_confirmation_tag,
        ConfirmationTag,
        CONFIRMATION_TAG
    );
    group_value!(
        write_message_secrets,
        message_secrets,
        delete_message_secrets,
        MessageSecrets,
        MESSAGE_SECRETS,
        put_message_secrets,
        get_message_secrets,
        del_message_secrets
    );
    group_value!(
        write_resumption_psk_store,
        resumption_psk_store,
        delete_all_resumption_psk_secrets,
        ResumptionPskStore,
        RESUMPTION_PSK
    );
    group_value!(
        write_own_leaf_index,
        own_leaf_index,
        delete_own_leaf_index,
        LeafNodeIndex,
        OWN_LEAF_INDEX
    );
    group_value!(
        write_group_epoch_secrets,
        group_epoch_secrets,
        delete_group_epoch_secrets,
        GroupEpochSecrets,
        EPOCH_SECRETS
    );

    fn write_group_state<
        S: traits::GroupState<CURRENT_VERSION>,
        G: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        group_state: &S,
    ) -> Result<(), Self::Error> {
        self.put(GROUP_STATE, group_id, group_state)
    }

    fn group_state<S: traits::GroupState<CURRENT_VERSION>, G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<Option<S>, Self::Error> {
        self.get(GROUP_STATE, group_id)
    }

    fn delete_group_state<G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<(), Self::Error> {
        self.del(GROUP_STATE, group_id)
    }

    fn append_own_leaf_node<
        G: traits::GroupId<CURRENT_VERSION>,
        L: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        leaf_node: &L,
    ) -> Result<(), Self::Error> {
        self.list_push(OWN_LEAF_NODES, group_id, leaf_node)
    }

    fn own_leaf_nodes<G: traits::GroupId<CURRENT_VERSION>, L: traits::LeafNode<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<Vec<L>, Self::Error> {
        self.get_list(OWN_LEAF_NODES, group_id)
    }

    fn delete_own_leaf_nodes<G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<(), Self::Error> {
        self.del(OWN_LEAF_NODES, group_id)
    }

    fn queue_proposal<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
        P: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        proposal_ref: &R,
        proposal: &P,
    ) -> Result<(), Self::Error> {
        self.put(PROPOSAL, &(group_id, proposal_ref), proposal)?;
        self.list_push(PROPOSAL_REFS, group_id, proposal_ref)
    }

    fn queued_proposal_refs<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<Vec<R>, Self::Error> {
        self.get_list(PROPOSAL_REFS, group_id)
    }

    fn queued_proposals<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
        P: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<Vec<(R, P)>, Self::Error> {
        let refs: Vec<R> = self.get_list(PROPOSAL_REFS, group_id)?;
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            // A reference without its proposal row is skipped rather than failing the group.
            if let Some(p) = self.get(PROPOSAL, &(group_id, &r))? {
                out.push((r, p));
            }
        }
        Ok(out)
    }

    fn remove_proposal<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        proposal_ref: &R,
    ) -> Result<(), Self::Error> {
        self.list_remove(PROPOSAL_REFS, group_id, proposal_ref)?;
        self.del(PROPOSAL, &(group_id, proposal_ref))
    }

    fn clear_proposal_queue<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<(), Self::Error> {
        let refs: Vec<R> = self.get_list(PROPOSAL_REFS, group_id)?;
        for r in &refs {
            self.del(PROPOSAL, &(group_id, r))?;
        }
        self.del(PROPOSAL_REFS, group_id)
    }

    fn write_signature_key_pair<
        K: traits::SignaturePublicKey<CURRENT_VERSION>,
        P: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &K,
        signature_key_pair: &P,
    ) -> Result<(), Self::Error> {
        self.put(SIGNATURE_KEY, public_key, signature_key_pair)
    }

    fn signature_key_pair<
        K: traits::SignaturePublicKey<CURRENT_VERSION>,
        P: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &K,
    ) -> Result<Option<P>, Self::Error> {
        self.get(SIGNATURE_KEY, public_key)
    }

    fn delete_signature_key_pair<K: traits::SignaturePublicKey<CURRENT_VERSION>>(
        &self,
        public_key: &K,
    ) -> Result<(), Self::Error> {
        self.del(SIGNATURE_KEY, public_key)
    }

    fn write_encryption_key_pair<
        K: traits::EncryptionKey<CURRENT_VERSION>,
        P: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &K,
        key_pair: &P,
    ) -> Result<(), Self::Error> {
        self.put(ENCRYPTION_KEY, public_key, key_pair)
    }

    fn encryption_key_pair<
        P: traits::HpkeKeyPair<CURRENT_VERSION>,
        K: traits::EncryptionKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &K,
    ) -> Result<Option<P>, Self::Error> {
        self.get(ENCRYPTION_KEY, public_key)
    }

    fn delete_encryption_key_pair<K: traits::EncryptionKey<CURRENT_VERSION>>(
        &self,
        public_key: &K,
    ) -> Result<(), Self::Error> {
        self.del(ENCRYPTION_KEY, public_key)
    }

    fn write_encryption_epoch_key_pairs<
        G: traits::GroupId<CURRENT_VERSION>,
        E: traits::EpochKey<CURRENT_VERSION>,
        P: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        epoch: &E,
        leaf_index: u32,
        key_pairs: &[P],
    ) -> Result<(), Self::Error> {
        self.put(EPOCH_KEY_PAIRS, &(group_id, epoch, leaf_index), key_pairs)
    }

    fn encryption_epoch_key_pairs<
        G: traits::GroupId<CURRENT_VERSION>,
        E: traits::EpochKey<CURRENT_VERSION>,
        P: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        epoch: &E,
        leaf_index: u32,
    ) -> Result<Vec<P>, Self::Error> {
        self.get_list(EPOCH_KEY_PAIRS, &(group_id, epoch, leaf_index))
    }

    fn delete_encryption_epoch_key_pairs<
        G: traits::GroupId<CURRENT_VERSION>,
        E: traits::EpochKey<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        epoch: &E,
        leaf_index: u32,
    ) -> Result<(), Self::Error> {
        self.del(EPOCH_KEY_PAIRS, &(group_id, epoch, leaf_index))
    }

    fn write_key_package<
        R: traits::HashReference<CURRENT_VERSION>,
        P: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &R,
        key_package: &P,
    ) -> Result<(), Self::Error> {
        self.put(KEY_PACKAGE, hash_ref, key_package)
    }

    fn key_package<
        R: traits::HashReference<CURRENT_VERSION>,
        P: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &R,
    ) -> Result<Option<P>, Self::Error> {
        self.get(KEY_PACKAGE, hash_ref)
    }

    fn delete_key_package<R: traits::HashReference<CURRENT_VERSION>>(
        &self,
        hash_ref: &R,
    ) -> Result<(), Self::Error> {
        self.del(KEY_PACKAGE, hash_ref)
    }

    fn write_psk<I: traits::PskId<CURRENT_VERSION>, B: traits::PskBundle<CURRENT_VERSION>>(
        &self,
        psk_id: &I,
        psk: &B,
    ) -> Result<(), Self::Error> {
        self.put(PSK, psk_id, psk)
    }

    fn psk<B: traits::PskBundle<CURRENT_VERSION>, I: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &I,
    ) -> Result<Option<B>, Self::Error> {
        self.get(PSK, psk_id)
    }

    fn delete_psk<I: traits::PskId<CURRENT_VERSION>>(&self, psk_id: &I) -> Result<(), Self::Error> {
        self.del(PSK, psk_id)
    }
}
