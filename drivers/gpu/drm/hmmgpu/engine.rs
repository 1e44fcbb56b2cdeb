// SPDX-License-Identifier: GPL-2.0

//! The engine: runs decoded commands, reaching memory only through a GPU page table.
//!
//! Every byte the engine reads or writes is translated by the [`PageTable`] of the VM the job
//! runs on. An access no entry allows stops the job with a GPU page fault ([`Stop::Fault`]); the
//! job's [`Progress`] says where, so that a fault handler can map the page and the job resume
//! where it stopped. Commands are idempotent from any point they stop at, so resuming redoes at
//! most the access that faulted. A job also stops when it has used up its [`Access::budget`] of
//! page accesses, so that its runner can drop the notifier lock and check the time now and then.

use crate::{
    command::Command,
    page_table::{GpuFault, PageTable, SZ_4K},
};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{bindings, prelude::*};

/// Why a job stopped before its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A GPU page fault at `va`, for a write if `write`.
    Fault {
        va: u64,
        write: bool,
        kind: GpuFault,
    },
    /// The budget of page accesses is used up.
    Yield,
}

/// Who runs a job, and how much it may do before it yields.
pub(crate) struct Access {
    /// Whether the job was submitted by the process that owns the VM.
    pub(crate) owner: bool,
    /// Page accesses left before [`Stop::Yield`].
    pub(crate) budget: u32,
}

/// How far a job got: the command it is at and how far into it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The index of the command to run next.
    pub(crate) cmd: usize,
    /// Bytes of that command done.
    offset: u64,
    /// The running sum of a checksum command.
    sum: u64,
}

/// Runs `cmds` from `progress` on through `pt`, until they are all done, an access faults or
/// the budget is used up.
///
/// Never sleeps nor allocates: it may run under the notifier lock.
pub(crate) fn run(
    pt: &PageTable,
    cmds: &[Command],
    progress: &mut Progress,
    access: &mut Access,
) -> Result<(), Stop> {
    let mut mem = Memory { pt, access };
    while let Some(cmd) = cmds.get(progress.cmd) {
        step(&mut mem, cmd, progress)?;
        *progress = Progress {
            cmd: progress.cmd + 1,
            ..Default::default()
        };
    }
    Ok(())
}

/// The memory a job reaches: a page table, and who accesses it.
struct Memory<'a> {
    pt: &'a PageTable,
    access: &'a mut Access,
}

/// A page of memory the engine reaches: a kernel mapping of the page that holds an address.
struct Mapped {
    base: *mut u8,
}

impl Mapped {
    /// Maps the page of `va` for an access of the engine.
    fn new(mem: &mut Memory<'_>, va: u64, write: bool) -> Result<(Self, usize), Stop> {
        if mem.access.budget == 0 {
            return Err(Stop::Yield);
        }
        mem.access.budget -= 1;
        let t = mem
            .pt
            .translate_for(va, write, mem.access.owner)
            .map_err(|kind| Stop::Fault { va, write, kind })?;
        let pfn = (t.phys / SZ_4K) as usize;
        // SAFETY: The page table only holds the frames of pages the driver keeps (pinned, or
        // mirrored and invalidated under the notifier lock before they go).
        let base = unsafe { bindings::kmap_local_pfn(pfn) }.cast::<u8>();
        Ok((Self { base }, (t.phys % SZ_4K) as usize))
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: `base` came from `kmap_local_pfn`, and mappings are dropped in reverse order.
        unsafe { bindings::kunmap_local(self.base.cast()) };
    }
}

/// The bytes of `[va, va + len)` that lie in the page of `va`.
fn in_page(va: u64, len: u64) -> usize {
    core::cmp::min(len, SZ_4K - va % SZ_4K) as usize
}

