// SPDX-License-Identifier: MIT
/*
 * Copyright (C) 2026 The hmmgpu developers
 */
#include <string.h>

#include "igt_core.h"
#include "igt_kms.h"

/**
 * igt_kms_prop_id - The id of @kms_fd's property @name of object @obj (of
 * DRM_MODE_OBJECT_* @type), or 0; its current value in *@value if not NULL.
 */
uint32_t igt_kms_prop_id(int kms_fd, uint32_t obj, uint32_t type, const char *name,
			 uint64_t *value)
{
	drmModeObjectPropertiesPtr props = drmModeObjectGetProperties(kms_fd, obj, type);
	uint32_t id = 0;

	igt_assert(props);
	for (uint32_t i = 0; i < props->count_props && !id; i++) {
		drmModePropertyPtr prop = drmModeGetProperty(kms_fd, props->props[i]);

		if (prop && !strcmp(prop->name, name)) {
			id = prop->prop_id;
			if (value)
				*value = props->prop_values[i];
		}
		drmModeFreeProperty(prop);
	}
	drmModeFreeObjectProperties(props);
	return id;
}

/** igt_kms_add_prop - Adds property @name of object @obj, set to @value, to @req. */
void igt_kms_add_prop(drmModeAtomicReqPtr req, int kms_fd, uint32_t obj, uint32_t type,
		      const char *name, uint64_t value)
{
	uint32_t id = igt_kms_prop_id(kms_fd, obj, type, name, NULL);

	igt_assert_f(id, "object %u has no property %s\n", obj, name);
	igt_assert_lt(0, drmModeAtomicAddProperty(req, obj, id, value));
}
