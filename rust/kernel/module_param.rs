// SPDX-License-Identifier: GPL-2.0

//! Module parameters: values given when a module is loaded (`modprobe mod name=value`, or
//! `mod.name=value` on the kernel command line for a built-in module).
//!
//! The `module!` macro of this kernel has no parameters; [`module_param_u32!`] declares one the
//! way `module_param_named()` does in C: an entry in the `__param` section, which the module
//! loader parses before the module's `init` runs, and its description in `.modinfo`. Parameters
//! are read-only once loaded (mode 0444 in sysfs), so reading them needs no lock.
//!
//! C header: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h)

use crate::{bindings, str::CStr};
use core::cell::UnsafeCell;

/// The value of a `u32` module parameter. Declare it with [`module_param_u32!`].
///
/// # Invariants
///
/// The value is only written by the module loader, while it parses the module's arguments,
/// before anything of the module runs: afterwards it is read-only.
#[repr(transparent)]
pub struct U32Param(UnsafeCell<u32>);

// SAFETY: By the type invariant, the value never changes while the module's code may read it.
unsafe impl Sync for U32Param {}

impl U32Param {
    /// A parameter whose value is `default` unless the module is loaded with another.
    pub const fn new(default: u32) -> Self {
        Self(UnsafeCell::new(default))
    }

    /// The parameter's value.
    pub fn get(&self) -> u32 {
        // SAFETY: By the type invariant nothing writes the value any more.
        unsafe { *self.0.get() }
    }
}

/// A `struct kernel_param`, the loader's description of a parameter.
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
    /// The description of `u32` parameter `name` of `module`, whose value is `value`.
    ///
    /// # Safety
    ///
    /// `module` must be the module's `__this_module`, or null for a built-in module (whose
    /// `name` then starts with the module's name and a dot).
    pub const unsafe fn new_u32(
        name: &'static CStr,
        module: *mut bindings::module,
        value: &'static U32Param,
    ) -> Self {
        // INVARIANT: All pointers are to statics.
        Self(bindings::kernel_param {
            name: name.as_char_ptr(),
            mod_: module,
            ops: &raw const bindings::param_ops_uint,
            // Readable in sysfs, never writable: see `U32Param`.
            perm: 0o444,
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
/// `$module` (with `$default` unless given), with a description for `modinfo`.
///
/// ```ignore
/// kernel::module_param_u32!(VM_MODES, "hmmgpu", "vm_modes", 7, "The VM modes offered");
/// ```
#[macro_export]
macro_rules! module_param_u32 {
    ($var:ident, $module:literal, $name:literal, $default:expr, $desc:literal $(,)?) => {
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
                unsafe { $crate::module_param::KernelParam::new_u32(name, module, &$var) }
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