fn step(mem: &mut Memory<'_>, cmd: &Command, p: &mut Progress) -> Result<(), Stop> {
    match *cmd {
        Command::Copy { dst, src, size } => {
            while p.offset < size {
                let (s, d) = (src + p.offset, dst + p.offset);
                let n = core::cmp::min(in_page(s, size - p.offset), in_page(d, size - p.offset));
                let (from, from_off) = Mapped::new(mem, s, false)?;
                let (to, to_off) = Mapped::new(mem, d, true)?;
                // SAFETY: Both ranges lie in their mapped pages. They may overlap: two GPU
                // addresses can map the same page.
                unsafe { copy_bytes(to.base.add(to_off), from.base.add(from_off), n) };
                p.offset += n as u64;
            }
        }
        Command::Fill { dst, size, pattern } => {
            while p.offset < size {
                let d = dst + p.offset;
                let n = in_page(d, size - p.offset);
                let (to, off) = Mapped::new(mem, d, true)?;
                // SAFETY: The bytes lie in the mapped page: decoding made the fill start on a
                // word boundary and cover whole words, so `n` is a multiple of 4.
                unsafe { fill_words(to.base.add(off), n, pattern) };
                p.offset += n as u64;
            }
        }
        Command::Write64 { dst, value } => {
            let (to, off) = Mapped::new(mem, dst, true)?;
            // SAFETY: `dst` is 8-byte aligned, so the word lies in the mapped page.
            unsafe { to.base.add(off).cast::<u64>().write_volatile(value.to_le()) };
        }
        Command::AtomicAdd64 { dst, value } => {
            let (to, off) = Mapped::new(mem, dst, true)?;
            // SAFETY: `dst` is 8-byte aligned in the mapped page; the CPU may access the word
            // concurrently, atomically as well.
            let word = unsafe { AtomicU64::from_ptr(to.base.add(off).cast::<u64>()) };
            word.fetch_add(value, Ordering::SeqCst);
        }
        Command::Checksum { dst, src, size } => {
            while p.offset < size {
                let s = src + p.offset;
                let n = in_page(s, size - p.offset);
                let (from, off) = Mapped::new(mem, s, false)?;
                // SAFETY: The bytes lie in the mapped page: decoding made the range start on a
                // word boundary and cover whole words, so `n` is a multiple of 4.
                p.sum = p
                    .sum
                    .wrapping_add(unsafe { sum_words(from.base.add(off), n) });
                p.offset += n as u64;
            }
            let (to, off) = Mapped::new(mem, dst, true)?;
            // SAFETY: `dst` is 8-byte aligned in the mapped page.
            unsafe { to.base.add(off).cast::<u64>().write_volatile(p.sum.to_le()) };
        }
    }
    Ok(())
}

/// Bytes the engine moves at a time: all loaded into a buffer on the stack before any is stored.
const CHUNK: usize = 512;
/// Bytes moved per step of the loops, as eight 64-bit words.
const BLOCK: usize = 64;
/// Words in a chunk.
const CHUNK_WORDS: usize = CHUNK / 8;

/// Runs `$body` with `$w` bound to each of 0 to 7, written out: the compiler does not unroll
/// loops of volatile accesses.
macro_rules! eight_words {
    ($w:ident => $body:expr) => {
        eight_words!(@each $w => $body; 0 1 2 3 4 5 6 7)
    };
    (@each $w:ident => $body:expr; $($i:literal)*) => {{
        $({
            let $w: usize = $i;
            $body;
        })*
    }};
}

