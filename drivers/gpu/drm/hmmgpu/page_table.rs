// SPDX-License-Identifier: GPL-2.0

//! The GPU page table: how the virtual GPU's engine finds memory.
//!
//! A 48-bit GPU virtual address space, translated by four levels of 512 entries, as x86-64 does:
//! level 3 (bits 47..39), level 2 (38..30), level 1 (29..21) and level 0 (20..12). Leaves are
//! 4 KiB entries at level 0, or 2 MiB entries at level 1. An entry holds a physical address and
//! its permissions.
//!
//! Writing entries may happen under the notifier lock, where allocating is forbidden: so tables
//! are allocated beforehand by [`PageTable::reserve`], and [`PageTable::map`] only fills in
//! entries of reserved tables. [`PageTable::clear`], called from invalidations, never allocates
//! either: a 2 MiB entry that is partly cleared is cleared whole (the mirror faults the rest in
//! again), rather than split into a new table. Only [`PageTable::split_huge`] splits one, into a
//! table reserved beforehand.

use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, Allocator, KBox, KVVec, KVec, Vec},
    init::{self, Zeroable},
    mm::frame::Frame,
    prelude::*,
};

/// Bits of GPU virtual address.
pub(crate) const VA_BITS: u32 = 48;
/// The size of a small page.
pub(crate) const SZ_4K: u64 = 1 << 12;
/// The size of a huge page.
pub(crate) const SZ_2M: u64 = 1 << 21;
/// The end of the GPU virtual address space.
pub(crate) const VA_END: u64 = 1 << VA_BITS;

const LEVELS: usize = 4;
const ENTRIES: usize = 512;
/// The level of 2 MiB leaves.
const HUGE_LEVEL: usize = 1;

const VALID: u64 = 1 << 0;
const WRITE: u64 = 1 << 1;
const HUGE: u64 = 1 << 2;
/// The entry maps memory of the process that owns the VM: jobs of other processes fault on it.
const PRIVATE: u64 = 1 << 3;
const ADDR_MASK: u64 = ((1 << 52) - 1) & !(SZ_4K - 1);

/// The size of a leaf entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageSize {
    /// A 4 KiB entry at level 0.
    Small,
    /// A 2 MiB entry at level 1.
    Huge,
}

impl PageSize {
    pub(crate) fn bytes(self) -> u64 {
        match self {
            PageSize::Small => SZ_4K,
            PageSize::Huge => SZ_2M,
        }
    }

    fn level(self) -> usize {
        match self {
            PageSize::Small => 0,
            PageSize::Huge => HUGE_LEVEL,
        }
    }
}

/// The permissions of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Perm {
    /// The engine may write.
    pub(crate) write: bool,
    /// Only jobs of the process that owns the VM may access it.
    pub(crate) private: bool,
}

impl Perm {
    /// Readable and writable by every job of the VM.
    pub(crate) const RW: Perm = Perm {
        write: true,
        private: false,
    };
    /// Readable by every job of the VM.
    pub(crate) const RO: Perm = Perm {
        write: false,
        private: false,
    };
}

/// Why the engine could not access an address: a GPU page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GpuFault {
    /// No entry maps the address.
    NotMapped,
    /// The entry is read-only and the access a write.
    ReadOnly,
    /// The entry is private to the VM's process and the job another's.
    Private,
}

/// A translation: where a GPU virtual address lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Translation {
    /// The physical address.
    pub(crate) phys: u64,
    /// Whether writes are allowed.
    pub(crate) writable: bool,
    /// The size of the entry that maps it.
    pub(crate) size: PageSize,
}

/// One table of the page table: 512 entries and, above level 0, the tables they point to.
///
/// # Invariants
///
/// `valid` is the number of non-zero `entries`: a table whose count is zero needs no zeroing
/// (a 4 KiB table that a 2 MiB entry replaces, a table kept as a spare).
struct Table {
    entries: [u64; ENTRIES],
    next: [Option<KBox<Table>>; ENTRIES],
    valid: usize,
}

// SAFETY: All-zeroes is a valid `Table`: zero entries are invalid, `None` is the all-zeroes
// `Option<KBox<_>>` (the null-pointer niche), and no entry is valid, as a count of zero says.
unsafe impl Zeroable for Table {}

impl Table {
    fn new() -> Result<KBox<Table>> {
        // Zeroed in place: a table is 8 KiB and a count, too large for the stack (and a 16 KiB
        // allocation). Charged to the process's memory cgroup: userspace decides how many there
        // are.
        KBox::init(init::zeroed(), GFP_KERNEL_ACCOUNT)
    }

    /// Writes `entry` at `slot`.
    fn set(&mut self, slot: usize, entry: u64) {
        let old = core::mem::replace(&mut self.entries[slot], entry);
        // INVARIANT: The count follows the entry from zero to non-zero and back.
        match (old != 0, entry != 0) {
            (false, true) => self.valid += 1,
            (true, false) => self.valid -= 1,
            _ => {}
        }
    }

    /// Makes every entry zero, writing them only if one is not (binds and unbinds of huge
    /// pages then never write 4 KiB of zeroes for a table that has them already).
    fn zero_entries(&mut self) {
        if self.valid != 0 {
            self.entries = [0; ENTRIES];
            // INVARIANT: No entry is valid now.
            self.valid = 0;
        }
    }
}

fn index(va: u64, level: usize) -> usize {
    ((va >> (12 + 9 * level)) & (ENTRIES as u64 - 1)) as usize
}

