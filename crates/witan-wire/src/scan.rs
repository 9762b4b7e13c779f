//! Pre-decode scan of protobuf framing, so that decoding cannot amplify memory.
//!
//! prost allocates one struct per element of a repeated field. An empty element costs two
//! bytes on the wire but can cost a hundred or more in memory (a `Vote` holds five `Vec`s), so
//! a few megabytes of `0x72 0x00` would decode into hundreds of megabytes. Before prost runs,
//! [`scan`] walks the tag/length framing of the input and checks every length-delimited field
//! that a [`Shape`] lists against that field's smallest and largest valid encoding, descending
//! into nested shapes. Since each element that survives is at least as long as a valid one,
//! decoded memory stays proportional to the input. The walk is iterative per message and
//! recursive only along the (finite, static) shapes, so it cannot overflow the stack.
//!
//! Unlisted fields are only framed and skipped; deprecated group wire types are rejected.

use super::error::WireError;
use super::limits::{
    HASH_BYTES, MEMBER_ID_BYTES, MIN_PEER_SCORE_BYTES, MIN_PROOF_BYTES, MIN_RESOLUTION_BYTES,
    MIN_ROUND_SIGNATURE_BYTES, MIN_VOTE_BYTES,
};

/// The length-delimited fields of one message that the scan checks.
pub(super) struct Shape {
    /// Message name for error messages.
    pub(super) name: &'static str,
    pub(super) fields: &'static [FieldShape],
}

/// One length-delimited field (or each element of a repeated one).
pub(super) struct FieldShape {
    pub(super) tag: u32,
    /// Field name for errors, as `message.field`.
    pub(super) what: &'static str,
    pub(super) min_len: usize,
    pub(super) max_len: usize,
    /// Shape of the embedded message, if it has fields to check.
    pub(super) nested: Option<&'static Shape>,
}

const fn field(
    tag: u32,
    what: &'static str,
    min_len: usize,
    max_len: usize,
    nested: Option<&'static Shape>,
) -> FieldShape {
    FieldShape {
        tag,
        what,
        min_len,
        max_len,
        nested,
    }
}

pub(super) const PROPOSAL: Shape = Shape {
    name: "proposal",
    fields: &[field(
        14,
        "proposal.votes",
        MIN_VOTE_BYTES,
        usize::MAX,
        None,
    )],
};

pub(super) const VOTE_BUNDLE: Shape = Shape {
    name: "vote_bundle",
    fields: &[field(
        1,
        "vote_bundle.votes",
        MIN_VOTE_BYTES,
        usize::MAX,
        None,
    )],
};

const RESOLUTION: Shape = Shape {
    name: "resolution",
    fields: &[
        field(1, "resolution.proposal", 0, usize::MAX, Some(&PROPOSAL)),
        field(5, "resolution.votes", MIN_VOTE_BYTES, usize::MAX, None),
        field(6, "resolution.proofs", MIN_PROOF_BYTES, usize::MAX, None),
    ],
};

pub(super) const POLKA: Shape = Shape {
    name: "polka",
    fields: &[field(
        4,
        "polka.signatures",
        MIN_ROUND_SIGNATURE_BYTES,
        usize::MAX,
        None,
    )],
};

pub(super) const CANDIDATE: Shape = Shape {
    name: "candidate",
    fields: &[
        field(
            6,
            "candidate.resolutions",
            MIN_RESOLUTION_BYTES,
            usize::MAX,
            Some(&RESOLUTION),
        ),
        field(7, "candidate.pol", 0, usize::MAX, Some(&POLKA)),
    ],
};

pub(super) const CERTIFIED: Shape = Shape {
    name: "certified_commit",
    fields: &[
        field(
            1,
            "certified_commit.candidate",
            0,
            usize::MAX,
            Some(&CANDIDATE),
        ),
        field(
            3,
            "certified_commit.signatures",
            MIN_ROUND_SIGNATURE_BYTES,
            usize::MAX,
            None,
        ),
    ],
};

const NEW_ROUND: Shape = Shape {
    name: "new_round",
    fields: &[
        field(3, "new_round.lock", 0, usize::MAX, Some(&POLKA)),
        field(4, "new_round.locked", 0, usize::MAX, Some(&CANDIDATE)),
    ],
};

pub(super) const CONVERSATION_SYNC: Shape = Shape {
    name: "conversation_sync",
    fields: &[
        field(
            2,
            "conversation_sync.stewards",
            MEMBER_ID_BYTES,
            MEMBER_ID_BYTES,
            None,
        ),
        field(
            4,
            "conversation_sync.scores",
            MIN_PEER_SCORE_BYTES,
            usize::MAX,
            None,
        ),
        field(
            7,
            "conversation_sync.certified",
            0,
            usize::MAX,
            Some(&CERTIFIED),
        ),
        field(
            8,
            "conversation_sync.open_proposals",
            HASH_BYTES,
            HASH_BYTES,
            None,
        ),
    ],
};

pub(super) const GROUP_PAYLOAD: Shape = Shape {
    name: "group_payload",
    fields: &[
        field(2, "group_payload.proposal", 0, usize::MAX, Some(&PROPOSAL)),
        field(
            4,
            "group_payload.candidate",
            0,
            usize::MAX,
            Some(&CANDIDATE),
        ),
        field(
            5,
            "group_payload.sync",
            0,
            usize::MAX,
            Some(&CONVERSATION_SYNC),
        ),
        field(6, "group_payload.votes", 0, usize::MAX, Some(&VOTE_BUNDLE)),
        field(9, "group_payload.polka", 0, usize::MAX, Some(&POLKA)),
        field(
            10,
            "group_payload.certified",
            0,
            usize::MAX,
            Some(&CERTIFIED),
        ),
        field(
            11,
            "group_payload.new_round",
            0,
            usize::MAX,
            Some(&NEW_ROUND),
        ),
    ],
};

