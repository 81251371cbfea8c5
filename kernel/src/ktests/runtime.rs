//! The kernel's `memcpy`, `memmove` and `memset` against a byte-by-byte
//! model: every length up to a few blocks of the unrolled loops, aligned
//! and unaligned pointers, and overlaps in both directions.

use crate::runtime::{memcpy, memmove, memset};

/// 256 bytes, 8-byte aligned, so offsets that are multiples of 8 take the
/// doubleword loops and the others the byte loops.
#[repr(C, align(8))]
struct Buf([u8; 256]);

/// A buffer with a distinct value in every byte.
fn pattern() -> Buf {
    Buf(core::array::from_fn(|i| {
        (i as u8).wrapping_mul(37).wrapping_add(11)
    }))
}

kernel_test! {
    fn memcpy_copies_every_length_and_alignment() {
        let src = pattern();
        for len in 0..100 {
            for (so, d_o) in [(0, 0), (8, 16), (1, 1), (3, 0), (0, 5), (7, 7)] {
                let mut dst = Buf([0xAA; 256]);
                // SAFETY: both ranges lie inside their buffers (offsets
                // below 17, lengths below 100) and do not overlap.
                unsafe { memcpy(dst.0.as_mut_ptr().add(d_o), src.0.as_ptr().add(so), len) };
                for (i, &b) in dst.0.iter().enumerate() {
                    let want = if (d_o..d_o + len).contains(&i) { src.0[so + i - d_o] } else { 0xAA };
                    assert_eq!(b, want, "len {len} src+{so} dst+{d_o} byte {i}");
                }
            }
        }
    }

    fn memmove_handles_overlap_both_ways() {
        let model = pattern();
        for len in 0..100 {
            for (from, to) in [(0, 8), (8, 0), (0, 3), (3, 0), (16, 40), (40, 16), (5, 13), (13, 5), (0, 0)] {
                let mut buf = pattern();
                let p = buf.0.as_mut_ptr();
                // SAFETY: from + len and to + len stay below 256.
                unsafe { memmove(p.add(to), p.add(from), len) };
                for (i, &b) in buf.0.iter().enumerate() {
                    let want = if (to..to + len).contains(&i) { model.0[from + i - to] } else { model.0[i] };
                    assert_eq!(b, want, "len {len} from {from} to {to} byte {i}");
                }
            }
        }
    }

    fn memset_fills_every_length_and_alignment() {
        let model = pattern();
        for len in 0..100 {
            for off in [0, 8, 1, 6] {
                let mut buf = pattern();
                // SAFETY: off + len stays below 256.
                unsafe { memset(buf.0.as_mut_ptr().add(off), 0x5C, len) };
                for (i, &b) in buf.0.iter().enumerate() {
                    let want = if (off..off + len).contains(&i) { 0x5C } else { model.0[i] };
                    assert_eq!(b, want, "len {len} at +{off} byte {i}");
                }
            }
        }
    }
}
