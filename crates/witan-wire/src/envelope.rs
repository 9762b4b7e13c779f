//! The outer packet on a transport topic ([`Envelope`], [`PacketKind`]) and the identities
//! derived from it: the packet id a body is checked against ([`packet_id`]), the body's
//! digest ([`body_digest`]) and the de-duplication key ([`seen_key`]).

use prost::Message as _;
use sha2::{Digest as _, Sha256};

use super::limits::PACKET_ID_BYTES;

/// Outer packet on a transport topic: who sent what to which conversation.
///
/// `body` holds, by `kind`: an encoded [`super::JoinRequest`], an encoded
/// [`super::WelcomePacket`], an encoded [`super::CatchUp`], an MLS message whose plaintext is
/// an encoded [`super::GroupPayload`], or an encoded [`super::Sealed`].
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Envelope {
    /// Always [`super::WIRE_VERSION`].
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// Conversation the packet belongs to (at most `MAX_CONVERSATION_ID_BYTES` of UTF-8).
    #[prost(string, tag = "2")]
    pub conversation_id: String,
    /// 20-byte member id of the sender.
    #[prost(bytes = "vec", tag = "3")]
    pub sender: Vec<u8>,
    /// A [`PacketKind`] value.
    #[prost(enumeration = "PacketKind", tag = "4")]
    pub kind: i32,
    /// `SHA256(body)[..16]`, used for de-duplication and outbox keys.
    #[prost(bytes = "vec", tag = "5")]
    pub packet_id: Vec<u8>,
    /// The kind-specific content: decoded from a shared buffer
    /// ([`super::decode_envelope_keyed_shared`]) it is a view of that buffer, not a copy.
    #[prost(bytes = "bytes", tag = "6")]
    pub body: prost::bytes::Bytes,
    /// Empty for a packet to everyone on the topic; otherwise the recipient's blinded tag
    /// for the packet's epoch (16 bytes, an MLS exporter value only the group can compute),
    /// so that other members drop it without decrypting. Not covered by `packet_id`.
    #[prost(bytes = "vec", tag = "7")]
    pub recipient: Vec<u8>,
}

/// What an [`Envelope`] body holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PacketKind {
    /// Never valid on the wire.
    Unspecified = 0,
    /// An encoded [`JoinRequest`], sent on the welcome subtopic.
    JoinRequest = 1,
    /// An encoded [`WelcomePacket`], sent on the welcome subtopic.
    Welcome = 2,
    /// An MLS message of the group, sent on the application subtopic.
    Group = 3,
    /// An encoded [`CatchUp`]: a member asking for the certified commits it lacks, or a
    /// member answering that it no longer keeps them; sent on the welcome subtopic.
    CatchUp = 4,
    /// An encoded [`super::Sealed`]: a vote, prevote or precommit encrypted under a key of
    /// the epoch, sent on the application subtopic.
    Sealed = 5,
}
impl Envelope {
    /// An envelope of the current wire version for `body`, with
    /// `packet_id = SHA256(body)[..16]`.
    pub fn new(
        conversation_id: impl Into<String>,
        sender: impl Into<Vec<u8>>,
        kind: PacketKind,
        body: impl Into<Vec<u8>>,
    ) -> Envelope {
        let body = body.into();
        let digest = body_digest(&body);
        Envelope::with_digest(conversation_id.into(), sender.into(), kind, body, &digest)
    }

    /// [`Envelope::new`], addressed to `recipient` if given, with the envelope's [`SeenKey`]:
    /// the body is hashed once, for both the packet id and the key.
    pub fn keyed(
        conversation_id: impl Into<String>,
        sender: impl Into<Vec<u8>>,
        kind: PacketKind,
        body: impl Into<Vec<u8>>,
        recipient: Option<Vec<u8>>,
    ) -> (Envelope, SeenKey) {
        let body = body.into();
        let digest = body_digest(&body);
        let mut e =
            Envelope::with_digest(conversation_id.into(), sender.into(), kind, body, &digest);
        e.recipient = recipient.unwrap_or_default();
        let key = seen_key(&e, &digest);
        (e, key)
    }

    fn with_digest(
        conversation_id: String,
        sender: Vec<u8>,
        kind: PacketKind,
        body: Vec<u8>,
        digest: &[u8; 32],
    ) -> Envelope {
        // `Bytes::from` takes the vector's buffer over; nothing is copied.
        Envelope {
            version: super::WIRE_VERSION,
            conversation_id,
            sender,
            kind: kind as i32,
            packet_id: digest[..PACKET_ID_BYTES].to_vec(),
            body: body.into(),
            recipient: Vec::new(),
        }
    }

    /// The same envelope addressed to the member whose blinded tag is `recipient`.
    pub fn addressed(mut self, recipient: Vec<u8>) -> Envelope {
        self.recipient = recipient;
        self
    }