pub(super) const WELCOME_PACKET: Shape = Shape {
    name: "welcome_packet",
    fields: &[field(
        3,
        "welcome_packet.joiners",
        MEMBER_ID_BYTES,
        MEMBER_ID_BYTES,
        None,
    )],
};

/// Proposal payloads have no repeated fields (a key package is one byte string).
pub(super) const PROPOSAL_PAYLOAD: Shape = Shape {
    name: "proposal_payload",
    fields: &[],
};

/// Walks the framing of `bytes` as a message of `shape`; see the module doc.
pub(super) fn scan(bytes: &[u8], shape: &Shape) -> Result<(), WireError> {
    let malformed = |reason: &str| WireError::Malformed(format!("{}: {reason}", shape.name));
    let mut pos = 0usize;
    while pos < bytes.len() {
        let key = read_varint(bytes, &mut pos).ok_or_else(|| malformed("truncated field key"))?;
        let tag = key >> 3;
        if tag == 0 || tag > u64::from(u32::MAX >> 3) {
            return Err(malformed("invalid field tag"));
        }
        match key & 7 {
            0 => {
                read_varint(bytes, &mut pos).ok_or_else(|| malformed("truncated varint"))?;
            }
            1 => {
                pos = advance(bytes.len(), pos, 8).ok_or_else(|| malformed("truncated fixed64"))?
            }
            5 => {
                pos = advance(bytes.len(), pos, 4).ok_or_else(|| malformed("truncated fixed32"))?
            }
            2 => {
                let len = read_varint(bytes, &mut pos)
                    .and_then(|l| usize::try_from(l).ok())
                    .ok_or_else(|| malformed("truncated length"))?;
                let end = advance(bytes.len(), pos, len)
                    .ok_or_else(|| malformed("length past the end of the buffer"))?;
                let value = bytes.get(pos..end).unwrap_or_default();
                pos = end;
                if let Some(f) = shape.fields.iter().find(|f| u64::from(f.tag) == tag) {
                    check_field(f, value)?;
                }
            }
            _ => return Err(malformed("unsupported wire type")),
        }
    }
    Ok(())
}

fn check_field(f: &FieldShape, value: &[u8]) -> Result<(), WireError> {
    if value.len() < f.min_len || value.len() > f.max_len {
        let reason = if f.min_len == f.max_len {
            format!("must be {} bytes, got {}", f.min_len, value.len())
        } else if value.len() < f.min_len {
            format!(
                "an element of {} bytes is shorter than the smallest valid encoding ({})",
                value.len(),
                f.min_len
            )
        } else {
            format!("{} bytes exceeds the maximum of {}", value.len(), f.max_len)
        };
        return Err(WireError::BadField {
            field: f.what,
            reason,
        });
    }
    match f.nested {
        Some(nested) => scan(value, nested),
        None => Ok(()),
    }
}

/// `pos + n` if it does not pass `len`.
fn advance(len: usize, pos: usize, n: usize) -> Option<usize> {
    pos.checked_add(n).filter(|end| *end <= len)
}

/// Reads a base-128 varint of at most 10 bytes.
fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_overlong_is_rejected() {
        let mut pos = 0;
        assert_eq!(read_varint(&[0xac, 0x02], &mut pos), Some(300));
        assert_eq!(pos, 2);
        let mut pos = 0;
        assert_eq!(read_varint(&[0xff; 11], &mut pos), None);
        let mut pos = 0;
        assert_eq!(read_varint(&[0x80], &mut pos), None);
    }

    #[test]
    fn empty_repeated_elements_are_rejected_before_decoding() {
        // 1000 empty votes in a bundle: `0x0a 0x00` each.
        let bundle = [0x0a, 0x00].repeat(1000);
        let err = scan(&bundle, &VOTE_BUNDLE).unwrap_err();
        assert!(matches!(
            err,
            WireError::BadField {
                field: "vote_bundle.votes",
                ..
            }
        ));
        // The same inside a group payload's `votes` content.
        let mut payload = vec![0x32];
        payload.push(bundle.len() as u8 & 0x7f | 0x80);
        payload.push((bundle.len() >> 7) as u8);
        payload.extend_from_slice(&bundle);
        assert!(scan(&payload, &GROUP_PAYLOAD).is_err());
    }

    #[test]
    fn framing_errors_are_malformed() {
        for bad in [
            &[0x0a, 0x05, 1][..], // length past the end
            &[0x0b][..],          // start-group wire type
            &[0x00, 0x01][..],    // tag 0
            &[0x09, 1, 2][..],    // truncated fixed64
            &[0x08][..],          // truncated varint value
        ] {
            assert!(matches!(scan(bad, &PROPOSAL), Err(WireError::Malformed(_))));
        }
        assert!(scan(&[], &PROPOSAL).is_ok());
        assert!(scan(&[0x08, 0x01, 0x7a, 0x00], &PROPOSAL).is_ok()); // unlisted fields skipped
    }

    #[test]
    fn exact_length_elements_are_checked() {
        let mut ok = vec![0x1a, 20];
        ok.extend_from_slice(&[1; 20]);
        assert!(scan(&ok, &WELCOME_PACKET).is_ok());
        let mut short = vec![0x1a, 19];
        short.extend_from_slice(&[1; 19]);
        assert!(matches!(
            scan(&short, &WELCOME_PACKET),
            Err(WireError::BadField {
                field: "welcome_packet.joiners",
                ..
            })
        ));
    }
}
