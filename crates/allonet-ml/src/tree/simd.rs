//! AVX-512 kernels for the exact splitter, used where the CPU has AVX-512 F, VL and BITALG, with POPCNT and
//! BMI (checked at run time; without POPCNT a mask's count is a dozen instructions, which cost the whole fit
//! 4%). Each produces exactly what its portable twin in `tree.rs` produces, so a forest is the same bit for
//! bit on any CPU; the tests grow trees both ways and compare them.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::{Entry, Side};

/// Whether this CPU runs the kernels below.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512bitalg")
            && std::is_x86_feature_detected!("popcnt")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`super::partition_lists`] with [`partition`]: one call per split rather than one per feature, so that
/// the kernel is inlined into the loop.
///
/// # Safety
/// The CPU has AVX-512 F, VL and BITALG, POPCNT and BMI ([`available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bitalg,popcnt,bmi1,bmi2")]
pub(super) unsafe fn partition_lists(
    src: &[Vec<Entry>],
    dst: &mut [Vec<Entry>],
    range: (usize, usize),
    split: usize,
    nl: usize,
    side: Side,
) {
    // SAFETY (of each call): as this function's
    super::for_each_list(src, dst, range, split, |s, t| unsafe { partition(s, t, nl, side) });
}

/// [`super::partition`] sixteen entries at a time: each block's left-going entries are packed together
/// (`vpcompressd`) and stored at the left cursor with one masked store, the others at the right cursor,
/// so the result is the same stable partition. A block's side mask comes from one bit shuffle
/// (`vpshufbitqmb`) of the node's bit word by the sixteen id offsets for [`Side::Bits`], else from sixteen
/// byte loads of the marks (a dword gather of them measured slower here).
///
/// # Safety
/// The CPU has AVX-512 F, VL and BITALG, POPCNT and BMI ([`available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bitalg,popcnt,bmi1,bmi2")]
#[inline]
pub(super) unsafe fn partition(s: &[Entry], t: &mut [Entry], nl: usize, side: Side) {
    const LANES: usize = 16;
    let n = s.len();
    assert_eq!(t.len(), n);
    let (src, dst) = (s.as_ptr() as *const i32, t.as_mut_ptr() as *mut i32);
    let (bits, base) = match side {
        Side::Bits(bits, base) => (_mm512_set1_epi64(bits as i64), _mm512_set1_epi32(base as i32)),
        Side::Marks(marks) => {
            assert!(marks.len().is_power_of_two());
            (_mm512_setzero_si512(), _mm512_setzero_si512())
        }
    };
    let (mut l, mut r, mut i) = (0usize, nl, 0usize);
    while i < n {
        let count = (n - i).min(LANES);
        let lanes = low_mask(count);
        // SAFETY: the load reads the `count` entries of `s` from i
        let v = unsafe { _mm512_maskz_loadu_epi32(lanes, src.add(i)) };
        let left: __mmask16 = match side {
            Side::Bits(..) => {
                // each entry's offset from the base in its low byte (the SHARED bit lies above)
                let offsets = _mm512_zextsi128_si512(_mm512_cvtepi32_epi8(_mm512_sub_epi32(v, base)));
                _mm512_bitshuffle_epi64_mask(bits, offsets) as u16 & lanes
            }
            Side::Marks(..) => {
                let mut left = 0;
                for (j, &e) in s[i..i + count].iter().enumerate() {
                    left |= (side.left(e) as u16) << j;
                }
                left
            }
        };
        let right = lanes & !left;
        let (cl, cr) = (left.count_ones() as usize, right.count_ones() as usize);
        // each store is kept inside `t` should the counts be wrong, which the assert below then reports
        let (lp, rp) = (l.min(n), r.min(n));
        // SAFETY: each store writes at most as many entries of `t` as remain after its position
        unsafe {
            _mm512_mask_storeu_epi32(dst.add(lp), low_mask(cl.min(n - lp)), _mm512_maskz_compress_epi32(left, v));
            _mm512_mask_storeu_epi32(dst.add(rp), low_mask(cr.min(n - rp)), _mm512_maskz_compress_epi32(right, v));
        }
        l += cl;
        r += cr;
        i += LANES;
    }
    assert!(l == nl && r == n, "the split's sides have the counts it was given");
}

/// The mask of the lowest `c` (≤ 16) lanes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn low_mask(c: usize) -> __mmask16 {
    ((1u32 << c) - 1) as u16
}

/// Not an x86-64 CPU: never called, as [`available`] is false.
///
/// # Safety
/// Never safe to call.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn partition_lists(
    _: &[Vec<Entry>],
    _: &mut [Vec<Entry>],
    _: (usize, usize),
    _: usize,
    _: usize,
    _: Side,
) {
    unreachable!("AVX-512 kernels are x86-64 only")
}