/// Copies `n` bytes from `src` to `dst`, which may overlap.
///
/// Not `memmove()`: on CPUs with ERMS that is `rep movsb`, whose speed under emulation (QEMU's
/// TCG) depends on where the two pages lie: it alternates one-byte loads and stores, and when the
/// pages collide in the emulator's TLB (at the same offset in 2 MiB, as huge pages always are)
/// every switch between them misses, about 12 times slower. Moving 512 bytes at a time through a
/// buffer on the stack switches pages once per 512 bytes, so the copy costs about the same
/// wherever the pages lie; on hardware the buffer stays in the L1 cache.
///
/// # Safety
///
/// `src` must be valid for reads and `dst` for writes of `n` bytes.
unsafe fn copy_bytes(dst: *mut u8, src: *const u8, n: usize) {
    let (d, s) = (dst as usize, src as usize);
    // A forward copy would overwrite source bytes not yet read: only two GPU addresses of one
    // page, with the destination a little after the source, do that.
    if d > s && d - s < n {
        // SAFETY: As the caller promised; `copy` handles the overlap.
        unsafe { core::ptr::copy(src, dst, n) };
        return;
    }
    // Each word is stored before it is loaded.
    let mut buf = core::mem::MaybeUninit::<[u64; CHUNK_WORDS]>::uninit();
    let slot = buf.as_mut_ptr().cast::<u64>();
    let mut done = 0;
    while done < n {
        let len = core::cmp::min(CHUNK, n - done);
        let blocks = len / BLOCK;
        // SAFETY: The chunk lies in the `n` bytes at `src` and `dst`, and its words in `buf`,
        // each stored there before it is loaded. It is all loaded before any of it is stored: a
        // destination before the source only overwrites bytes already read. The buffer is
        // accessed with volatile loads and stores so that neither loop becomes a call to
        // `memcpy()` (`rep movsb` again).
        unsafe {
            let (s, d) = (src.add(done), dst.add(done));
            for b in 0..blocks {
                let (from, to) = (s.add(b * BLOCK).cast::<u64>(), slot.add(b * 8));
                eight_words!(w => to.add(w).write_volatile(from.add(w).read_unaligned()));
            }
            for b in 0..blocks {
                let (from, to) = (slot.add(b * 8), d.add(b * BLOCK).cast::<u64>());
                eight_words!(w => to.add(w).write_unaligned(from.add(w).read_volatile()));
            }
            for k in blocks * BLOCK..len {
                d.add(k).write(s.add(k).read());
            }
        }
        done += len;
    }
}

/// Writes the 32-bit `pattern`, little-endian, over the `n` bytes at `dst`.
///
/// # Safety
///
/// `dst` must be valid for writes of `n` bytes, a multiple of 4.
unsafe fn fill_words(dst: *mut u8, n: usize, pattern: u32) {
    let word = (u64::from(pattern) | u64::from(pattern) << 32).to_le();
    let mut d = dst.cast::<u64>();
    for _ in 0..n / 32 {
        // SAFETY: The four words lie in the `n` bytes at `dst`.
        unsafe {
            d.write_unaligned(word);
            d.add(1).write_unaligned(word);
            d.add(2).write_unaligned(word);
            d.add(3).write_unaligned(word);
            d = d.add(4);
        }
    }
    let d = d.cast::<u32>();
    for k in 0..(n % 32) / 4 {
        // SAFETY: `n` is a multiple of 4: the words left lie in the `n` bytes at `dst`.
        unsafe { d.add(k).write_unaligned(pattern.to_le()) };
    }
}

