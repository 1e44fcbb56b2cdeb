// SPDX-License-Identifier: GPL-2.0

//! hmmgpu: a virtual GPU whose engine reaches memory only through its own page table.
//!
//! This is the reference driver of the kernel crate's DRM and memory-mirroring abstractions. It
//! registers a platform device and a platform driver, which, bound to it, makes a DRM device with
//! a render node and shmem-backed GEM objects. Unbinding the driver (`echo hmmgpu >
//! /sys/bus/platform/drivers/hmmgpu/unbind`) unplugs the DRM device: open files stay, their
//! ioctls fail with `ENODEV`; binding it again makes a new one.
//!
//! uAPI: [`include/uapi/drm/hmmgpu_drm.h`](srctree/include/uapi/drm/hmmgpu_drm.h)

// `try_pin_init!` expands recursively, once per field: `Vm` has more than the default 128 allows.
#![recursion_limit = "256"]

use kernel::{c_str, device, drm, platform, platform::Driver, prelude::*, str::CStr};

mod bind;
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
mod unmapped;
mod userptr;
mod vm;

module! {
    type: HmmGpuModule,
    name: "hmmgpu",
    author: "The hmmgpu developers",
    description: "Virtual GPU that mirrors process memory",
    license: "GPL",
}

/// The module's state: the platform device and its driver.
struct HmmGpuModule {
    // Dropped in this order: remove the device, which unbinds the driver from it (unplugging the
    // DRM device), then unregister the driver.
    _pdev: platform::SimpleDevice,
    _driver: platform::Registration<HmmGpuPlatform>,
}

/// The platform driver, bound to the module's device: binding makes and registers the DRM
/// device, unbinding (also through the driver's `unbind` file in sysfs) unplugs it.
struct HmmGpuPlatform;

impl platform::Driver for HmmGpuPlatform {
    type Data = drm::Registration<driver::HmmGpuDriver>;

    const NAME: &'static CStr = c_str!("hmmgpu");

    fn probe(dev: &device::Device) -> Result<Pin<KBox<Self::Data>>> {
        let drm = drm::Device::new(dev, driver::DeviceData::new())?;
        let registration = KBox::pin(drm::Registration::new(drm)?, GFP_KERNEL)?;
        let (major, minor, patch) = driver::VERSION;
        pr_info!("version {major}.{minor}.{patch} registered\n");
        Ok(registration)
    }
}

impl kernel::Module for HmmGpuModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let pdev = platform::SimpleDevice::register(HmmGpuPlatform::NAME, None)?;
        // The device reaches all of memory: pages of imported dma-buffers, mapped for it, are
        // not bounced (it only ever reads their pages, never their DMA addresses).
        // SAFETY: Its driver is registered below: nothing is bound to it, nor maps for it, yet.
        unsafe { pdev.set_dma_mask(64) }?;
        let driver = platform::Registration::new(module)?;
        Ok(Self {
            _pdev: pdev,
            _driver: driver,
        })
    }
}