    /// The packet id as lowercase hex (32 characters), the form the outbox stores.
    pub fn packet_id_hex(&self) -> String {
        hex::encode(&self.packet_id)
    }

    /// The encoded envelope.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
}

/// `SHA256(body)[..16]`: the packet id of an envelope carrying `body`.
pub fn packet_id(body: &[u8]) -> [u8; PACKET_ID_BYTES] {
    let digest = body_digest(body);
    let mut id = [0u8; PACKET_ID_BYTES];
    id.copy_from_slice(&digest[..PACKET_ID_BYTES]);
    id
}

/// `SHA256(body)`, whose first 16 bytes are the packet id.
pub fn body_digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// What a receiver de-duplicates a packet on (its "seen" mark, its place in the buffer of a
/// future epoch): see [`seen_key`].
pub type SeenKey = [u8; 32];

/// The [`SeenKey`] of `e`, whose body hashes to `body_digest`: SHA-256 over a label, every
/// header field (each with its length) and the body's digest. Two envelopes have one key
/// exactly when they say the same thing — whatever their protobuf encoding — and a body is
/// hashed once on arrival, for its packet id and this key together.
pub fn seen_key(e: &Envelope, body_digest: &[u8; 32]) -> SeenKey {
    let mut h = Sha256::new();
    h.update(b"witan seen key v1");
    h.update(e.version.to_be_bytes());
    h.update(e.kind.to_be_bytes());
    for field in [e.conversation_id.as_bytes(), &e.sender, &e.recipient] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    h.update(body_digest);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_new_sets_version_kind_and_packet_id() {
        let e = Envelope::new("conv", [7u8; 20], PacketKind::Group, b"hello".to_vec());
        assert_eq!(e.version, crate::WIRE_VERSION);
        assert_eq!(e.kind(), PacketKind::Group);
        assert_eq!(e.sender, vec![7u8; 20]);
        let full = Sha256::digest(b"hello");
        assert_eq!(e.packet_id, full[..16].to_vec());
        assert_eq!(e.packet_id_hex(), hex::encode(&full[..16]));
        assert_eq!(e.packet_id_hex().len(), 32);
    }

    #[test]
    fn the_seen_key_covers_every_header_field_and_the_body_but_not_the_encoding() {
        let e = Envelope::new("conv", [7u8; 20], PacketKind::Group, b"hello".to_vec());
        let bytes = e.to_bytes();
        let (decoded, key) = crate::decode_envelope_keyed(&bytes).unwrap();
        let key_of = |e: &Envelope| seen_key(e, &body_digest(&e.body));
        assert_eq!((decoded, key), (e.clone(), key_of(&e)));
        let (built, built_key) =
            Envelope::keyed("conv", [7u8; 20], PacketKind::Group, *b"hello", None);
        assert_eq!((built, built_key), (e.clone(), key));
        let others = [
            Envelope::new("conw", [7u8; 20], PacketKind::Group, b"hello".to_vec()),
            Envelope::new("conv", [8u8; 20], PacketKind::Group, b"hello".to_vec()),
            Envelope::new("conv", [7u8; 20], PacketKind::Sealed, b"hello".to_vec()),
            Envelope::new("conv", [7u8; 20], PacketKind::Group, b"hellp".to_vec()),
            e.clone().addressed(vec![1u8; 16]),
        ];
        for other in &others {
            assert_ne!(key_of(other), key);
        }
        // The same fields in another order on the wire: another byte string, the same key.
        let mut reordered = Vec::new();
        prost::encoding::bytes::encode(6, &e.body, &mut reordered);
        for (tag, field) in [(5u32, &e.packet_id), (3, &e.sender)] {
            prost::encoding::bytes::encode(tag, field, &mut reordered);
        }
        prost::encoding::string::encode(2, &e.conversation_id, &mut reordered);
        prost::encoding::int32::encode(4, &e.kind, &mut reordered);
        prost::encoding::uint32::encode(1, &e.version, &mut reordered);
        assert_ne!(reordered, bytes);
        assert_eq!(crate::decode_envelope_keyed(&reordered).unwrap().1, key);
    }

    #[test]
    fn packet_kind_values_are_fixed() {
        assert_eq!(PacketKind::Unspecified as i32, 0);
        assert_eq!(PacketKind::JoinRequest as i32, 1);
        assert_eq!(PacketKind::Welcome as i32, 2);
        assert_eq!(PacketKind::Group as i32, 3);
        assert_eq!(PacketKind::CatchUp as i32, 4);
        assert_eq!(PacketKind::Sealed as i32, 5);
        assert_eq!(PacketKind::try_from(2), Ok(PacketKind::Welcome));
        assert!(PacketKind::try_from(6).is_err());
    }
}
