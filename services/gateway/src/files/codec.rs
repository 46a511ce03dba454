//! Streaming transforms of stored bytes: zstd compression while uploading, decompression and
//! byte-range slicing while downloading, each holding a bounded amount in memory whatever the
//! file's size or compression ratio.

use std::io::Write;

use bytes::{Buf, Bytes};
use futures::stream::{BoxStream, StreamExt};
use zstd::stream::raw::{Decoder, Operation};

use cg_storage::Error;

/// zstd level of stored files: fast, and most of the gain on text.
const LEVEL: i32 = 3;

/// Largest chunk a decompressing stream yields.
const OUT_CHUNK: usize = 64 * 1024;

/// A zstd compressor fed chunk by chunk; each call returns what is ready to store.
pub struct Compressor(zstd::stream::write::Encoder<'static, Vec<u8>>);

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compressor")
    }
}

impl Compressor {
    pub fn new() -> std::io::Result<Self> {
        zstd::stream::write::Encoder::new(Vec::new(), LEVEL).map(Self)
    }

    /// Compress `data`; returns the compressed bytes produced so far (often none).
    pub fn push(&mut self, data: &[u8]) -> std::io::Result<Bytes> {
        self.0.write_all(data)?;
        Ok(Bytes::from(std::mem::take(self.0.get_mut())))
    }

    /// End the frame; returns the last compressed bytes.
    pub fn finish(self) -> std::io::Result<Bytes> {
        self.0.finish().map(Bytes::from)
    }
}

/// Decompress a stream of zstd bytes.
pub fn decompress(
    input: BoxStream<'static, cg_storage::Result<Bytes>>,
) -> BoxStream<'static, cg_storage::Result<Bytes>> {
    struct State {
        input: BoxStream<'static, cg_storage::Result<Bytes>>,
        decoder: Decoder<'static>,
        pending: Bytes,
        /// The last call filled the output buffer: more may be waiting inside the decoder.
        more_out: bool,
        /// A frame was started and not finished: input ending here is truncated.
        frame_open: bool,
        done: bool,
    }
    let decoder = match Decoder::new() {
        Ok(d) => d,
        Err(e) => {
            return futures::stream::once(async move { Err(corrupt(&e)) }).boxed();
        }
    };
    let state = State {
        input,
        decoder,
        pending: Bytes::new(),
        more_out: false,
        frame_open: false,
        done: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            if !s.pending.is_empty() || s.more_out {
                let mut out = vec![0u8; OUT_CHUNK];
                let status = match s.decoder.run_on_buffers(&s.pending, &mut out) {
                    Ok(status) => status,
                    Err(e) => {
                        s.done = true;
                        return Some((Err(corrupt(&e)), s));
                    }
                };
                s.pending.advance(status.bytes_read);
                s.more_out = status.bytes_written == out.len();
                s.frame_open = status.remaining != 0;
                if status.bytes_written > 0 {
                    out.truncate(status.bytes_written);
                    return Some((Ok(Bytes::from(out)), s));
                }
                if !s.pending.is_empty() {
                    // Input left but nothing produced and nothing consumed cannot happen with
                    // zstd; refuse rather than spin.
                    if status.bytes_read == 0 {
                        s.done = true;
                        return Some((Err(Error::Corrupt("zstd stream stalled".into())), s));
                    }
                    continue;
                }
            }
            match s.input.next().await {
                Some(Ok(chunk)) => s.pending = chunk,
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
                None if s.frame_open => {
                    s.done = true;
                    return Some((
                        Err(Error::Corrupt("stored zstd data is truncated".into())),
                        s,
                    ));
                }
                None => return None,
            }
        }
    })
    .boxed()
}

fn corrupt(e: &std::io::Error) -> Error {
    Error::Corrupt(format!("stored zstd data: {e}"))
}

/// Bytes `start..end` of a stream (the rest is read and dropped, never kept).
pub fn slice(
    input: BoxStream<'static, cg_storage::Result<Bytes>>,
    start: u64,
    end: u64,
) -> BoxStream<'static, cg_storage::Result<Bytes>> {
    let mut position = 0u64;
    input
        .take_while(move |_| {
            let more = position < end;
            futures::future::ready(more)
        })
        .filter_map(move |chunk| {
            let out = match chunk {
                Err(e) => Some(Err(e)),
                Ok(mut chunk) => {
                    let len = chunk.len() as u64;
                    let chunk_start = position;
                    position += len;
                    let from = start.saturating_sub(chunk_start).min(len);
                    let to = end.saturating_sub(chunk_start).min(len);
                    if from >= to {
                        None
                    } else {
                        chunk.truncate(usize::try_from(to).unwrap_or(usize::MAX));
                        chunk.advance(usize::try_from(from).unwrap_or(usize::MAX));
                        Some(Ok(chunk))
                    }
                }
            };
            futures::future::ready(out)
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn chunks(data: &[u8], size: usize) -> BoxStream<'static, cg_storage::Result<Bytes>> {
        let parts: Vec<cg_storage::Result<Bytes>> = data
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(parts).boxed()
    }

    async fn collect(s: BoxStream<'static, cg_storage::Result<Bytes>>) -> Vec<u8> {
        s.map_ok(|b| b.to_vec()).try_concat().await.expect("stream")
    }

    #[tokio::test]
    async fn round_trip_and_ranges() {
        // Highly compressible: one small compressed chunk expands to many output chunks.
        let original: Vec<u8> = (0..2_000_000u32)
            .map(|i| b"abcdefgh"[(i % 8) as usize])
            .collect();
        let mut c = Compressor::new().expect("zstd");
        let mut stored = Vec::new();
        for part in original.chunks(100_000) {
            stored.extend_from_slice(&c.push(part).expect("zstd"));
        }
        stored.extend_from_slice(&c.finish().expect("zstd"));
        assert!(stored.len() * 100 < original.len());
        assert_eq!(collect(decompress(chunks(&stored, 7))).await, original);
        let ranged = slice(decompress(chunks(&stored, 1000)), 99_999, 1_500_001);
        assert_eq!(collect(ranged).await, original[99_999..1_500_001]);
        assert_eq!(
            collect(slice(chunks(b"0123456789", 3), 2, 8)).await,
            b"234567"
        );
        assert_eq!(collect(slice(chunks(b"0123456789", 3), 9, 10)).await, b"9");
    }

    #[tokio::test]
    async fn corrupt_or_truncated_data_is_an_error() {
        let mut c = Compressor::new().expect("zstd");
        let mut stored = c.push(&[7u8; 10_000]).expect("zstd").to_vec();
        stored.extend_from_slice(&c.finish().expect("zstd"));
        stored.truncate(stored.len() - 3);
        assert!(
            decompress(chunks(&stored, 5))
                .map_ok(|b| b.to_vec())
                .try_concat()
                .await
                .is_err()
        );
        let result = decompress(chunks(b"\x28\xb5\x2f\xfdnot zstd at all", 4))
            .map_ok(|b| b.to_vec())
            .try_concat()
            .await;
        assert!(result.is_err());
    }
}