/// Takes the last table of `tables`, if any.
fn pop<A: Allocator>(tables: &mut Vec<KBox<Table>, A>) -> Option<KBox<Table>> {
    let len = tables.len();
    if len == 0 {
        return None;
    }
    // SAFETY: The last element is initialised; the length shrinks first, so that it is moved
    // out once and never dropped in place.
    unsafe {
        tables.set_len(len - 1);
        Some(core::ptr::read(tables.as_ptr().add(len - 1)))
    }
}

/// Tables allocated beforehand, for [`PageTable::reserve_from`] to link in without allocating.
///
/// A vmalloc'able list: a bind of 64 GiB needs more than 32768 tables, whose pointers alone
/// would be an order-6 kmalloc.
pub(crate) struct TablePool(KVVec<KBox<Table>>);

impl TablePool {
    /// Allocates `n` zeroed tables.
    pub(crate) fn alloc(n: usize) -> Result<Self> {
        let mut tables = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..n {
            tables.push(Table::new()?, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Self(tables))
    }

    /// Takes a table out of the pool.
    fn take(&mut self) -> Option<KBox<Table>> {
        pop(&mut self.0)
    }
}

/// Takes `table` and every table below it out of use: each is made all zero and kept in `spare`
/// while it has room, for the next reservations (any level can use it), or freed. Never
/// allocates. Returns the number of tables.
fn salvage(mut table: KBox<Table>, spare: &mut KVec<KBox<Table>>) -> usize {
    let mut count = 1;
    for slot in table.next.iter_mut() {
        if let Some(child) = slot.take() {
            count += salvage(child, spare);
        }
    }
    // Cleared with their mappings already, mostly; a spare must be all zero whatever left it.
    table.zero_entries();
    if let Err(table) = crate::vm::push_within_capacity(spare, table) {
        drop(table);
    }
    count
}

/// Frees the tables below `table` (of `level`, whose span starts at `base`) over `[lo, hi)`
/// that `needed` says no mapping overlaps. Returns the number of tables freed.
fn prune_level(
    table: &mut Table,
    level: usize,
    base: u64,
    lo: u64,
    hi: u64,
    needed: &impl Fn(u64, u64) -> bool,
    spare: &mut KVec<KBox<Table>>,
) -> usize {
    // Each entry of a table of `level` spans this much; `next[i]` is the table below it.
    let span = 1u64 << (12 + 9 * level);
    let mut freed = 0;
    for i in index(lo, level)..=index(hi - 1, level) {
        let start = base + i as u64 * span;
        let end = start + span;
        let Some(child) = table.next[i].as_deref_mut() else {
            continue;
        };
        if !needed(start, end) {
            // No mapping overlaps the child's span: its entries are all clear, and a 2 MiB
            // entry over it too (cleared with its mapping). It and the tables below it go, kept
            // as spares (if there is room) for the next reservations.
            let Some(child) = table.next[i].take() else {
                continue;
            };
            freed += salvage(child, spare);
        } else if level > 1 {
            let (lo, hi) = (core::cmp::max(lo, start), core::cmp::min(hi, end));
            freed += prune_level(child, level - 1, start, lo, hi, needed, spare);
        }
    }
    freed
}

/// Which 2 MiB blocks of a range a reservation gives a table of 4 KiB entries.
#[derive(Clone, Copy)]
pub(crate) enum Small<'a> {
    /// Every block: any entry of the range can then be written.
    All,
    /// None: only 2 MiB entries can be written, in blocks the range covers whole.
    None,
    /// The blocks (by the address of any byte of theirs) for which the function says so.
    Where(&'a dyn Fn(u64) -> bool),
}

impl Small<'_> {
    fn wants(self, addr: u64) -> bool {
        match self {
            Small::All => true,
            Small::None => false,
            Small::Where(f) => f(addr & !(SZ_2M - 1)),
        }
    }
}

/// A GPU page table.
///
/// Its owner keeps this promise, on which the engine's accesses rely: every valid entry maps a
/// frame the owner keeps alive, pinned, or mirrored and cleared under the notifier lock before
/// the CPU frees it.
pub(crate) struct PageTable {
    root: KBox<Table>,
    /// Leaf entries written so far, over the table's life: 4 KiB, then 2 MiB.
    entries_written: [u64; 2],
    /// Tables [`Self::prune`] took out of use, kept (all zero) for the next reservations, up to
    /// [`SPARE_TABLES`]: binding and unbinding the same range over and over then allocates
    /// nothing, and the memory kept stays bounded.
    spare: KVec<KBox<Table>>,
}

/// How many freed tables a page table keeps for reuse (512 KiB).
const SPARE_TABLES: usize = 64;

