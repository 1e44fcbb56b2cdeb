// SPDX-License-Identifier: GPL-2.0

// What every compile-fail snippet starts with (scripts/compile-fail.sh puts it in front of
// each): a module, and an interval notifier's data whose notifier lock protects nothing.

use kernel::{
    mm::{
        frame::Frame,
        hmm::{Fault, Range},
        interval_notifier::{IntervalNotifier, Invalidate, InvalidateRange},
        notifier_lock::{NotifierGuard, NotifierLock},
        pin::PinnedPages,
    },
    prelude::*,
};

module! {
    type: Snippet,
    name: "compile_fail_snippet",
    license: "GPL",
}

struct Snippet;

impl kernel::Module for Snippet {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Snippet)
    }
}

struct Data(NotifierLock<()>);

impl Invalidate for Data {
    type Locked = ();

    fn notifier_lock(&self) -> &NotifierLock<()> {
        &self.0
    }

    fn invalidate(
        _notifier: &IntervalNotifier<Self>,
        _range: &InvalidateRange<'_>,
        _guard: &mut NotifierGuard<'_, ()>,
    ) -> bool {
        true
    }
}

/// Stands for a device page-table write, which takes a frame.
fn map(frame: Frame<'_>) {
    let _ = frame.phys();
}
