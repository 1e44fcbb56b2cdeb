// SPDX-License-Identifier: GPL-2.0

//! GEM objects: buffers backed by shmem.

use crate::driver::HmmGpuDriver;
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::{
    drm,
    drm::gem::{shmem, ObjectFuncs},
    prelude::*,
};

/// The number of the driver's GEM objects alive, over all devices: a leak shows here.
static LIVE_OBJECTS: AtomicUsize = AtomicUsize::new(0);

/// The driver's data of a GEM object.
#[pin_data(PinnedDrop)]
pub(crate) struct Object {}

/// A GEM object of the driver.
pub(crate) type Bo = shmem::Object<Object>;

/// The function table of the driver's GEM objects: a `static`, whose address tells them apart
/// from userptrs.
static FUNCS: ObjectFuncs<Bo> = shmem::funcs();

impl Object {
    /// How many of the driver's GEM objects are alive.
    #[cfg_attr(not(CONFIG_DRM_HMMGPU_KUNIT_TEST), expect(dead_code))]
    pub(crate) fn live() -> usize {
        LIVE_OBJECTS.load(Ordering::Relaxed)
    }
}

impl shmem::DriverObject for Object {
    type Driver = HmmGpuDriver;

    fn funcs() -> &'static ObjectFuncs<Bo> {
        &FUNCS
    }

    fn new(_dev: &drm::Device<HmmGpuDriver>, _size: usize) -> impl PinInit<Self, Error> {
        LIVE_OBJECTS.fetch_add(1, Ordering::Relaxed);
        try_pin_init!(Self {}? Error)
    }
}

#[pinned_drop]
impl PinnedDrop for Object {
    fn drop(self: Pin<&mut Self>) {
        LIVE_OBJECTS.fetch_sub(1, Ordering::Relaxed);
    }
}
