//! Structure-aware inputs: a fuzz input read as a list of byte patches applied to a valid
//! message, so the fuzzer starts from well-formed bytes even when the valid message (with
//! this process's keys) cannot be stored in the corpus.

/// Applies `ops` to a copy of `base`. Each op is 3 bytes `[op, position, value]`:
/// op % 5 = 0 xor, 1 set, 2 truncate, 3 insert, 4 delete; the position is scaled to the
/// current length. A trailing partial op appends its bytes.
pub fn patch(base: &[u8], ops: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    let mut chunks = ops.chunks_exact(3);
    for op in &mut chunks {
        let len = out.len();
        let at = if len == 0 {
            0
        } else {
            usize::from(op[1]) * len / 256
        };
        match op[0] % 5 {
            0 if at < len => out[at] ^= op[2],
            1 if at < len => out[at] = op[2],
            2 => out.truncate(at),
            3 => out.insert(at, op[2]),
            4 if at < len => {
                out.remove(at);
            }
            _ => {}
        }
    }
    out.extend_from_slice(chunks.remainder());
    out
}

/// Picks element `selector % len` of `items` (None if empty).
pub fn pick<T>(items: &[T], selector: u8) -> Option<&T> {
    if items.is_empty() {
        None
    } else {
        items.get(usize::from(selector) % items.len())
    }
}