impl PageTable {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            root: Table::new()?,
            entries_written: [0; 2],
            spare: KVec::with_capacity(SPARE_TABLES, GFP_KERNEL_ACCOUNT)?,
        })
    }

    /// The number of leaf entries of `size` written so far.
    pub(crate) fn entries_written(&self, size: PageSize) -> u64 {
        self.entries_written[size.level()]
    }

    /// Checks that `[va, va + size)` is a non-empty range of whole 4 KiB pages inside the address
    /// space.
    pub(crate) fn check_range(va: u64, size: u64) -> Result<u64> {
        let end = va.checked_add(size).ok_or(EINVAL)?;
        if size == 0 || va % SZ_4K != 0 || size % SZ_4K != 0 || end > VA_END {
            return Err(EINVAL);
        }
        Ok(end)
    }

    /// Allocates the tables that entries of `[va, va + size)` need, down to level 0, so that
    /// [`Self::map`] can then write any entry of the range without allocating.
    #[cfg(CONFIG_DRM_HMMGPU_KUNIT_TEST)]
    pub(crate) fn reserve(&mut self, va: u64, size: u64) -> Result {
        let mut pool = TablePool::alloc(self.tables_needed(va, size, Small::All)?)?;
        self.reserve_from(va, size, Small::All, &mut pool)
    }

    /// Visits the table slots that entries of `[va, va + size)` need, from the top, with
    /// `fill` called on each missing one; it returns false to stop. The tables of 4 KiB
    /// entries are those `small` asks for.
    fn walk_slots(
        &mut self,
        va: u64,
        size: u64,
        small: Small<'_>,
        mut fill: impl FnMut(&mut Option<KBox<Table>>) -> bool,
    ) -> Result {
        let end = Self::check_range(va, size)?;
        let mut addr = va;
        while addr < end {
            let mut table: &mut Table = &mut self.root;
            for level in (1..LEVELS).rev() {
                if level == HUGE_LEVEL && !small.wants(addr) {
                    break;
                }
                let slot = &mut table.next[index(addr, level)];
                if slot.is_none() && !fill(slot) {
                    break;
                }
                match slot.as_deref_mut() {
                    Some(next) => table = next,
                    None => break,
                }
            }
            // The next level-0 table starts at the next 2 MiB boundary.
            addr = (addr | (SZ_2M - 1)) + 1;
        }
        Ok(())
    }

    /// The number of tables [`Self::reserve_from`] needs for `[va, va + size)`.
    pub(crate) fn tables_needed(&self, va: u64, size: u64, small: Small<'_>) -> Result<usize> {
        let end = Self::check_range(va, size)?;
        let mut missing = 0;
        // The last table counted at each level, by the address bits above it: addresses only
        // grow, so each missing table is counted once. Under a missing table, all are missing.
        let mut last_upper = [u64::MAX; LEVELS];
        let mut addr = va;
        while addr < end {
            let mut table: Option<&Table> = Some(&self.root);
            for level in (1..LEVELS).rev() {
                if level == HUGE_LEVEL && !small.wants(addr) {
                    break;
                }
                let present = table.and_then(|t| t.next[index(addr, level)].as_deref());
                let key = addr >> (12 + 9 * level);
                if present.is_none() && last_upper[level] != key {
                    last_upper[level] = key;
                    missing += 1;
                }
                table = present;
            }
            addr = (addr | (SZ_2M - 1)) + 1;
        }
        Ok(missing)
    }

    /// Links in, from `pool`, the tables that entries of `[va, va + size)` need, so that
    /// [`Self::map`] can then write any entry of the range (of the 2 MiB blocks `small` asks
    /// for; 2 MiB entries elsewhere). Never allocates.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a bad range; `ENOMEM` when the pool runs out.
    pub(crate) fn reserve_from(
        &mut self,
        va: u64,
        size: u64,
        small: Small<'_>,
        pool: &mut TablePool,
    ) -> Result {
        let mut short = false;
        let mut spare = core::mem::take(&mut self.spare);
        // Spare tables are all zero (entries and links): fit for any level.
        let result = self.walk_slots(va, size, small, |slot| {
            match pop(&mut spare).or_else(|| pool.take()) {
                Some(table) => {
                    *slot = Some(table);
                    true
                }
                None => {
                    short = true;
                    false
                }
            }
        });
        self.spare = spare;
        result?;
        if short {
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// How many spare tables [`Self::reserve_from`] takes before its pool's.
    pub(crate) fn spare_tables(&self) -> usize {
        self.spare.len()
    }

    /// Maps `va` to `frame` with one entry of `size` (the frame is the first of the block for
    /// a 2 MiB entry), writable if the frame is, private to the VM's process if `private`. Never
    /// allocates.
    ///
    /// # Errors
    ///
    /// As [`Self::map_raw`].
    pub(crate) fn map(
        &mut self,
        va: u64,
        frame: Frame<'_>,
        size: PageSize,
        private: bool,
    ) -> Result {
        let perm = Perm {
            write: frame.is_writable(),
            private,
        };
        // SAFETY: The frame's lifetime proves it current now (a snapshot under the notifier
        // lock, pins, or a page kept resident); the entry's owner clears it before that ends.
        unsafe { self.map_raw(va, frame.phys(), size, perm) }
    }

    /// Maps `va` to the physical address `phys` with one entry of `size`. Never allocates.
    ///
    /// # Errors
    ///
    /// `EINVAL` when `va` or `phys` is not aligned to `size`, `va` is outside the address space,
    /// or the tables were not reserved.
    ///
    /// # Safety
    ///
    /// The `size` bytes at `phys` must stay allocated, and be memory the VM's jobs may access as
    /// `perm` says, until the entry is cleared: the engine accesses them through it.
    pub(crate) unsafe fn map_raw(
        &mut self,
        va: u64,
        phys: u64,
        size: PageSize,
        perm: Perm,
    ) -> Result {
        let bytes = size.bytes();
        if va % bytes != 0 || phys % bytes != 0 || phys & !ADDR_MASK != 0 {
            return Err(EINVAL);
        }
        Self::check_range(va, bytes)?;
        let upper = self.table_mut(va, HUGE_LEVEL).ok_or(EINVAL)?;
        let huge_slot = index(va, HUGE_LEVEL);
        if size == PageSize::Huge {
            // A 2 MiB entry replaces the 4 KiB entries below it, which stay reserved for when it
            // is cleared.
            if let Some(small) = upper.next[huge_slot].as_deref_mut() {
                small.zero_entries();
            }
        } else if upper.entries[huge_slot] & HUGE != 0 {
            // A 4 KiB entry cannot go under a 2 MiB one: clear that first.
            return Err(EINVAL);
        }
        let table = self.table_mut(va, size.level()).ok_or(EINVAL)?;
        let slot = index(va, size.level());
        let mut entry = phys | VALID;
        if perm.write {
            entry |= WRITE;
        }
        if perm.private {
            entry |= PRIVATE;
        }
        if size == PageSize::Huge {
            entry |= HUGE;
        }
        table.set(slot, entry);
        self.entries_written[size.level()] += 1;
        Ok(())
    }

    /// Splits the 2 MiB entry that maps `va`, if one does, into the 512 4 KiB entries that
    /// translate each address of its block as it did, with its permissions, in the table of 4 KiB
    /// entries below it. Never allocates. Returns whether there was one to split.
    ///
    /// An unbind whose edge cuts a 2 MiB entry splits it first: the pieces beside it keep their
    /// entries, and the part it unmaps can be cleared alone, later (see
    /// [`crate::unmapped::Unmapped`]).
    ///
    /// # Errors
    ///
    /// `EINVAL` when the table of 4 KiB entries of the block is not reserved: nothing changes.
    pub(crate) fn split_huge(&mut self, va: u64) -> Result<bool> {
        if va >= VA_END {
            return Ok(false);
        }
        let Some(upper) = self.table_mut(va, HUGE_LEVEL) else {
            return Ok(false);
        };
        let slot = index(va, HUGE_LEVEL);
        let entry = upper.entries[slot];
        if entry & (VALID | HUGE) != VALID | HUGE {
            return Ok(false);
        }
        let small = upper.next[slot].as_deref_mut().ok_or(EINVAL)?;
        let (base, perm) = (entry & ADDR_MASK, entry & !ADDR_MASK & !HUGE);
        for (i, phys) in (base..base + SZ_2M).step_by(SZ_4K as usize).enumerate() {
            small.set(i, phys | perm);
        }
        upper.set(slot, 0);
        self.entries_written[PageSize::Small.level()] += ENTRIES as u64;
        Ok(true)
    }

    /// The table of `level` that holds the entry of `va`, if it exists.
    fn table_mut(&mut self, va: u64, level: usize) -> Option<&mut Table> {
        let mut table: &mut Table = &mut self.root;
        for l in (level + 1..LEVELS).rev() {
            table = table.next[index(va, l)].as_deref_mut()?;
        }
        Some(table)
    }

    /// Clears the entries of `[va, va + size)`; a 2 MiB entry that overlaps the range is cleared
    /// whole. Never allocates. Returns the number of entries cleared.
    pub(crate) fn clear(&mut self, va: u64, size: u64) -> usize {
        self.clear_each(va, size, |_| {})
    }

    /// As [`Self::clear`], calling `cleared` with each entry it clears, so that the pages the
    /// engine may have written through writable entries can be marked dirty.
    pub(crate) fn clear_each(
        &mut self,
        va: u64,
        size: u64,
        mut cleared: impl FnMut(Translation),
    ) -> usize {
        let Ok(end) = Self::check_range(va, size) else {
            return 0;
        };
        let mut count = 0;
        let mut take = |table: &mut Table, slot: usize, size: PageSize| {
            let entry = table.entries[slot];
            table.set(slot, 0);
            count += 1;
            cleared(Translation {
                phys: entry & ADDR_MASK,
                writable: entry & WRITE != 0,
                size,
            });
        };
        let mut addr = va;
        while addr < end {
            let next_2m = (addr | (SZ_2M - 1)) + 1;
            if let Some(table) = self.table_mut(addr, HUGE_LEVEL) {
                let slot = index(addr, HUGE_LEVEL);
                if table.entries[slot] & HUGE != 0 {
                    take(table, slot, PageSize::Huge);
                } else if let Some(small) = table.next[slot].as_deref_mut() {
                    let mut a = addr;
                    while a < core::cmp::min(end, next_2m) {
                        let slot = index(a, 0);
                        if small.entries[slot] & VALID != 0 {
                            take(small, slot, PageSize::Small);
                        }
                        a += SZ_4K;
                    }
                }
            }
            addr = next_2m;
        }
        count
    }

    /// Frees the tables under `[va, va + size)` that no mapping needs any more: those whose span
    /// `needed(start, end)` says no mapping overlaps (their entries were cleared with their
    /// mappings). Tables that a remaining mapping overlaps stay, reserved for it. Never
    /// allocates; returns the number of tables freed.
    ///
    /// Without it, every bind and unbind of a range at a new address would leave its tables
    /// behind: 4 MiB for each GiB, for as long as the VM lives.
    pub(crate) fn prune(&mut self, va: u64, size: u64, needed: impl Fn(u64, u64) -> bool) -> usize {
        let Ok(end) = Self::check_range(va, size) else {
            return 0;
        };
        prune_level(
            &mut self.root,
            LEVELS - 1,
            0,
            va,
            end,
            &needed,
            &mut self.spare,
        )
    }

    /// The number of tables below the root.
    #[cfg(CONFIG_DRM_HMMGPU_KUNIT_TEST)]
    pub(crate) fn tables(&self) -> usize {
        fn count(table: &Table) -> usize {
            table.next.iter().flatten().map(|t| 1 + count(t)).sum()
        }
        count(&self.root)
    }

    /// Translates `va` for an access by a job of the VM's own process.
    #[cfg(CONFIG_DRM_HMMGPU_KUNIT_TEST)]
    pub(crate) fn translate(&self, va: u64, write: bool) -> Result<Translation, GpuFault> {
        self.translate_for(va, write, true)
    }

    /// Translates `va` for an access by the engine, for a job of the VM's own process if
    /// `owner`.
    pub(crate) fn translate_for(
        &self,
        va: u64,
        write: bool,
        owner: bool,
    ) -> Result<Translation, GpuFault> {
        if va >= VA_END {
            return Err(GpuFault::NotMapped);
        }
        let mut table = &self.root;
        for level in (0..LEVELS).rev() {
            let entry = table.entries[index(va, level)];
            if level == HUGE_LEVEL && entry & HUGE != 0 || level == 0 {
                if entry & VALID == 0 {
                    return Err(GpuFault::NotMapped);
                }
                if entry & PRIVATE != 0 && !owner {
                    return Err(GpuFault::Private);
                }
                let writable = entry & WRITE != 0;
                if write && !writable {
                    return Err(GpuFault::ReadOnly);
                }
                let size = if level == 0 {
                    PageSize::Small
                } else {
                    PageSize::Huge
                };
                let offset = va & (size.bytes() - 1);
                return Ok(Translation {
                    phys: (entry & ADDR_MASK) + offset,
                    writable,
                    size,
                });
            }
            table = table.next[index(va, level)]
                .as_ref()
                .ok_or(GpuFault::NotMapped)?;
        }
        Err(GpuFault::NotMapped)
    }
}

#[kernel::kunit::kunit_tests(hmmgpu_page_table)]
mod tests {
    use super::*;

    /// Maps without a frame: these tests only translate addresses, never access them.
    fn put(pt: &mut PageTable, va: u64, phys: u64, size: PageSize, perm: Perm) -> Result {
        // SAFETY: Nothing accesses memory through the entries of these tests' tables.
        unsafe { pt.map_raw(va, phys, size, perm) }
    }

    const VA: u64 = 0x7f12_3440_0000;

    #[test]
    fn small_entries_translate_with_their_permissions() -> Result {
        let mut pt = PageTable::new()?;
        pt.reserve(VA, 2 * SZ_4K)?;
        put(&mut pt, VA, 0x1234_5000, PageSize::Small, Perm::RW)?;
        put(&mut pt, VA + SZ_4K, 0x8000, PageSize::Small, Perm::RO)?;
        let t = pt.translate(VA + 0x123, true);
        assert!(t.map(|t| (t.phys, t.size)) == Ok((0x1234_5123, PageSize::Small)));
        assert!(pt.translate(VA + SZ_4K + 8, false).map(|t| t.phys) == Ok(0x8008));
        assert!(pt.translate(VA + SZ_4K, true) == Err(GpuFault::ReadOnly));
        assert!(pt.translate(VA + 2 * SZ_4K, false) == Err(GpuFault::NotMapped));
        assert!(pt.translate(VA - SZ_4K, false) == Err(GpuFault::NotMapped));
        assert!(pt.translate(VA_END, false) == Err(GpuFault::NotMapped));
        assert_eq!(pt.entries_written(PageSize::Small), 2);
        assert_eq!(pt.entries_written(PageSize::Huge), 0);
        Ok(())
    }

    #[test]
    fn private_entries_refuse_other_processes() -> Result {
        let mut pt = PageTable::new()?;
        pt.reserve(VA, 2 * SZ_4K)?;
        let private = Perm {
            write: true,
            private: true,
        };
        put(&mut pt, VA, 0x1000, PageSize::Small, private)?;
        put(&mut pt, VA + SZ_4K, 0x2000, PageSize::Small, Perm::RW)?;
        assert!(pt.translate_for(VA, true, true).map(|t| t.phys) == Ok(0x1000));
        assert!(pt.translate_for(VA, false, false) == Err(GpuFault::Private));
        assert!(pt.translate_for(VA + SZ_4K, true, false).map(|t| t.phys) == Ok(0x2000));
        Ok(())
    }

    #[test]
    fn huge_entries_cover_2m() -> Result {
        let mut pt = PageTable::new()?;
        pt.reserve(VA, SZ_2M)?;
        put(&mut pt, VA, 0x4000_0000, PageSize::Huge, Perm::RW)?;
        assert_eq!(pt.entries_written(PageSize::Huge), 1);
        let t = pt.translate(VA + 0x1f_f123, true);
        assert!(t.map(|t| (t.phys, t.size)) == Ok((0x401f_f123, PageSize::Huge)));
        assert!(pt.translate(VA + SZ_2M, false) == Err(GpuFault::NotMapped));
        // Alignment to the entry's size, of both addresses.
        assert!(put(&mut pt, VA + SZ_4K, 0x4000_0000, PageSize::Huge, Perm::RW) == Err(EINVAL));
        assert!(put(&mut pt, VA, 0x4000_1000, PageSize::Huge, Perm::RW) == Err(EINVAL));
        // A small entry cannot go under a huge one.
        assert!(put(&mut pt, VA + SZ_4K, 0x1000, PageSize::Small, Perm::RW) == Err(EINVAL));
        Ok(())
    }

    #[test]
    fn small_entries_never_come_back_from_under_a_huge_one() -> Result {
        let mut pt = PageTable::new()?;
        pt.reserve(VA, SZ_2M)?;
        let gone = |pt: &PageTable, va: u64| pt.translate(va, false) == Err(GpuFault::NotMapped);
        // Small entries, then a huge entry over them, cleared: none of them is left.
        put(&mut pt, VA + SZ_4K, 0x1000, PageSize::Small, Perm::RW)?;
        put(
            &mut pt,
            VA + SZ_2M - SZ_4K,
            0x2000,
            PageSize::Small,
            Perm::RW,
        )?;
        put(&mut pt, VA, 0x4000_0000, PageSize::Huge, Perm::RW)?;
        pt.clear(VA, SZ_2M);
        assert!(gone(&pt, VA + SZ_4K) && gone(&pt, VA + SZ_2M - SZ_4K));
        // Part of the block cleared, then a huge entry, cleared: the rest is gone too.
        put(&mut pt, VA, 0x3000, PageSize::Small, Perm::RW)?;
        put(&mut pt, VA + 8 * SZ_4K, 0x5000, PageSize::Small, Perm::RW)?;
        pt.clear(VA, SZ_4K);
        put(&mut pt, VA, 0x4000_0000, PageSize::Huge, Perm::RW)?;
        pt.clear(VA + SZ_4K, SZ_4K);
        assert!(gone(&pt, VA + 8 * SZ_4K) && gone(&pt, VA));
        // The whole block cleared, entry by entry: a huge entry over it, cleared, leaves nothing.
        put(&mut pt, VA + 3 * SZ_4K, 0x6000, PageSize::Small, Perm::RO)?;
        pt.clear(VA, SZ_2M);
        put(&mut pt, VA, 0x4000_0000, PageSize::Huge, Perm::RW)?;
        pt.clear(VA, SZ_2M);
        assert!(gone(&pt, VA + 3 * SZ_4K));
        // And small entries can be written again.
        put(&mut pt, VA + 3 * SZ_4K, 0x7000, PageSize::Small, Perm::RW)?;
        let t = pt.translate(VA + 3 * SZ_4K, true);
        assert!(t.map(|t| t.phys) == Ok(0x7000));
        Ok(())
    }

    #[test]
    fn a_split_huge_entry_translates_as_it_did() -> Result {
        let mut pt = PageTable::new()?;
        let private = Perm {
            write: false,
            private: true,
        };
        // Without the table of 4 KiB entries below it, a huge entry stays as it is.
        let mut pool = TablePool::alloc(2)?;
        pt.reserve_from(VA, SZ_2M, Small::None, &mut pool)?;
        put(&mut pt, VA, 0x4000_0000, PageSize::Huge, private)?;
        assert!(pt.split_huge(VA + SZ_4K) == Err(EINVAL));
        assert!(pt.translate_for(VA, false, true).map(|t| t.size) == Ok(PageSize::Huge));
        pt.reserve(VA, SZ_2M)?;
        let written = pt.entries_written(PageSize::Small);
        assert!(pt.split_huge(VA + 0x12_3456) == Ok(true));
        assert_eq!(pt.entries_written(PageSize::Small), written + 512);
        for off in [0, 0x123, SZ_4K, 0x10_0008, SZ_2M - 1] {
            let t = pt.translate_for(VA + off, false, true);
            assert!(t.map(|t| (t.phys, t.size)) == Ok((0x4000_0000 + off, PageSize::Small)));
            assert!(pt.translate_for(VA + off, true, true) == Err(GpuFault::ReadOnly));
            assert!(pt.translate_for(VA + off, false, false) == Err(GpuFault::Private));
        }
        // Nothing left to split; a page of the block can now be cleared alone.
        assert!(pt.split_huge(VA) == Ok(false));
        assert_eq!(pt.clear(VA + SZ_4K, SZ_4K), 1);
        assert!(pt.translate(VA + SZ_4K, false) == Err(GpuFault::NotMapped));
        assert!(pt.translate(VA + 2 * SZ_4K, false).map(|t| t.phys) == Ok(0x4000_2000));
        // Nothing maps the next block.
        assert!(pt.split_huge(VA + SZ_2M) == Ok(false));
        Ok(())
    }

    #[test]
    fn map_never_allocates() -> Result {
        let mut pt = PageTable::new()?;
        assert!(put(&mut pt, VA, 0x1000, PageSize::Small, Perm::RW) == Err(EINVAL));
        pt.reserve(VA, SZ_4K)?;
        put(&mut pt, VA, 0x1000, PageSize::Small, Perm::RW)?;
        // The next 2 MiB has no tables.
        assert!(put(&mut pt, VA + SZ_2M, 0x1000, PageSize::Small, Perm::RW) == Err(EINVAL));
        Ok(())
    }

    #[test]
    fn clear_removes_only_the_range() -> Result {
        let mut pt = PageTable::new()?;
        pt.reserve(VA, 8 * SZ_4K)?;
        for i in 0..8 {
            put(
                &mut pt,
                VA + i * SZ_4K,
                0x10_0000 + i * SZ_4K,
                PageSize::Small,
                Perm::RW,
            )?;
        }
        assert_eq!(pt.clear(VA + 2 * SZ_4K, 3 * SZ_4K), 3);
        for i in 0..8 {
            let mapped = pt.translate(VA + i * SZ_4K, false).is_ok();
            assert_eq!(mapped, !(2..5).contains(&i));
        }
        // Clearing again clears nothing.
        assert_eq!(pt.clear(VA + 2 * SZ_4K, 3 * SZ_4K), 0);
        Ok(())
    }

    #[test]
    fn clearing_part_of_a_huge_entry_clears_it_whole() -> Result {
        let mut pt = PageTable::new()?;
        pt.reserve(VA, SZ_2M)?;
        put(&mut pt, VA, 0x4000_0000, PageSize::Huge, Perm::RW)?;
        assert_eq!(pt.clear(VA + 5 * SZ_4K, SZ_4K), 1);
        assert!(pt.translate(VA, false) == Err(GpuFault::NotMapped));
        assert!(pt.translate(VA + SZ_2M - 1, false) == Err(GpuFault::NotMapped));
        // The small tables stayed reserved: the range can be mapped again page by page.
        put(&mut pt, VA + SZ_4K, 0x9000, PageSize::Small, Perm::RW)?;
        assert!(pt.translate(VA + SZ_4K, true).map(|t| t.phys) == Ok(0x9000));
        Ok(())
    }

    #[test]
    fn clearing_reports_each_entry_it_clears() -> Result {
        let mut pt = PageTable::new()?;
        pt.reserve(VA, 2 * SZ_2M)?;
        put(&mut pt, VA, 0x4000_0000, PageSize::Huge, Perm::RW)?;
        put(&mut pt, VA + SZ_2M, 0x7000, PageSize::Small, Perm::RO)?;
        put(
            &mut pt,
            VA + SZ_2M + SZ_4K,
            0x8000,
            PageSize::Small,
            Perm::RW,
        )?;
        let mut seen = KVec::new();
        let n = pt.clear_each(VA + SZ_2M - SZ_4K, 3 * SZ_4K, |t| {
            let _ = seen.push(t, GFP_KERNEL_ACCOUNT);
        });
        assert_eq!(n, 3);
        assert_eq!(seen.len(), 3);
        // The huge entry whole, then the small ones in order, with their permissions.
        let expected = [
            (0x4000_0000, true, PageSize::Huge),
            (0x7000, false, PageSize::Small),
            (0x8000, true, PageSize::Small),
        ];
        for (t, (phys, writable, size)) in seen.iter().zip(expected) {
            assert!(t.phys == phys && t.writable == writable && t.size == size);
        }
        Ok(())
    }

    #[test]
    fn pruning_frees_the_tables_no_mapping_needs() -> Result {
        let mut pt = PageTable::new()?;
        // 1 GiB across a 512 GiB boundary: tables at every level on both sides.
        let va = (1 << 39) - (1 << 29);
        let size = 1 << 30;
        pt.reserve(va, size)?;
        let all = pt.tables();
        assert_eq!(all, 2 + 2 + 512);
        // Another mapping keeps the 2 MiB at the end.
        let kept = (va + size - SZ_2M, va + size);
        let overlaps = |lo: u64, hi: u64| lo < kept.1 && kept.0 < hi;
        let freed = pt.prune(va, size, overlaps);
        // What stays: one table per level on the kept mapping's path.
        assert_eq!(pt.tables(), 3);
        assert_eq!(freed, all - 3);
        assert_eq!(pt.tables_needed(kept.0, SZ_2M, Small::All)?, 0);
        put(&mut pt, kept.0, 0x1000, PageSize::Small, Perm::RW)?;
        // Nothing needs anything any more.
        assert_eq!(pt.prune(0, VA_END, |_, _| false), 3);
        assert_eq!(pt.tables(), 0);
        // And everything can be reserved again.
        pt.reserve(va, size)?;
        assert_eq!(pt.tables(), all);
        Ok(())
    }

    #[test]
    fn tables_that_go_with_entries_left_are_kept_all_zero() -> Result {
        let mut pt = PageTable::new()?;
        // A 2 MiB entry and a 4 KiB one, left in place when their tables go.
        pt.reserve(VA, 2 * SZ_2M)?;
        put(&mut pt, VA, 0x4000_0000, PageSize::Huge, Perm::RW)?;
        put(
            &mut pt,
            VA + SZ_2M + SZ_4K,
            0x1000,
            PageSize::Small,
            Perm::RW,
        )?;
        // Levels 2 and 1, and two at level 0.
        assert_eq!(pt.prune(VA, 2 * SZ_2M, |_, _| false), 4);
        assert_eq!(pt.spare_tables(), 4);
        for t in pt.spare.iter() {
            assert!(t.valid == 0 && t.entries.iter().all(|&e| e == 0));
        }
        // Reused, they map nothing.
        pt.reserve(VA, 2 * SZ_2M)?;
        assert_eq!(pt.spare_tables(), 0);
        assert!(pt.translate(VA, false) == Err(GpuFault::NotMapped));
        assert!(pt.translate(VA + SZ_2M + SZ_4K, false) == Err(GpuFault::NotMapped));
        Ok(())
    }

    #[test]
    fn a_bind_and_unbind_cycle_allocates_no_tables() -> Result {
        let mut pt = PageTable::new()?;
        // 16 MiB: a table at levels 2 and 1, eight at level 0.
        let (va, size) = (1 << 30, 16 << 20);
        pt.reserve(va, size)?;
        assert_eq!(pt.tables(), 10);
        put(&mut pt, va, 0x20_0000, PageSize::Huge, Perm::RW)?;
        pt.clear(va, size);
        // Every table goes, of every level, and is kept all zero for the next reservation.
        assert_eq!(pt.prune(va, size, |_, _| false), 10);
        assert_eq!(pt.tables(), 0);
        assert_eq!(pt.spare_tables(), 10);
        assert_eq!(pt.tables_needed(va, size, Small::All)?, 10);
        let mut none = TablePool::alloc(0)?;
        pt.reserve_from(va, size, Small::All, &mut none)?;
        assert_eq!(pt.tables(), 10);
        assert_eq!(pt.spare_tables(), 0);
        // The reused tables are empty: nothing translates until mapped.
        assert!(pt.translate_for(va, false, true).is_err());
        assert!(pt.translate_for(va + size - SZ_4K, false, true).is_err());
        put(&mut pt, va + SZ_4K, 0x5000, PageSize::Small, Perm::RW)?;
        let t = pt.translate_for(va + SZ_4K, true, true);
        assert!(t.map(|t| t.phys) == Ok(0x5000));
        Ok(())
    }

    #[test]
    fn reservations_can_leave_out_the_tables_of_4k_entries() -> Result {
        let mut pt = PageTable::new()?;
        // 8 MiB from VA: upper tables alone, then the table of the third block only.
        let size = 4 * SZ_2M;
        assert_eq!(pt.tables_needed(VA, size, Small::None)?, 2);
        assert_eq!(pt.tables_needed(VA, size, Small::All)?, 6);
        let mut pool = TablePool::alloc(2)?;
        pt.reserve_from(VA, size, Small::None, &mut pool)?;
        assert_eq!(pt.tables(), 2);
        // 2 MiB entries can be written, 4 KiB ones cannot.
        put(&mut pt, VA, 0x4000_0000, PageSize::Huge, Perm::RW)?;
        assert!(put(&mut pt, VA + 2 * SZ_2M, 0x1000, PageSize::Small, Perm::RW) == Err(EINVAL));
        let third = |block: u64| block == VA + 2 * SZ_2M;
        assert_eq!(pt.tables_needed(VA, size, Small::Where(&third))?, 1);
        let mut pool = TablePool::alloc(1)?;
        pt.reserve_from(VA, size, Small::Where(&third), &mut pool)?;
        assert_eq!(pt.tables(), 3);
        put(
            &mut pt,
            VA + 2 * SZ_2M + SZ_4K,
            0x1000,
            PageSize::Small,
            Perm::RW,
        )?;
        assert!(put(&mut pt, VA + 3 * SZ_2M, 0x1000, PageSize::Small, Perm::RW) == Err(EINVAL));
        let t = pt.translate(VA + 2 * SZ_2M + SZ_4K, true);
        assert!(t.map(|t| t.phys) == Ok(0x1000));
        Ok(())
    }

    #[test]
    fn ranges_are_checked() {
        assert!(PageTable::check_range(VA, 0) == Err(EINVAL));
        assert!(PageTable::check_range(VA + 1, SZ_4K) == Err(EINVAL));
        assert!(PageTable::check_range(VA, SZ_4K + 1) == Err(EINVAL));
        assert!(PageTable::check_range(VA_END - SZ_4K, 2 * SZ_4K) == Err(EINVAL));
        assert!(PageTable::check_range(u64::MAX - 4095, SZ_4K) == Err(EINVAL));
        assert!(PageTable::check_range(VA_END - SZ_4K, SZ_4K) == Ok(VA_END));
    }

    #[test]
    fn reserving_takes_exactly_the_tables_counted() -> Result {
        let mut pt = PageTable::new()?;
        // Three 2 MiB blocks: one table at each upper level, three at level 0.
        let size = 3 * SZ_2M;
        assert_eq!(pt.tables_needed(VA, size, Small::All)?, 5);
        let mut short = TablePool::alloc(4)?;
        assert!(pt.reserve_from(VA, size, Small::All, &mut short) == Err(ENOMEM));
        let mut pool = TablePool::alloc(pt.tables_needed(VA, size, Small::All)?)?;
        pt.reserve_from(VA, size, Small::All, &mut pool)?;
        assert!(pool.take().is_none());
        assert_eq!(pt.tables_needed(VA, size, Small::All)?, 0);
        put(
            &mut pt,
            VA + size - SZ_4K,
            0x1000,
            PageSize::Small,
            Perm::RW,
        )?;
        // Across a 512 GiB boundary, only the missing tables count.
        let va = (1u64 << 39) - SZ_2M;
        assert_eq!(pt.tables_needed(va, 2 * SZ_2M, Small::All)?, 6);
        Ok(())
    }

    #[test]
    fn reserve_spans_upper_level_boundaries() -> Result {
        let mut pt = PageTable::new()?;
        // Across a 1 GiB and a 512 GiB boundary.
        let va = (1u64 << 39) - SZ_2M;
        pt.reserve(va, 2 * SZ_2M)?;
        put(&mut pt, va, 0x1000, PageSize::Small, Perm::RW)?;
        put(&mut pt, va + SZ_2M, 0x4000_0000, PageSize::Huge, Perm::RO)?;
        assert!(pt.translate(va + SZ_2M + 16, true) == Err(GpuFault::ReadOnly));
        assert!(pt.translate(va + SZ_2M + 16, false).map(|t| t.phys) == Ok(0x4000_0010));
        Ok(())
    }
}