/// The sum of the little-endian 32-bit words of the `n` bytes at `src`, modulo 2^64.
///
/// Reads 64 bits at a time into a local sum: the sum of the words is that of the low halves
/// plus that of the high halves, and modulo 2^64 the low halves sum to the sum of the 64-bit
/// words less 2^32 times the sum of the high halves.
///
/// # Safety
///
/// `src` must be valid for reads of `n` bytes, a multiple of 4.
unsafe fn sum_words(src: *const u8, n: usize) -> u64 {
    let (mut all, mut high) = (0u64, 0u64);
    let mut s = src.cast::<u64>();
    // Four words per round: fewer instructions per byte for the loop itself.
    for _ in 0..n / 32 {
        // SAFETY: The four words lie in the `n` bytes at `src`.
        let (w0, w1, w2, w3) = unsafe {
            let w = (
                u64::from_le(s.read_unaligned()),
                u64::from_le(s.add(1).read_unaligned()),
                u64::from_le(s.add(2).read_unaligned()),
                u64::from_le(s.add(3).read_unaligned()),
            );
            s = s.add(4);
            w
        };
        all = all
            .wrapping_add(w0)
            .wrapping_add(w1)
            .wrapping_add(w2)
            .wrapping_add(w3);
        high = high
            .wrapping_add(w0 >> 32)
            .wrapping_add(w1 >> 32)
            .wrapping_add(w2 >> 32)
            .wrapping_add(w3 >> 32);
    }
    let mut sum = all.wrapping_sub(high << 32).wrapping_add(high);
    let s = s.cast::<u32>();
    for k in 0..(n % 32) / 4 {
        // SAFETY: `n` is a multiple of 4: the words left lie in the `n` bytes at `src`.
        let w = u32::from_le(unsafe { s.add(k).read_unaligned() });
        sum = sum.wrapping_add(u64::from(w));
    }
    sum
}

#[kernel::kunit::kunit_tests(hmmgpu_engine)]
mod tests {
    use super::*;
    use crate::page_table::{PageSize, Perm};
    use kernel::{
        alloc::{flags, KVec},
        page::Page,
    };

    const VA: u64 = 0x40_0000_0000;
    const PAGES: usize = 4;

    /// A page table mapping `PAGES` zeroed kernel pages at `VA`, the last one read-only.
    struct Gpu {
        pt: PageTable,
        pages: KVec<Page>,
    }

    fn phys(page: &Page) -> u64 {
        // SAFETY: The page is live.
        (unsafe { bindings::page_to_pfn(page.as_ptr()) }) as u64 * SZ_4K
    }

    fn unlimited() -> Access {
        Access {
            owner: true,
            budget: u32::MAX,
        }
    }

    fn gpu() -> Result<Gpu> {
        let mut pt = PageTable::new()?;
        pt.reserve(VA, PAGES as u64 * SZ_4K)?;
        let mut pages = KVec::new();
        for i in 0..PAGES {
            let page = Page::alloc_page(flags::GFP_KERNEL | flags::__GFP_ZERO)?;
            let va = VA + i as u64 * SZ_4K;
            let perm = if i == PAGES - 1 { Perm::RO } else { Perm::RW };
            // SAFETY: The page lives in `pages` as long as the table, in the test's `Gpu`.
            unsafe { pt.map_raw(va, phys(&page), PageSize::Small, perm)? };
            pages.push(page, flags::GFP_KERNEL)?;
        }
        Ok(Gpu { pt, pages })
    }

    impl Gpu {
        fn read_u32(&self, va: u64) -> u32 {
            let off = va - VA;
            let mut v = 0u32;
            let page = &self.pages[(off / SZ_4K) as usize];
            // SAFETY: `v` is valid for 4 bytes; the word lies in the page.
            let _ = unsafe { page.read_raw((&raw mut v).cast(), (off % SZ_4K) as usize, 4) };
            v
        }

        fn read_u64(&self, va: u64) -> u64 {
            u64::from(self.read_u32(va)) | u64::from(self.read_u32(va + 4)) << 32
        }

        fn write_u32(&self, va: u64, v: u32) {
            let off = va - VA;
            let page = &self.pages[(off / SZ_4K) as usize];
            // SAFETY: `v` is valid for 4 bytes; the word lies in the page.
            let _ = unsafe { page.write_raw((&raw const v).cast(), (off % SZ_4K) as usize, 4) };
        }

        fn run(&self, cmds: &[Command]) -> Result<(), Stop> {
            run(&self.pt, cmds, &mut Progress::default(), &mut unlimited())
        }
    }

