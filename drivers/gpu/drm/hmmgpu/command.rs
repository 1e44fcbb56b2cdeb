// SPDX-License-Identifier: GPL-2.0

//! Engine commands: decoding a command buffer from userspace.
//!
//! A buffer is an array of `struct drm_hmmgpu_cmd`. It is decoded whole before anything runs, so
//! a malformed buffer is refused with `EINVAL` and never half-executed. Decoding only checks
//! what the commands say; whether the GPU page table lets the engine reach the addresses is the
//! engine's business (a GPU page fault).

use crate::page_table::VA_END;
use kernel::{prelude::*, uapi};

/// A decoded engine command. Addresses are GPU virtual addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Copy `size` bytes from `src` to `dst`.
    Copy { dst: u64, src: u64, size: u64 },
    /// Fill `size` bytes at `dst` with a 32-bit pattern.
    Fill { dst: u64, size: u64, pattern: u32 },
    /// Write a 64-bit value at `dst`.
    Write64 { dst: u64, value: u64 },
    /// Add to the 64-bit word at `dst`, atomically.
    AtomicAdd64 { dst: u64, value: u64 },
    /// Write at `dst` the sum of the 32-bit words of `size` bytes at `src`.
    Checksum { dst: u64, src: u64, size: u64 },
}

/// Checks that `[va, va + size)` is a non-empty range inside the GPU address space.
fn range(va: u64, size: u64) -> Result {
    let end = va.checked_add(size).ok_or(EINVAL)?;
    if size == 0 || size > uapi::HMMGPU_CMD_MAX_SIZE as u64 || end > VA_END {
        return Err(EINVAL);
    }
    Ok(())
}

/// Checks that `va` is a 64-bit word inside the GPU address space.
fn word(va: u64) -> Result {
    if va % 8 != 0 {
        return Err(EINVAL);
    }
    range(va, 8)
}

impl TryFrom<&uapi::drm_hmmgpu_cmd> for Command {
    type Error = Error;

    fn try_from(c: &uapi::drm_hmmgpu_cmd) -> Result<Self> {
        if c.flags != 0 {
            return Err(EINVAL);
        }
        let cmd = match c.op {
            uapi::HMMGPU_CMD_COPY => {
                range(c.dst, c.size)?;
                range(c.src, c.size)?;
                // PANIC: Both ends were checked not to wrap.
                if c.dst < c.src + c.size && c.src < c.dst + c.size || c.value != 0 {
                    return Err(EINVAL);
                }
                Command::Copy {
                    dst: c.dst,
                    src: c.src,
                    size: c.size,
                }
            }
            uapi::HMMGPU_CMD_FILL => {
                range(c.dst, c.size)?;
                // Whole words from a word boundary: the engine never splits one across pages.
                if c.dst % 4 != 0 || c.size % 4 != 0 || c.src != 0 || c.value > u64::from(u32::MAX)
                {
                    return Err(EINVAL);
                }
                Command::Fill {
                    dst: c.dst,
                    size: c.size,
                    pattern: c.value as u32,
                }
            }
            uapi::HMMGPU_CMD_WRITE64 | uapi::HMMGPU_CMD_ATOMIC_ADD64 => {
                word(c.dst)?;
                if c.src != 0 || c.size != 0 {
                    return Err(EINVAL);
                }
                if c.op == uapi::HMMGPU_CMD_WRITE64 {
                    Command::Write64 {
                        dst: c.dst,
                        value: c.value,
                    }
                } else {
                    Command::AtomicAdd64 {
                        dst: c.dst,
                        value: c.value,
                    }
                }
            }
            uapi::HMMGPU_CMD_CHECKSUM => {
                word(c.dst)?;
                range(c.src, c.size)?;
                if c.src % 4 != 0 || c.size % 4 != 0 || c.value != 0 {
                    return Err(EINVAL);
                }
                Command::Checksum {
                    dst: c.dst,
                    src: c.src,
                    size: c.size,
                }
            }
            _ => return Err(EINVAL),
        };
        Ok(cmd)
    }
}

/// Decodes a whole command buffer, or refuses it.
///
/// # Errors
///
/// `EINVAL` when the buffer is empty or longer than `HMMGPU_CMD_MAX_COUNT` commands, or when any
/// command does not decode.
pub(crate) fn decode(cmds: &[uapi::drm_hmmgpu_cmd]) -> Result<KVec<Command>> {
    if cmds.is_empty() || cmds.len() > uapi::HMMGPU_CMD_MAX_COUNT as usize {
        return Err(EINVAL);
    }
    let mut out = KVec::with_capacity(cmds.len(), GFP_KERNEL_ACCOUNT)?;
    for c in cmds {
        out.push(Command::try_from(c)?, GFP_KERNEL_ACCOUNT)?;
    }
    Ok(out)
}

#[kernel::kunit::kunit_tests(hmmgpu_command)]
mod tests {
    use super::*;

    fn cmd(op: u32, dst: u64, src: u64, size: u64, value: u64) -> uapi::drm_hmmgpu_cmd {
        uapi::drm_hmmgpu_cmd {
            op,
            flags: 0,
            dst,
            src,
            size,
            value,
        }
    }

