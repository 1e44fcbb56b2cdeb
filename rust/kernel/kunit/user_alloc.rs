// SPDX-License-Identifier: GPL-2.0

//! User memory for tests: mappings in the address space of the running KUnit test.
//!
//! C header: [`include/kunit/test.h`](srctree/include/kunit/test.h)

use crate::{bindings, prelude::*};

/// Maps `len` bytes of anonymous private memory with protection `prot` (`PROT_*`) into the
/// address space of the running KUnit test, and returns the mapping's address.
///
/// Tests (and the examples of the documentation) run in kernel threads, which have no address
/// space: the first mapping gives the test's thread a new one (`kunit_vm_mmap`), current for the
/// rest of the test, so that code that works on the current process's memory can be tested.
/// The mappings and the address space go when the test ends.
///
/// # Errors
///
/// `EINVAL` when no KUnit test runs on this thread; `ENOMEM` when the mapping failed.
///
/// # Examples
///
/// ```
/// use kernel::{bindings, kunit, mm::MmWithUser, page::PAGE_SIZE};
///
/// // The test's kernel thread has no address space until it maps something.
/// assert!(MmWithUser::current().is_none());
/// let addr = kunit::vm_mmap(2 * PAGE_SIZE, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// assert!(addr != 0 && addr % PAGE_SIZE == 0);
/// assert!(MmWithUser::current().is_some());
/// # Ok::<(), Error>(())
/// ```
pub fn vm_mmap(len: usize, prot: u32) -> Result<usize> {
    // SAFETY: FFI call without requirements: it returns null outside a test.
    let test = unsafe { bindings::kunit_get_current_test() };
    if test.is_null() {
        return Err(EINVAL);
    }
    // SAFETY: `test` is the test running on this thread; no file is mapped.
    let addr = unsafe {
        bindings::kunit_vm_mmap(
            test,
            core::ptr::null_mut(),
            0,
            len as _,
            prot as _,
            (bindings::MAP_ANONYMOUS | bindings::MAP_PRIVATE) as _,
            0,
        )
    } as usize;
    // `kunit_vm_mmap` returns 0 when it failed; `vm_mmap` an errno as an address in the last
    // page.
    if addr == 0 || addr > usize::MAX - 4095 {
        return Err(ENOMEM);
    }
    Ok(addr)
}