    #[test]
    fn writes_and_atomics_land_in_memory() -> Result {
        let g = gpu()?;
        let cmds = [
            Command::Write64 {
                dst: VA + 8,
                value: 0x1122_3344_5566_7788,
            },
            Command::AtomicAdd64 {
                dst: VA + 16,
                value: 5,
            },
            Command::AtomicAdd64 {
                dst: VA + 16,
                value: 7,
            },
        ];
        assert!(g.run(&cmds) == Ok(()));
        assert_eq!(g.read_u64(VA + 8), 0x1122_3344_5566_7788);
        assert_eq!(g.read_u64(VA + 16), 12);
        Ok(())
    }

    #[test]
    fn fill_copy_and_checksum_cross_pages() -> Result {
        let g = gpu()?;
        let start = VA + SZ_4K - 64;
        let cmds = [
            Command::Fill {
                dst: start,
                size: 128,
                pattern: 0xabcd_0123,
            },
            Command::Copy {
                dst: VA + 2 * SZ_4K,
                src: start,
                size: 128,
            },
            Command::Checksum {
                dst: VA,
                src: VA + 2 * SZ_4K,
                size: 128,
            },
        ];
        assert!(g.run(&cmds) == Ok(()));
        for i in (0..128).step_by(4) {
            assert_eq!(g.read_u32(start + i), 0xabcd_0123);
            assert_eq!(g.read_u32(VA + 2 * SZ_4K + i), 0xabcd_0123);
        }
        assert_eq!(g.read_u32(start - 4), 0);
        assert_eq!(g.read_u64(VA), 32 * 0xabcd_0123u64);
        Ok(())
    }

    #[test]
    fn faults_stop_the_job_and_it_resumes() -> Result {
        let mut g = gpu()?;
        g.write_u32(VA + SZ_4K - 4, 0x5151_5151);
        g.write_u32(VA + SZ_4K, 0x7272_7272);
        // The second page goes: a copy across it faults there.
        assert_eq!(g.pt.clear(VA + SZ_4K, SZ_4K), 1);
        let cmds = [Command::Copy {
            dst: VA + 2 * SZ_4K,
            src: VA + SZ_4K - 4,
            size: 8,
        }];
        let mut progress = Progress::default();
        let stop = run(&g.pt, &cmds, &mut progress, &mut unlimited());
        assert!(
            stop == Err(Stop::Fault {
                va: VA + SZ_4K,
                write: false,
                kind: GpuFault::NotMapped
            })
        );
        assert_eq!(progress.cmd, 0);
        // What was before the fault is done.
        assert_eq!(g.read_u32(VA + 2 * SZ_4K), 0x5151_5151);
        // A fault handler maps the page again; the job resumes and completes.
        let page = phys(&g.pages[1]);
        // SAFETY: The page lives in `g.pages` as long as the table.
        unsafe { g.pt.map_raw(VA + SZ_4K, page, PageSize::Small, Perm::RW)? };
        assert!(run(&g.pt, &cmds, &mut progress, &mut unlimited()) == Ok(()));
        assert_eq!(progress.cmd, 1);
        assert_eq!(g.read_u32(VA + 2 * SZ_4K + 4), 0x7272_7272);
        Ok(())
    }

    #[test]
    fn jobs_yield_when_their_budget_is_used_up() -> Result {
        let g = gpu()?;
        let cmds = [Command::Fill {
            dst: VA,
            size: 3 * SZ_4K,
            pattern: 0x0101_0101,
        }];
        let mut progress = Progress::default();
        let mut yields = 0;
        loop {
            let mut access = Access {
                owner: true,
                budget: 1,
            };
            match run(&g.pt, &cmds, &mut progress, &mut access) {
                Ok(()) => break,
                Err(Stop::Yield) => yields += 1,
                Err(_) => return Err(EINVAL),
            }
        }
        // One page per run: two yields, and every word written once.
        assert_eq!(yields, 2);
        for page in 0..3 {
            assert_eq!(g.read_u32(VA + page * SZ_4K + 12), 0x0101_0101);
        }
        Ok(())
    }

