// SPDX-License-Identifier: GPL-2.0

//! GEM objects: buffers backed by shmem.

use crate::driver::HmmGpuDriver;
use kernel::{drm, drm::gem::shmem, prelude::*};

/// The driver's data of a GEM object.
#[pin_data]
pub(crate) struct Object {}

/// A GEM object of the driver.
pub(crate) type Bo = shmem::Object<Object>;

impl shmem::DriverObject for Object {
    type Driver = HmmGpuDriver;

    fn new(_dev: &drm::Device<HmmGpuDriver>, _size: usize) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {}? Error)
    }
}
