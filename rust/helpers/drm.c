// SPDX-License-Identifier: GPL-2.0

#include <drm/drm_drv.h>
#include <drm/drm_gem.h>
#include <drm/drm_gem_shmem_helper.h>
#include <drm/drm_syncobj.h>
#include <drm/drm_vma_manager.h>
#include <linux/pagemap.h>
#include <linux/rcupdate_wait.h>
#include <linux/shmem_fs.h>

#ifdef CONFIG_RUST_DRM

bool rust_helper_drm_dev_is_unplugged(struct drm_device *dev)
{
	return drm_dev_is_unplugged(dev);
}

void rust_helper_drm_gem_object_get(struct drm_gem_object *obj)
{
	drm_gem_object_get(obj);
}

void rust_helper_drm_gem_object_put(struct drm_gem_object *obj)
{
	drm_gem_object_put(obj);
}

__u64 rust_helper_drm_vma_node_offset_addr(struct drm_vma_offset_node *node)
{
	return drm_vma_node_offset_addr(node);
}

/*
 * The object functions of shmem-backed GEM objects, so that Rust can build its
 * own drm_gem_object_funcs table around them.
 */
void rust_helper_drm_gem_shmem_object_print_info(struct drm_printer *p, unsigned int indent,
						 const struct drm_gem_object *obj)
{
	drm_gem_shmem_object_print_info(p, indent, obj);
}

int rust_helper_drm_gem_shmem_object_pin(struct drm_gem_object *obj)
{
	return drm_gem_shmem_object_pin(obj);
}

void rust_helper_drm_gem_shmem_object_unpin(struct drm_gem_object *obj)
{
	drm_gem_shmem_object_unpin(obj);
}

struct sg_table *rust_helper_drm_gem_shmem_object_get_sg_table(struct drm_gem_object *obj)
{
	return drm_gem_shmem_object_get_sg_table(obj);
}

int rust_helper_drm_gem_shmem_object_vmap(struct drm_gem_object *obj, struct iosys_map *map)
{
	return drm_gem_shmem_object_vmap(obj, map);
}

void rust_helper_drm_gem_shmem_object_vunmap(struct drm_gem_object *obj, struct iosys_map *map)
{
	drm_gem_shmem_object_vunmap(obj, map);
}

int rust_helper_drm_gem_shmem_object_mmap(struct drm_gem_object *obj, struct vm_area_struct *vma)
{
	return drm_gem_shmem_object_mmap(obj, vma);
}

void rust_helper_drm_syncobj_get(struct drm_syncobj *obj)
{
	drm_syncobj_get(obj);
}

void rust_helper_drm_syncobj_put(struct drm_syncobj *obj)
{
	drm_syncobj_put(obj);
}

struct dma_fence *rust_helper_drm_syncobj_fence_get(struct drm_syncobj *syncobj)
{
	return drm_syncobj_fence_get(syncobj);
}

struct page *rust_helper_sg_page(struct scatterlist *sg)
{
	return sg_page(sg);
}

struct page *rust_helper_nth_page(struct page *page, unsigned long n)
{
	return nth_page(page, n);
}

/* Whether @page is a page of system RAM that the CPU may map. */
bool rust_helper_drm_page_is_ram(struct page *page)
{
	return page && pfn_valid(page_to_pfn(page)) && !is_zone_device_page(page);
}

/* How many pages of the shmem file of GEM object @obj are resident (in its page cache). */
unsigned long rust_helper_drm_gem_shmem_resident_pages(struct drm_gem_object *obj)
{
	return READ_ONCE(obj->filp->f_mapping->nrpages);
}

/*
 * How many of pages [@first, @first + @count) of the shmem file of GEM object
 * @obj are resident (in its page cache), walked as shmem_partial_swap_usage()
 * walks it for the swapped ones. A large folio counts for its pages in the
 * range. @count must not be zero.
 */
unsigned long rust_helper_drm_gem_shmem_resident_in(struct drm_gem_object *obj,
						    unsigned long first, unsigned long count)
{
	XA_STATE(xas, &obj->filp->f_mapping->i_pages, first);
	unsigned long last = first + count - 1, resident = 0;
	struct folio *folio;

	rcu_read_lock();
	xas_for_each(&xas, folio, last) {
		unsigned long nr, start;

		if (xas_retry(&xas, folio))
			continue;
		if (!xa_is_value(folio)) {
			nr = 1UL << xas_get_order(&xas);
			start = round_down(xas.xa_index, nr);
			resident += min(start + nr - 1, last) - max(start, first) + 1;
		}
		if (xas.xa_index >= last)
			break;
		if (need_resched()) {
			xas_pause(&xas);
			cond_resched_rcu();
		}
	}
	rcu_read_unlock();
	return resident;
}

/*
 * Reads page @index of the shmem file of GEM object @obj in (allocating it, or
 * swapping it in) and returns it with a reference on its folio, or an ERR_PTR.
 * Only that page: drm_gem_shmem_get_pages() makes the whole object resident,
 * which a driver binding a window of a large object must not do.
 */
struct page *rust_helper_drm_gem_shmem_read_page(struct drm_gem_object *obj, unsigned long index)
{
	struct address_space *mapping = obj->filp->f_mapping;
	struct folio *folio;

	/* Windows may be millions of pages long. */
	cond_resched();
	folio = shmem_read_folio_gfp(mapping, index, mapping_gfp_mask(mapping));
	if (IS_ERR(folio))
		return ERR_CAST(folio);
	return folio_file_page(folio, index);
}

/*
 * Takes another reference on the folio of @page, a page that
 * drm_gem_shmem_read_page() returned and whose reference is still held.
 */
void rust_helper_drm_gem_shmem_get_page(struct page *page)
{
	folio_get(page_folio(page));
}

/*
 * Drops a reference drm_gem_shmem_read_page() or drm_gem_shmem_get_page()
 * took, marking the page dirty (a device may have written it) and accessed, as
 * drm_gem_put_pages() does.
 */
void rust_helper_drm_gem_shmem_put_page(struct page *page)
{
	struct folio *folio = page_folio(page);

	folio_mark_dirty(folio);
	folio_mark_accessed(folio);
	folio_put(folio);
}

#endif /* CONFIG_RUST_DRM */