    #[test]
    fn read_only_pages_refuse_writes() -> Result {
        let g = gpu()?;
        let last = VA + (PAGES as u64 - 1) * SZ_4K;
        g.write_u32(last, 9);
        let write = [Command::Write64 {
            dst: last,
            value: 1,
        }];
        assert!(
            g.run(&write)
                == Err(Stop::Fault {
                    va: last,
                    write: true,
                    kind: GpuFault::ReadOnly
                })
        );
        assert_eq!(g.read_u32(last), 9);
        // Reading it is fine.
        let read = [Command::Checksum {
            dst: VA,
            src: last,
            size: 4,
        }];
        assert!(g.run(&read) == Ok(()));
        assert_eq!(g.read_u64(VA), 9);
        Ok(())
    }

    /// A buffer of `n` bytes that differ from their neighbours.
    fn bytes(n: usize) -> Result<KVec<u8>> {
        let mut v = KVec::with_capacity(n, flags::GFP_KERNEL)?;
        for i in 0..n {
            v.push((i * 7 + i / 251) as u8, flags::GFP_KERNEL)?;
        }
        Ok(v)
    }

    #[test]
    fn block_copies_match_memmove_with_any_overlap() -> Result {
        const N: usize = 2600;
        // Lengths below, at and past a word and a chunk, and over two chunks; sources and
        // destinations apart, overlapping either way, and the same.
        for len in [0, 1, 7, 8, 9, 63, 200, 511, 512, 513, 1100, 1200] {
            for (src, dst) in [
                (0, 1300),
                (1300, 0),
                (0, 300),
                (300, 0),
                (8, 40),
                (40, 8),
                (3, 5),
                (5, 3),
                (7, 7),
            ] {
                let mut ours = bytes(N)?;
                let mut theirs = bytes(N)?;
                let base = ours.as_mut_ptr();
                // SAFETY: Both ranges lie in the buffer: 1300 + 1200 <= N.
                unsafe { copy_bytes(base.add(dst), base.add(src), len) };
                let base = theirs.as_mut_ptr();
                // SAFETY: As above.
                unsafe { core::ptr::copy(base.add(src), base.add(dst), len) };
                assert!(ours[..] == theirs[..]);
            }
        }
        Ok(())
    }

    #[test]
    fn word_sums_and_fills_match_word_by_word() -> Result {
        let mut buf = bytes(256)?;
        for (off, len) in [(0, 0), (0, 4), (4, 12), (8, 248), (12, 244)] {
            let mut want = 0u64;
            for w in buf[off..off + len].chunks_exact(4) {
                want = want.wrapping_add(u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])));
            }
            // SAFETY: The range lies in the buffer and is a multiple of 4 bytes.
            assert_eq!(unsafe { sum_words(buf.as_ptr().add(off), len) }, want);
        }
        // Words whose halves carry past 2^32 many times.
        for b in buf.iter_mut() {
            *b = 0xff;
        }
        // SAFETY: As above.
        assert_eq!(unsafe { sum_words(buf.as_ptr(), 256) }, 64 * 0xffff_ffff);
        // SAFETY: As above.
        unsafe { fill_words(buf.as_mut_ptr().add(4), 12, 0x0403_0201) };
        assert!(
            buf[..20]
                == [
                    0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 0xff, 0xff, 0xff,
                    0xff
                ]
        );
        Ok(())
    }

    #[test]
    fn unmapped_addresses_fault() -> Result {
        let g = gpu()?;
        let cmds = [Command::Write64 {
            dst: VA + PAGES as u64 * SZ_4K,
            value: 1,
        }];
        assert!(matches!(
            g.run(&cmds),
            Err(Stop::Fault {
                kind: GpuFault::NotMapped,
                ..
            })
        ));
        Ok(())
    }
}
