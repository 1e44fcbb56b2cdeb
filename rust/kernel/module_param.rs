// SPDX-License-Identifier: GPL-2.0

//! Module parameters: values given when a module is loaded (`modprobe mod name=value`, or
//! `mod.name=value` on the kernel command line for a built-in module).
//!
//! The `module!` macro of this kernel has no parameters; [`module_param_u32!`] declares one the
//! way `module_param_named()` does in C: an entry in the `__param` section, which the module
//! loader parses before the module's `init` runs, and its description in `.modinfo`. Parameters
//! are read-only once loaded (mode 0444 in sysfs) unless declared `writable` (mode 0644: root
//! may write them in `/sys/module/*/parameters/`); a read sees the value of the last write, as
//! `READ_ONCE()` does in C, so reading needs no lock.
//!
//! C header: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h)

use crate::{bindings, str::CStr};
use core::cell::UnsafeCell;

/// The value of a `u32` module parameter. Declare it with [`module_param_u32!`].
///
/// # Examples
///
/// ```
/// use kernel::module_param::U32Param;
///
/// static DEPTH: U32Param = U32Param::new(16);
/// assert_eq!(DEPTH.get(), 16);
/// ```
///
/// # Invariants
///
/// The value is only written by the module loader, while it parses the module's arguments,
/// and, for a writable parameter, by `param_set_uint()` (an aligned `u32` store) when root
/// writes it in sysfs.
#[repr(transparent)]
pub struct U32Param(UnsafeCell<u32>);

// SAFETY: By the type invariant, the value is only written by whole aligned `u32` stores, which
// `get` reads with a volatile load, as `READ_ONCE()` does.
unsafe impl Sync for U32Param {}

impl U32Param {
    /// A parameter whose value is `default` unless the module is loaded with another.
    pub const fn new(default: u32) -> Self {
        Self(UnsafeCell::new(default))
    }

    /// The parameter's value.
    pub fn get(&self) -> u32 {
        // SAFETY: The value is valid and aligned; writes are whole stores (type invariant).
        unsafe { core::ptr::read_volatile(self.0.get()) }
    }
}

/// A `struct kernel_param`, the loader's description of a parameter.
///
/// # Examples
///
/// What the loader does with `doc.depth=42` on the command line (it parses the parameters of
/// built-in code at boot):
///
/// ```
/// use kernel::{
///     bindings, c_str,
///     module_param::{KernelParam, U32Param},
/// };
///
/// static DEPTH: U32Param = U32Param::new(16);
/// // SAFETY: Built in: no module, and the name starts with a module's name and a dot.
/// static PARAM: KernelParam =
///     unsafe { KernelParam::new_u32(c_str!("doc.depth"), core::ptr::null_mut(), &DEPTH, true) };
///
/// let raw: *const bindings::kernel_param = (&raw const PARAM).cast();
/// // SAFETY: `KernelParam` is a transparent `kernel_param`, which uses `uint`'s operations.
/// unsafe {
///     assert!((*raw).ops == &raw const bindings::param_ops_uint);
///     assert_eq!((*raw).perm, 0o644);
///     assert_eq!(bindings::param_set_uint(c_str!("42").as_char_ptr(), raw), 0);
///     // Not a `u32`: refused, the value unchanged.
///     assert!(bindings::param_set_uint(c_str!("-1").as_char_ptr(), raw) < 0);
/// }
/// assert_eq!(DEPTH.get(), 42);
/// ```
///
/// # Invariants
///
/// The pointers it holds are to statics: its name, the module, the operations and the value.
#[repr(transparent)]
pub struct KernelParam(bindings::kernel_param);

// SAFETY: The description is constant; the loader only reads it (and writes through `arg`,
// see `U32Param`).
unsafe impl Sync for KernelParam {}

