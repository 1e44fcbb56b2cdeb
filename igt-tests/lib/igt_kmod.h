/* SPDX-License-Identifier: MIT */
/*
 * Copyright (C) 2026 The hmmgpu developers
 *
 * Loading and unloading kernel modules, with IGT's lib/igt_kmod.h names.
 * IGT goes through libkmod; this goes through modprobe(8) to load (so that
 * busybox's is enough) and delete_module(2) to unload.
 */
#ifndef IGT_KMOD_H
#define IGT_KMOD_H

#include <stdbool.h>

bool igt_kmod_is_loaded(const char *mod_name);
int igt_kmod_load(const char *mod_name, const char *opts);
int igt_kmod_unload(const char *mod_name);

#endif /* IGT_KMOD_H */
