// SPDX-License-Identifier: GPL-2.0

#include <linux/dma-mapping.h>
#include <linux/platform_device.h>

struct platform_device *rust_helper_platform_device_register_simple(const char *name, int id,
								     const struct resource *res,
								     unsigned int num)
{
	return platform_device_register_simple(name, id, res, num);
}

void *rust_helper_platform_get_drvdata(const struct platform_device *pdev)
{
	return platform_get_drvdata(pdev);
}

void rust_helper_platform_set_drvdata(struct platform_device *pdev, void *data)
{
	platform_set_drvdata(pdev, data);
}

int rust_helper_dma_coerce_mask_and_coherent(struct device *dev, u64 mask)
{
	return dma_coerce_mask_and_coherent(dev, mask);
}