impl KernelParam {
    /// The description of `u32` parameter `name` of `module`, whose value is `value`; root may
    /// write it in sysfs if `writable`.
    ///
    /// # Safety
    ///
    /// `module` must be the module's `__this_module`, or null for a built-in module (whose
    /// `name` then starts with the module's name and a dot).
    pub const unsafe fn new_u32(
        name: &'static CStr,
        module: *mut bindings::module,
        value: &'static U32Param,
        writable: bool,
    ) -> Self {
        // INVARIANT: All pointers are to statics.
        Self(bindings::kernel_param {
            name: name.as_char_ptr(),
            mod_: module,
            ops: &raw const bindings::param_ops_uint,
            // Readable in sysfs; writable by root only if asked: see `U32Param`.
            perm: if writable { 0o644 } else { 0o444 },
            level: -1,
            flags: 0,
            __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
                arg: value.0.get().cast(),
            },
        })
    }
}

/// Copies `s` into an array of its length, for a `.modinfo` entry.
#[doc(hidden)]
pub const fn modinfo<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = s[i];
        i += 1;
    }
    out
}

/// Declares a `u32` module parameter: a [`U32Param`] static `$var`, loaded as `$name` of module
/// `$module` (with `$default` unless given), with a description for `modinfo`. With
/// `writable` at the end, root may also change it in sysfs while the module is loaded.
///
/// ```ignore
/// kernel::module_param_u32!(VM_MODES, "hmmgpu", "vm_modes", 7, "The VM modes offered");
/// kernel::module_param_u32!(LOCKS, "hmmgpu", "locks", 1, "Whether to lock", writable);
/// ```
///
/// # Examples
///
/// In built-in code, such as this example, the parameter is named after the module with a dot:
/// `rust_doctests_kernel.depth=N` on the kernel's command line would set this one, and root may
/// change it in `/sys/module/rust_doctests_kernel/parameters/depth`.
///
/// ```
/// kernel::module_param_u32!(DEPTH, "rust_doctests_kernel", "depth", 16, "Example", writable);
///
/// // Unless the command line gave another value.
/// assert_eq!(DEPTH.get(), 16);
/// ```
#[macro_export]
macro_rules! module_param_u32 {
    ($var:ident, $module:literal, $name:literal, $default:expr, $desc:literal $(,)?) => {
        $crate::module_param_u32!(@param $var, $module, $name, $default, $desc, false);
    };
    ($var:ident, $module:literal, $name:literal, $default:expr, $desc:literal, writable $(,)?) => {
        $crate::module_param_u32!(@param $var, $module, $name, $default, $desc, true);
    };
    (@param $var:ident, $module:literal, $name:literal, $default:expr, $desc:literal,
     $writable:literal) => {
        static $var: $crate::module_param::U32Param = $crate::module_param::U32Param::new($default);

        const _: () = {
            #[cfg(MODULE)]
            extern "C" {
                static __this_module: $crate::bindings::module;
            }

            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: $crate::module_param::KernelParam = {
                #[cfg(MODULE)]
                let (name, module) = ($crate::c_str!($name), (&raw const __this_module).cast_mut());
                #[cfg(not(MODULE))]
                let (name, module) = (
                    $crate::c_str!(concat!($module, ".", $name)),
                    core::ptr::null_mut(),
                );
                // SAFETY: `module` is this module's, or null when it is built in and the name
                // is prefixed.
                unsafe {
                    $crate::module_param::KernelParam::new_u32(name, module, &$var, $writable)
                }
            };

            const DESC: &[u8] = concat!("parm=", $name, ":", $desc, "\0").as_bytes();
            const TYPE: &[u8] = concat!("parmtype=", $name, ":uint\0").as_bytes();

            #[cfg(MODULE)]
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARM_DESC: [u8; DESC.len()] = $crate::module_param::modinfo(DESC);

            #[cfg(MODULE)]
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARM_TYPE: [u8; TYPE.len()] = $crate::module_param::modinfo(TYPE);
        };
    };
}
pub use module_param_u32;
