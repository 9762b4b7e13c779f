//! The checks every decoder is made of: a bounded decode (byte limit, framing pre-scan, then
//! prost) and the field rules (exact lengths, maxima, non-empty, member ids), each failing
//! with the [`WireError`] that names the field.

use prost::Message;

use super::error::WireError;
use super::limits::*;
use super::scan::{self, Shape};

/// Decodes `bytes` as `M` within `max` bytes (and `shape`, if given). From a shared buffer
/// (`Bytes`), the message's `bytes` fields of prost's `Bytes` type are views of it.
pub(crate) fn decode_bounded<M: Message + Default, B: prost::bytes::Buf + AsRef<[u8]>>(
    what: &'static str,
    bytes: B,
    max: usize,
    shape: Option<&Shape>,
) -> Result<M, WireError> {
    check_max(what, bytes.as_ref().len(), max)?;
    if let Some(shape) = shape {
        scan::scan(bytes.as_ref(), shape)?;
    }
    M::decode(bytes).map_err(|e| WireError::Malformed(format!("{what}: {e}")))
}

pub(crate) fn bad(field: &'static str, reason: impl Into<String>) -> WireError {
    WireError::BadField {
        field,
        reason: reason.into(),
    }
}

pub(crate) fn check_max(what: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len > max {
        return Err(WireError::TooLarge { what, len, max });
    }
    Ok(())
}

pub(crate) fn exact(field: &'static str, bytes: &[u8], len: usize) -> Result<(), WireError> {
    if bytes.len() != len {
        return Err(bad(
            field,
            format!("must be {len} bytes, got {}", bytes.len()),
        ));
    }
    Ok(())
}

pub(crate) fn non_empty(field: &'static str, bytes: &[u8]) -> Result<(), WireError> {
    if bytes.is_empty() {
        return Err(bad(field, "must not be empty"));
    }
    Ok(())
}

pub(crate) fn hash_or_empty(field: &'static str, bytes: &[u8]) -> Result<(), WireError> {
    if !bytes.is_empty() && bytes.len() != HASH_BYTES {
        return Err(bad(
            field,
            format!("must be empty or {HASH_BYTES} bytes, got {}", bytes.len()),
        ));
    }
    Ok(())
}

pub(crate) fn member_ids(
    field: &'static str,
    ids: &[Vec<u8>],
    max: usize,
) -> Result<(), WireError> {
    check_max(field, ids.len(), max)?;
    ids.iter()
        .try_for_each(|id| exact(field, id, MEMBER_ID_BYTES))
}
