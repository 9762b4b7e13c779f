//! The framing of the history query on a request-response stream: one protobuf message
//! prefixed by its length as an unsigned varint (as Waku's request-response protocols frame
//! theirs). Both directions are bounded before anything is allocated: a peer announcing a
//! longer message gets an error, never a large buffer.

use std::io;

use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use prost::Message;

use crate::waku::store_query::{StoreQueryRequest, StoreQueryResponse};

/// Largest request accepted: a few hundred content topics or message hashes.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// The request-response codec of the store query.
#[derive(Debug, Clone)]
pub struct StoreCodec {
    /// Largest response accepted (set from the relay's message limit; see `limits`).
    pub max_response_bytes: usize,
}

impl request_response::Codec for StoreCodec {
    type Protocol = StreamProtocol;
    type Request = StoreQueryRequest;
    type Response = StoreQueryResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, MAX_REQUEST_BYTES).await?;
        StoreQueryRequest::decode(bytes.as_slice()).map_err(invalid)
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, self.max_response_bytes).await?;
        StoreQueryResponse::decode(bytes.as_slice()).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Self::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request.encode_to_vec(), MAX_REQUEST_BYTES).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Self::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response.encode_to_vec(), self.max_response_bytes).await
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Reads one length-prefixed frame of at most `limit` bytes.
pub async fn read_frame<T: AsyncRead + Unpin>(io: &mut T, limit: usize) -> io::Result<Vec<u8>> {
    let len = read_varint(io).await?;
    let len = usize::try_from(len).map_err(invalid)?;
    if len > limit {
        return Err(invalid(format!(
            "frame of {len} bytes over the limit of {limit}"
        )));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Writes one length-prefixed frame; refuses one over `limit` (the peer would refuse it).
pub async fn write_frame<T: AsyncWrite + Unpin>(
    io: &mut T,
    bytes: &[u8],
    limit: usize,
) -> io::Result<()> {
    if bytes.len() > limit {
        return Err(invalid(format!(
            "frame of {} bytes over the limit of {limit}",
            bytes.len()
        )));
    }
    let mut prefix = Vec::with_capacity(10);
    let mut n = bytes.len() as u64;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            prefix.push(low);
            break;
        }
        prefix.push(low | 0x80);
    }
    io.write_all(&prefix).await?;
    io.write_all(bytes).await?;
    io.close().await
}

async fn read_varint<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await?;
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(invalid("length prefix longer than ten bytes"))
}

#[cfg(test)]
mod tests {
    use libp2p::futures::executor::block_on;
    use libp2p::futures::io::Cursor;

    use super::*;

    #[test]
    fn frames_round_trip_at_every_prefix_length() {
        for len in [0usize, 1, 127, 128, 300, 16_384, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Cursor::new(Vec::new());
            block_on(write_frame(&mut out, &payload, 100_000)).unwrap();
            let mut input = Cursor::new(out.into_inner());
            assert_eq!(block_on(read_frame(&mut input, 100_000)).unwrap(), payload);
        }
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut out = Cursor::new(Vec::new());
        block_on(write_frame(&mut out, &[1; 50], 100)).unwrap();
        let bytes = out.into_inner();
        assert!(block_on(read_frame(&mut Cursor::new(bytes.clone()), 49)).is_err());
        assert!(block_on(read_frame(&mut Cursor::new(bytes[..20].to_vec()), 100)).is_err());
        let endless = vec![0xff; 11];
        assert!(block_on(read_frame(&mut Cursor::new(endless), 100)).is_err());
        let mut sink = Cursor::new(Vec::new());
        assert!(block_on(write_frame(&mut sink, &[0; 10], 9)).is_err());
    }
}
