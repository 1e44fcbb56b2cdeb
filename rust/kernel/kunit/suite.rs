// SPDX-License-Identifier: GPL-2.0

//! KUnit test cases and suites, for the `#[kunit_tests]` attribute.
//!
//! A module marked `#[kunit_tests(suite_name)]` has its `#[test]` functions turned into the cases
//! of a KUnit suite: built in, the suite runs at boot; in a module, when the module loads.
//!
//! ```
//! use kernel::kunit::kunit_tests;
//!
//! // Built into the kernel with the example, the suite runs at boot, after the examples.
//! #[kunit_tests(rust_kunit_tests_example)]
//! mod tests {
//!     use kernel::prelude::*;
//!
//!     #[test]
//!     fn addition() {
//!         assert_eq!(1 + 1, 2);
//!     }
//!
//!     #[test]
//!     fn fallible() -> Result {
//!         let v = KVec::<u8>::with_capacity(16, GFP_KERNEL)?;
//!         assert!(v.capacity() >= 16);
//!         Ok(())
//!     }
//! }
//! ```
//!
//! `assert!` and `assert_eq!` in the module report failures to KUnit, which then ends the case;
//! a test returning `Err` fails too.
//!
//! C header: [`include/kunit/test.h`](srctree/include/kunit/test.h)

#![expect(
    clippy::test_attr_in_doctest,
    reason = "the example's #[test] functions are the cases of its #[kunit_tests] suite"
)]

use crate::{bindings, str::CStr};
use core::mem;

/// A KUnit case that runs `run_case`, for a suite's case table.
///
/// # Examples
///
/// ```
/// use kernel::{
///     bindings, c_str,
///     kunit::{kunit_case, kunit_case_null},
///     str::CStr,
/// };
///
/// extern "C" fn run(_test: *mut bindings::kunit) {}
///
/// let cases = [kunit_case(c_str!("runs"), run), kunit_case_null()];
/// assert!(cases[0].run_case.is_some());
/// // SAFETY: The name is a static C string.
/// assert_eq!(unsafe { CStr::from_char_ptr(cases[0].name) }.as_bytes(), b"runs");
/// assert!(cases[1].run_case.is_none() && cases[1].name.is_null());
/// ```
pub const fn kunit_case(
    name: &'static CStr,
    run_case: unsafe extern "C" fn(*mut bindings::kunit),
) -> bindings::kunit_case {
    bindings::kunit_case {
        run_case: Some(run_case),
        name: name.as_char_ptr(),
        // SAFETY: The other fields are KUnit's; all-zeroes is their initial state.
        ..unsafe { mem::zeroed() }
    }
}

/// The all-zeroes case that ends a suite's case table.
///
/// See [`kunit_case`] for an example.
pub const fn kunit_case_null() -> bindings::kunit_case {
    // SAFETY: All-zeroes is a valid `kunit_case` (null pointers, `None` callbacks), and the one
    // KUnit looks for at the end of a table.
    unsafe { mem::zeroed() }
}

/// A suite's name as the fixed-size array of `struct kunit_suite`.
///
/// # Examples
///
/// ```
/// use kernel::kunit::kunit_suite_name;
///
/// const NAME: [kernel::ffi::c_char; 256] = kunit_suite_name("rust_example");
/// assert_eq!(NAME[0], b'r' as _);
/// assert_eq!(NAME[11], b'e' as _);
/// assert!(NAME[12..].iter().all(|&c| c == 0));
/// ```
pub const fn kunit_suite_name(name: &str) -> [crate::ffi::c_char; 256] {
    let bytes = name.as_bytes();
    assert!(
        bytes.len() < 256,
        "KUnit suite names are at most 255 bytes long"
    );
    let mut out = [0; 256];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// What a test function may return: `()`, or a `Result` whose `Err` fails the test.
///
/// # Examples
///
/// ```
/// use kernel::kunit::TestResult;
///
/// assert!(TestResult::is_ok(&(), "unit"));
/// assert!(TestResult::is_ok(&Ok::<u32, Error>(7), "ok"));
/// // Fails, and says why in the test's log.
/// assert!(!TestResult::is_ok(&Err::<(), Error>(EINVAL), "err"));
/// ```
pub trait TestResult {
    /// Whether the test passed; if not, says why in the test's log.
    fn is_ok(&self, test: &str) -> bool;
}

impl TestResult for () {
    fn is_ok(&self, _test: &str) -> bool {
        true
    }
}

impl<T, E: core::fmt::Debug> TestResult for Result<T, E> {
    fn is_ok(&self, test: &str) -> bool {
        if let Err(e) = self {
            super::err(format_args!("    # {test}: returned Err({e:?})\n"));
        }
        Result::is_ok(self)
    }
}

/// Whether the return value of `test` means it passed.
#[doc(hidden)]
pub fn is_test_result_ok(ret: impl TestResult, test: &str) -> bool {
    ret.is_ok(test)
}

/// Declares a KUnit suite called `$name` whose cases are the `static mut` table `$test_cases`,
/// ended by [`kunit_case_null`].
///
/// Used by `#[kunit_tests]`; call it directly only for a hand-made table.
///
/// # Safety
///
/// `$test_cases` must not be used by anything but KUnit once the suite is declared: KUnit writes
/// each case's status into it.
#[doc(hidden)]
#[macro_export]
macro_rules! kunit_unsafe_test_suite {
    ($name:ident, $test_cases:ident) => {
        const _: () = {
            static mut KUNIT_TEST_SUITE: $crate::bindings::kunit_suite =
                $crate::bindings::kunit_suite {
                    name: $crate::kunit::kunit_suite_name(::core::stringify!($name)),
                    test_cases: &raw mut $test_cases as *mut $crate::bindings::kunit_case,
                    // SAFETY: The other fields are callbacks and KUnit's state: all-zeroes is
                    // "none" and the initial state.
                    ..unsafe { ::core::mem::zeroed() }
                };

            // KUnit finds the suites of the kernel and of each module in this section.
            #[used]
            #[link_section = ".kunit_test_suites"]
            static mut KUNIT_TEST_SUITE_ENTRY: *const $crate::bindings::kunit_suite =
                &raw const KUNIT_TEST_SUITE;
        };
    };
}