    fn one(c: uapi::drm_hmmgpu_cmd) -> Result<Command> {
        Command::try_from(&c)
    }

    #[test]
    fn each_command_decodes() {
        let (a, b) = (0x10_0000, 0x20_0000);
        assert!(
            one(cmd(uapi::HMMGPU_CMD_COPY, a, b, 4096, 0))
                == Ok(Command::Copy {
                    dst: a,
                    src: b,
                    size: 4096
                })
        );
        assert!(
            one(cmd(uapi::HMMGPU_CMD_FILL, a, 0, 64, 0xdead_beef))
                == Ok(Command::Fill {
                    dst: a,
                    size: 64,
                    pattern: 0xdead_beef
                })
        );
        assert!(
            one(cmd(uapi::HMMGPU_CMD_WRITE64, a + 8, 0, 0, u64::MAX))
                == Ok(Command::Write64 {
                    dst: a + 8,
                    value: u64::MAX
                })
        );
        assert!(
            one(cmd(uapi::HMMGPU_CMD_ATOMIC_ADD64, a, 0, 0, 3))
                == Ok(Command::AtomicAdd64 { dst: a, value: 3 })
        );
        assert!(
            one(cmd(uapi::HMMGPU_CMD_CHECKSUM, a, b, 16, 0))
                == Ok(Command::Checksum {
                    dst: a,
                    src: b,
                    size: 16
                })
        );
    }

    #[test]
    fn bad_commands_are_refused() {
        let (a, b) = (0x10_0000, 0x20_0000);
        let bad = [
            cmd(0, a, b, 8, 0),
            cmd(99, a, b, 8, 0),
            // Reserved flags.
            uapi::drm_hmmgpu_cmd {
                flags: 1,
                ..cmd(uapi::HMMGPU_CMD_COPY, a, b, 8, 0)
            },
            // Empty, wrapping, too large, past the address space, overlapping.
            cmd(uapi::HMMGPU_CMD_COPY, a, b, 0, 0),
            cmd(uapi::HMMGPU_CMD_COPY, u64::MAX - 7, b, 16, 0),
            cmd(
                uapi::HMMGPU_CMD_COPY,
                a,
                b,
                uapi::HMMGPU_CMD_MAX_SIZE as u64 + 1,
                0,
            ),
            cmd(uapi::HMMGPU_CMD_COPY, VA_END - 8, b, 16, 0),
            cmd(uapi::HMMGPU_CMD_COPY, a, a + 8, 16, 0),
            // Fields a command does not use must be zero.
            cmd(uapi::HMMGPU_CMD_COPY, a, b, 8, 1),
            cmd(uapi::HMMGPU_CMD_FILL, a, b, 8, 0),
            cmd(uapi::HMMGPU_CMD_WRITE64, a, 0, 8, 0),
            cmd(uapi::HMMGPU_CMD_CHECKSUM, a, b, 8, 1),
            // Alignment.
            cmd(uapi::HMMGPU_CMD_FILL, a, 0, 6, 0),
            cmd(uapi::HMMGPU_CMD_FILL, a + 2, 0, 8, 0),
            cmd(uapi::HMMGPU_CMD_CHECKSUM, a, b + 2, 8, 0),
            cmd(uapi::HMMGPU_CMD_FILL, a, 0, 8, 1 << 32),
            cmd(uapi::HMMGPU_CMD_WRITE64, a + 4, 0, 0, 0),
            cmd(uapi::HMMGPU_CMD_ATOMIC_ADD64, a + 1, 0, 0, 0),
            cmd(uapi::HMMGPU_CMD_CHECKSUM, a + 4, b, 8, 0),
            cmd(uapi::HMMGPU_CMD_CHECKSUM, a, b, 6, 0),
        ];
        for (i, c) in bad.iter().enumerate() {
            let refused = Command::try_from(c) == Err(EINVAL);
            if !refused {
                kernel::pr_err!("hmmgpu_command: bad command {} decoded\n", i);
            }
            assert!(refused);
        }
    }

    #[test]
    fn buffers_decode_whole_or_not_at_all() -> Result {
        let (a, b) = (0x10_0000, 0x20_0000);
        let good = cmd(uapi::HMMGPU_CMD_WRITE64, a, 0, 0, 1);
        assert_eq!(decode(&[good, good])?.len(), 2);
        assert!(decode(&[]).err() == Some(EINVAL));
        assert!(decode(&[good, cmd(0, a, b, 8, 0), good]).err() == Some(EINVAL));
        let mut many = KVec::new();
        for _ in 0..=uapi::HMMGPU_CMD_MAX_COUNT {
            many.push(good, GFP_KERNEL_ACCOUNT)?;
        }
        assert!(decode(&many).err() == Some(EINVAL));
        assert_eq!(
            decode(&many[1..])?.len(),
            uapi::HMMGPU_CMD_MAX_COUNT as usize
        );
        Ok(())
    }
}
