// SPDX-License-Identifier: GPL-2.0

//! hmmgpu: a virtual GPU whose engine reaches memory only through its own page table.
//!
//! This is the reference driver of the kernel crate's DRM and memory-mirroring abstractions. It
//! registers a platform device and, on it, a DRM device with a render node and shmem-backed GEM
//! objects.
//!
//! uAPI: [`include/uapi/drm/hmmgpu_drm.h`](srctree/include/uapi/drm/hmmgpu_drm.h)

use kernel::{c_str, drm, platform, prelude::*};

mod command;
mod driver;
mod engine;
mod file;
mod frames;
mod gem;
mod invalidated;
mod job;
mod mappings;
mod mirror;
mod mode;
mod page_table;
mod pins;
mod syncs;
#[cfg(CONFIG_DRM_HMMGPU_KUNIT_TEST)]
mod tests;
mod userptr;
mod vm;

module! {
    type: HmmGpuModule,
    name: "hmmgpu",
    author: "The hmmgpu developers",
    description: "Virtual GPU that mirrors process memory",
    license: "GPL",
}

/// The module's state: the device, registered with the DRM core.
struct HmmGpuModule {
    // Dropped in this order: unregister the DRM device, then remove its parent, which drops the
    // parent's reference to it.
    _registration: drm::Registration<driver::HmmGpuDriver>,
    _pdev: platform::SimpleDevice,
}

impl kernel::Module for HmmGpuModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let pdev = platform::SimpleDevice::register(c_str!("hmmgpu"), None)?;
        let drm = drm::Device::new(pdev.device(), driver::DeviceData::new())?;
        let registration = drm::Registration::new(drm)?;
        let (major, minor, patch) = driver::VERSION;
        pr_info!("version {major}.{minor}.{patch} registered\n");
        Ok(Self {
            _registration: registration,
            _pdev: pdev,
        })
    }
}
