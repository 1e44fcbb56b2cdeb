// expect: E0505
// A frame of pinned pages used after the pins are released.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn pinned(start: usize) -> Result {
    let pins = PinnedPages::pin_longterm(start, 4096, true)?;
    let frames = pins.frames();
    let frame = frames.frame(0);
    drop(pins);
    if let Some(frame) = frame {
        map(frame);
    }
    Ok(())
}
