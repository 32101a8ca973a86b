//! A growable buffer that starts on a cache line.

use std::ops::{Deref, DerefMut};

use zeroize::{DefaultIsZeroes, Zeroize};

/// Bytes in a cache line on the CPUs the index is tuned for.
const LINE: usize = 64;

/// A growable buffer of `T` whose first element sits on a 64-byte boundary, so that rows whose
/// size is a multiple of 64 bytes each start a cache line. A large `Vec` from the allocator
/// starts 16 bytes past a page boundary, and there a 128-byte row of codes spans 3 lines
/// instead of 2: one more miss for every node a walk through the graph scores.
///
/// Reads and writes go through the slice it dereferences to; it grows only by
/// [`LineAligned::extend_from_slice`], which moves it to a new aligned block when full. A block
/// it leaves, by growing or being dropped, is zeroed first (the rows are templates).
#[derive(Default)]
pub(crate) struct LineAligned<T: DefaultIsZeroes> {
    /// `off` elements of padding, then the contents.
    buf: Vec<T>,
    off: usize,
}

impl<T: DefaultIsZeroes> LineAligned<T> {
    /// Elements of padding that can be needed to reach a line.
    const PAD: usize = LINE / size_of::<T>();

    /// An empty buffer with room for `cap` elements.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        let mut buf: Vec<T> = Vec::with_capacity(cap + Self::PAD);
        // `align_offset` may decline (usize::MAX); then the buffer is merely unaligned.
        let off = buf.as_ptr().align_offset(LINE);
        let off = if off < Self::PAD { off } else { 0 };
        buf.resize(off, T::default());
        LineAligned { buf, off }
    }

    /// A copy of `items`.
    pub(crate) fn from_slice(items: &[T]) -> Self {
        let mut out = Self::with_capacity(items.len());
        out.buf.extend_from_slice(items);
        out
    }

    /// `len` copies of `T::default()`.
    pub(crate) fn zeroed(len: usize) -> Self {
        let mut out = Self::with_capacity(len);
        out.buf.resize(out.off + len, T::default());
        out
    }

    /// Shortens to `len` elements, zeroing the ones cut off.
    pub(crate) fn truncate(&mut self, len: usize) {
        let end = self.off + len;
        if end < self.buf.len() {
            self.buf[end..].zeroize();
            self.buf.truncate(end);
        }
    }

    /// Appends `items`, keeping the start on its line.
    pub(crate) fn extend_from_slice(&mut self, items: &[T]) {
        if self.buf.len() + items.len() > self.buf.capacity() {
            // A `Vec` growing by itself could land its block anywhere.
            let len = self.len();
            let mut grown = Self::with_capacity((len + items.len()).max(len * 2));
            grown.buf.extend_from_slice(&self[..]);
            *self = grown; // the old block is zeroed as it drops
        }
        self.buf.extend_from_slice(items);
    }
}

/// The length only: the contents are templates.
impl<T: DefaultIsZeroes> std::fmt::Debug for LineAligned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineAligned")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T: DefaultIsZeroes> Drop for LineAligned<T> {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl<T: DefaultIsZeroes> Deref for LineAligned<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.buf[self.off..]
    }
}

impl<T: DefaultIsZeroes> DerefMut for LineAligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.off..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_a_line<T>(s: &[T]) -> bool {
        (s.as_ptr() as usize).is_multiple_of(LINE)
    }

    #[test]
    fn stays_on_a_line_and_keeps_its_contents_as_it_grows() {
        let mut codes: LineAligned<i8> = LineAligned::default();
        let mut want: Vec<i8> = Vec::new();
        for i in 0..5000 {
            let row: Vec<i8> = (0..128).map(|j| ((i * 7 + j) % 251) as i8).collect();
            codes.extend_from_slice(&row);
            want.extend_from_slice(&row);
            assert!(on_a_line(&codes), "after {} rows", i + 1);
        }
        assert_eq!(&*codes, &want[..]);

        let rows = LineAligned::from_slice(&[1.5f32; 1000]);
        assert!(on_a_line(&rows));
        assert_eq!(rows.len(), 1000);
        let zeros = LineAligned::<f32>::zeroed(300);
        assert!(on_a_line(&zeros));
        assert!(zeros.iter().all(|&x| x == 0.0));

        codes.truncate(128);
        assert_eq!(&*codes, &want[..128]);
        codes.extend_from_slice(&[5; 64]);
        assert_eq!(codes.len(), 192);
        assert!(codes[128..].iter().all(|&c| c == 5));
        assert_eq!(format!("{codes:?}"), "LineAligned { len: 192, .. }");
    }
}
