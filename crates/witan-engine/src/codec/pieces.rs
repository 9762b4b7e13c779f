//! Encodings stored in pieces: a new encoding made from the last one by copying the elements
//! of its outermost lists that the caller says did not change. (Where an encoding may be cut
//! into rows and where each such element lies are recorded by the encoder: `ser/lists.rs`.)
//!
//! Why copying: a group's message secrets are encoded after every message, yet one message
//! changes one sender's ratchet. Encoding the value again costs about twenty instructions per
//! byte (serde hands a byte string over one byte at a time); copying an element's bytes costs
//! a fraction of one. Only the caller knows what changed, so the contract is the caller's:
//! every element of an outermost list that changed must be named; a named element that is
//! never met (a list renamed by a new version of the type) makes the encoding fail rather
//! than copy a stale element.

use super::ser::{Encoded, Encoder, Reusing};
use super::{CodecError, Fields};

/// Encodes `value` by position, as [`super::to_vec_with_cuts`] does, copying from `previous`
/// (an encoding of it made so, or by this function) every element of an outermost list except
/// elements `changed` of the list that is struct field `field`'s value — see the module doc
/// for the contract. A list whose length, field or place among the outermost lists differs
/// from `previous` is written afresh. An error if a changed element was never met; `previous`
/// is left as it was.
pub fn to_vec_reusing<T: serde::Serialize + ?Sized>(
    value: &T,
    previous: &mut Encoded,
    field: &'static str,
    mut changed: Vec<usize>,
) -> Result<Encoded, CodecError> {
    changed.sort_unstable();
    changed.dedup();
    let capacity = previous.bytes.len() + previous.bytes.len() / 16;
    let mut encoder = Encoder::with_cuts(Fields::ByPosition, capacity);
    encoder.reuse(Reusing {
        claimed: vec![false; changed.len()],
        previous: std::mem::take(previous),
        field,
        changed,
    });
    let written = value.serialize(&mut encoder);
    let (encoded, reusing) = encoder.into_encoded();
    let all_met = match reusing {
        Some(r) => {
            *previous = r.previous;
            r.claimed.iter().all(|c| *c)
        }
        None => false,
    };
    written?;
    let encoded = encoded?;
    match all_met {
        true => Ok(encoded),
        false => Err(CodecError::new(
            "an element named as changed is not in the value",
        )),
    }
}

