// SPDX-License-Identifier: GPL-2.0

#include <linux/dma-fence.h>
#include <linux/dma-fence-chain.h>

#ifdef CONFIG_DMA_SHARED_BUFFER

struct dma_fence *rust_helper_dma_fence_get(struct dma_fence *fence)
{
	return dma_fence_get(fence);
}

void rust_helper_dma_fence_put(struct dma_fence *fence)
{
	dma_fence_put(fence);
}

bool rust_helper_dma_fence_is_signaled(struct dma_fence *fence)
{
	return dma_fence_is_signaled(fence);
}

void rust_helper_dma_fence_set_error(struct dma_fence *fence, int error)
{
	dma_fence_set_error(fence, error);
}

/*
 * Named apart from dma_fence_begin_signalling(), which is a function with
 * lockdep and a static inline without: both would become the same binding.
 */
bool rust_helper_dma_fence_signalling_begin(void)
{
	return dma_fence_begin_signalling();
}

void rust_helper_dma_fence_signalling_end(bool cookie)
{
	dma_fence_end_signalling(cookie);
}

struct dma_fence *rust_helper_dma_fence_chain_contained(struct dma_fence *fence)
{
	return dma_fence_chain_contained(fence);
}

#endif
