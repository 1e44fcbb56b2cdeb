// SPDX-License-Identifier: GPL-2.0 OR MIT

//! DRM subsystem abstractions.
//!
//! A DRM driver implements [`Driver`](driver::Driver): its static description ([`DriverInfo`]
//! (driver::DriverInfo)), its ioctl table (built with [`declare_drm_ioctls!`]), the data it keeps
//! per open file ([`DriverFile`](file::DriverFile)) and the type of its GEM objects
//! ([`gem::shmem::DriverObject`]). It then allocates a [`Device`](device::Device) on a parent
//! device and makes it visible to userspace with a [`Registration`](driver::Registration).
//!
//! C header: [`include/drm/drm_drv.h`](srctree/include/drm/drm_drv.h)

pub mod device;
#[cfg(CONFIG_RUST_KERNEL_DOCTESTS)]
#[doc(hidden)]
pub mod doctest;
pub mod driver;
pub mod file;
pub mod gem;
pub mod ioctl;
pub mod syncobj;

pub use self::device::{Device, FileOperations, NewDevice};
pub use self::driver::{Driver, DriverInfo, Registration};
pub use self::file::File;