/// Encodes `value` afresh by position, giving names the ids they have in `like`: what a copy
/// made from `like` by [`to_vec_reusing`] must equal byte for byte (its check).
pub fn to_vec_like<T: serde::Serialize + ?Sized>(
    value: &T,
    like: &Encoded,
) -> Result<Encoded, CodecError> {
    let mut encoder = Encoder::with_cuts(Fields::ByPosition, like.bytes.len());
    encoder.seed_names(&like.names);
    value.serialize(&mut encoder)?;
    encoder.into_encoded().0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{Fields, from_slice, to_vec_with_cuts};
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Clone)]
    struct Ratchet {
        generation: u32,
        secret: Vec<u8>,
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Clone)]
    struct Tree {
        epoch: u64,
        nodes: Vec<Option<Vec<u8>>>,
        ratchets: Vec<Option<Ratchet>>,
        context: Vec<u8>,
        by_name: BTreeMap<String, Vec<u32>>,
    }

    fn tree(n: usize) -> Tree {
        Tree {
            epoch: 7,
            nodes: (0..n)
                .map(|i| (i % 2 == 0).then(|| vec![i as u8; 32]))
                .collect(),
            ratchets: (0..n)
                .map(|i| {
                    (i % 3 != 0).then(|| Ratchet {
                        generation: i as u32,
                        secret: vec![0xA0 ^ i as u8; 32],
                    })
                })
                .collect(),
            context: vec![5; 40],
            by_name: BTreeMap::from([("a".into(), vec![1, 2]), ("b".into(), vec![3])]),
        }
    }

    fn fresh(value: &Tree) -> Encoded {
        to_vec_with_cuts(value, Fields::ByPosition, 0).unwrap()
    }

    #[test]
    fn a_copied_encoding_is_the_fresh_one_when_every_change_is_named() {
        let before = tree(20);
        let mut previous = fresh(&before);
        let mut after = before.clone();
        after.epoch = 8;
        after.context.push(6);
        for i in [4, 11] {
            if let Some(Some(r)) = after.ratchets.get_mut(i) {
                r.generation += 1;
                r.secret = vec![0xEE; 32];
            }
        }
        let copied = to_vec_reusing(&after, &mut previous, "ratchets", vec![11, 4, 4]).unwrap();
        assert_eq!(copied, fresh(&after), "bytes, cuts and lists alike");
        assert_eq!(previous, fresh(&before), "the last encoding is given back");
        assert_eq!(from_slice::<Tree>(&copied.bytes).unwrap(), after);
        assert_eq!(
            copied.element("ratchets", 4),
            fresh(&after).element("ratchets", 4)
        );
        assert_eq!(copied.element("ratchets", 20), None);
        assert_eq!(
            copied.element("context", 0),
            None,
            "a byte string is not followed"
        );
    }

    #[test]
    fn elements_not_named_are_copied_not_encoded() {
        let before = tree(12);
        let mut previous = fresh(&before);
        let mut after = before.clone();
        // An unnamed change is the caller's breach of contract: it shows what is copied.
        after.nodes[2] = Some(vec![0x77; 32]);
        if let Some(Some(r)) = after.ratchets.get_mut(1) {
            r.generation = 99;
        }
        let copied = to_vec_reusing(&after, &mut previous, "ratchets", vec![1]).unwrap();
        let back: Tree = from_slice(&copied.bytes).unwrap();
        assert_eq!(
            back.nodes[2], before.nodes[2],
            "node 2 came from the last encoding"
        );
        assert_eq!(back.ratchets[1], after.ratchets[1], "ratchet 1 was encoded");
    }

    #[test]
    fn a_change_named_in_a_list_that_is_not_there_is_an_error() {
        let value = tree(10);
        let mut previous = fresh(&value);
        let kept = previous.clone();
        for (field, changed) in [("renamed", vec![1]), ("ratchets", vec![10])] {
            assert!(to_vec_reusing(&value, &mut previous, field, changed).is_err());
            assert_eq!(previous, kept, "the last encoding is left as it was");
        }
        // Nothing named: the whole value is copied.
        let copied = to_vec_reusing(&value, &mut previous, "ratchets", vec![]).unwrap();
        assert_eq!(copied, kept);
    }

    #[test]
    fn lists_that_grew_or_sit_in_a_map_are_written_afresh() {
        let before = tree(10);
        let mut previous = fresh(&before);
        let mut after = tree(12);
        after.by_name.insert("a".into(), vec![9, 9]);
        after.nodes[0] = Some(vec![1; 32]);
        let copied = to_vec_reusing(&after, &mut previous, "ratchets", vec![0]).unwrap();
        assert_eq!(copied, fresh(&after));
        // A map's lists are recorded without a field: nothing can name or copy them.
        assert!(copied.lists.iter().any(|l| l.field.is_empty()));
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Clone)]
    enum Kind {
        Decrypting { generation: u32 },
        Encrypting { generation: u32, key: Vec<u8> },
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Clone)]
    struct Kinds {
        kinds: Vec<Option<Kind>>,
        last: Option<Kind>,
    }

    #[test]
    fn copied_elements_keep_the_ids_of_their_names() {
        let before = Kinds {
            kinds: (0..10u32)
                .map(|i| (i > 2).then_some(Kind::Decrypting { generation: i }))
                .collect(),
            last: None,
        };
        let mut previous = fresh_kinds(&before);
        assert_eq!(previous.names, vec!["Decrypting"]);
        // A name not in the last encoding's table, first met before a copied element that
        // refers to one that is.
        let mut after = before.clone();
        after.kinds[1] = Some(Kind::Encrypting {
            generation: 0,
            key: vec![3; 32],
        });
        after.last = Some(Kind::Decrypting { generation: 99 });
        let copied = to_vec_reusing(&after, &mut previous, "kinds", vec![1]).unwrap();
        assert_eq!(copied.names, vec!["Decrypting", "Encrypting"]);
        assert_eq!(from_slice::<Kinds>(&copied.bytes).unwrap(), after);
        assert_eq!(copied, to_vec_like(&after, &previous).unwrap());
        // A fresh encoding numbers names as it meets them: here the other way round.
        assert_eq!(fresh_kinds(&after).names, vec!["Encrypting", "Decrypting"]);
        assert_eq!(
            from_slice::<Kinds>(&fresh_kinds(&after).bytes).unwrap(),
            after
        );
    }

    fn fresh_kinds(value: &Kinds) -> Encoded {
        to_vec_with_cuts(value, Fields::ByPosition, 0).unwrap()
    }
}
