// SPDX-License-Identifier: GPL-2.0 OR MIT

//! DRM ioctls: flags, descriptors and [`declare_drm_ioctls!`], which builds a driver's table.
//!
//! C header: [`include/drm/drm_ioctl.h`](srctree/include/drm/drm_ioctl.h)

use crate::bindings;

/// The ioctl may be called on a render node.
pub const RENDER_ALLOW: u32 = bindings::drm_ioctl_flags_DRM_RENDER_ALLOW;

/// One entry of a driver's ioctl table (`struct drm_ioctl_desc`).
pub type DrmIoctlDescriptor = bindings::drm_ioctl_desc;

#[doc(hidden)]
pub mod internal {
    pub use crate::bindings::{drm_device, drm_file, drm_ioctl_desc};
}

/// Declares a DRM driver's ioctl table, as the associated constant `IOCTLS` of its
/// [`Driver`](crate::drm::Driver) implementation.
///
/// Each entry is `(NAME, uapi_struct, flags, handler)`: `DRM_IOCTL_<NAME>` is the command number
/// from the driver's uAPI header, `uapi_struct` the argument's type in [`crate::uapi`], `flags` a
/// combination of the flags of this module, and the handler has the signature
/// `fn(&drm::Device<T>, &mut uapi_struct, &drm::File<T::File>) -> Result<u32>`.
///
/// The table is checked at compile time: entries must follow one another from
/// `DRM_COMMAND_BASE` without gaps (the DRM core indexes the table by command number), and each
/// argument type must have the size encoded in its command number.
///
/// # Examples
///
/// The examples' driver, [`doctest::Driver`](crate::drm::doctest::Driver), declares its one
/// ioctl so:
///
/// ```ignore
/// impl drm::Driver for Driver {
///     kernel::declare_drm_ioctls! {
///         (HMMGPU_GET_PARAM, drm_hmmgpu_get_param, ioctl::RENDER_ALLOW, File::get_param),
///     }
///     // ...
/// }
/// ```
///
/// and the DRM core calls it through the table:
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::{
///     drm::{file::MockFile, ioctl, Driver},
///     ioctl::{_IOC_NR, _IOC_SIZE},
///     uapi,
/// };
///
/// let file = MockFile::<doctest::File>::open(&f.dev)?;
/// let desc: &ioctl::DrmIoctlDescriptor = &doctest::Driver::IOCTLS[0];
/// assert_eq!(desc.cmd, uapi::DRM_IOCTL_HMMGPU_GET_PARAM);
/// assert_eq!(_IOC_NR(desc.cmd), uapi::DRM_COMMAND_BASE);
/// assert_eq!(_IOC_SIZE(desc.cmd), size_of::<uapi::drm_hmmgpu_get_param>());
/// assert_eq!(desc.flags, ioctl::RENDER_ALLOW);
/// let func = desc.func.ok_or(EINVAL)?;
/// let mut arg = uapi::drm_hmmgpu_get_param { param: 21, pad: 0, value: 0 };
/// // SAFETY: The device and the file are live, and `arg` is the ioctl's argument.
/// let ret = unsafe { func(f.dev.as_raw(), (&raw mut arg).cast(), file.file().as_raw()) };
/// assert_eq!((ret, arg.value), (0, 42));
/// // Errors come back as negative errnos.
/// arg.pad = 1;
/// // SAFETY: As above.
/// let ret = unsafe { func(f.dev.as_raw(), (&raw mut arg).cast(), file.file().as_raw()) };
/// assert_eq!(ret, EINVAL.to_errno());
/// # Ok::<(), Error>(())
/// ```
#[macro_export]
macro_rules! declare_drm_ioctls {
    ( $( ($cmd:ident, $struct:ident, $flags:expr, $func:expr) ),* $(,)? ) => {
        const IOCTLS: &'static [$crate::drm::ioctl::DrmIoctlDescriptor] = {
            use $crate::uapi::*;
            const _: () = {
                let i: u32 = $crate::uapi::DRM_COMMAND_BASE;
                $(
                    let cmd: u32 = $crate::macros::concat_idents!(DRM_IOCTL_, $cmd);
                    ::core::assert!(
                        i == $crate::ioctl::_IOC_NR(cmd),
                        ::core::concat!(
                            "DRM_IOCTL_", ::core::stringify!($cmd),
                            " is not at its position in the ioctl table",
                        ),
                    );
                    ::core::assert!(
                        ::core::mem::size_of::<$crate::uapi::$struct>()
                            == $crate::ioctl::_IOC_SIZE(cmd),
                        ::core::concat!(
                            "the size of ", ::core::stringify!($struct),
                            " differs from the one in DRM_IOCTL_", ::core::stringify!($cmd),
                        ),
                    );
                    let i: u32 = i + 1;
                )*
                let _ = i;
            };

            let ioctls = &[$(
                $crate::drm::ioctl::internal::drm_ioctl_desc {
                    cmd: $crate::macros::concat_idents!(DRM_IOCTL_, $cmd) as u32,
                    func: {
                        /// The handler the DRM core calls for the ioctl.
                        ///
                        /// # Safety
                        ///
                        /// `raw_dev` must be a live device of the driver, `raw_file` an open
                        /// file of it and `raw_data` the kernel's copy of the argument.
                        #[allow(non_snake_case)]
                        unsafe extern "C" fn $cmd(
                            raw_dev: *mut $crate::drm::ioctl::internal::drm_device,
                            raw_data: *mut ::core::ffi::c_void,
                            raw_file: *mut $crate::drm::ioctl::internal::drm_file,
                        ) -> ::core::ffi::c_int {
                            // SAFETY: The DRM core calls the driver's ioctls with its own live
                            // device and an open file of it.
                            let dev = unsafe { $crate::drm::device::Device::as_ref(raw_dev) };
                            // SAFETY: The DRM core passes a kernel copy of the argument, at least
                            // as large as the size in the command number, which the table check
                            // above makes the size of the type; nothing else uses it meanwhile.
                            let data = unsafe { &mut *raw_data.cast::<$crate::uapi::$struct>() };
                            // SAFETY: See `dev`.
                            let file = unsafe { $crate::drm::file::File::as_ref(raw_file) };
                            match $func(dev, data, file) {
                                Err(e) => e.to_errno(),
                                Ok(i) => i.try_into()
                                    .unwrap_or($crate::error::code::ERANGE.to_errno()),
                            }
                        }
                        Some($cmd)
                    },
                    flags: $flags,
                    name: $crate::c_str!(::core::stringify!($cmd)).as_char_ptr(),
                }
            ),*];
            ioctls
        };
    };
}
