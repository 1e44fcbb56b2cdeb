// SPDX-License-Identifier: GPL-2.0

#include <linux/highmem.h>
#include <linux/hmm.h>
#include <linux/kthread.h>
#include <linux/lockdep.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/sched/mm.h>
#include <linux/uaccess.h>
#include <linux/vmstat.h>

void rust_helper_mmgrab(struct mm_struct *mm)
{
	mmgrab(mm);
}

void rust_helper_mmdrop(struct mm_struct *mm)
{
	mmdrop(mm);
}

void rust_helper_mmget(struct mm_struct *mm)
{
	mmget(mm);
}

bool rust_helper_mmget_not_zero(struct mm_struct *mm)
{
	return mmget_not_zero(mm);
}

/* The current task's address space, NULL for a kernel thread that uses none. */
struct mm_struct *rust_helper_current_mm(void)
{
	return current->mm;
}

/* Whether the current task is reclaiming memory. */
bool rust_helper_current_in_reclaim(void)
{
	return current->flags & PF_MEMALLOC;
}

void rust_helper_mmap_read_lock(struct mm_struct *mm)
{
	mmap_read_lock(mm);
}

void rust_helper_mmap_read_unlock(struct mm_struct *mm)
{
	mmap_read_unlock(mm);
}

int rust_helper_rwsem_is_locked(struct rw_semaphore *sem)
{
	return rwsem_is_locked(sem);
}

unsigned long rust_helper_TASK_SIZE_MAX(void)
{
	return TASK_SIZE_MAX;
}

unsigned long rust_helper_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

void *rust_helper_kmap_local_pfn(unsigned long pfn)
{
	return kmap_local_pfn(pfn);
}

unsigned long rust_helper_global_node_page_state(enum node_stat_item item)
{
	return global_node_page_state(item);
}

#ifdef CONFIG_MMU_NOTIFIER

bool rust_helper_mmu_interval_read_retry(struct mmu_interval_notifier *interval_sub,
					 unsigned long seq)
{
	return mmu_interval_read_retry(interval_sub, seq);
}

bool rust_helper_mmu_interval_check_retry(struct mmu_interval_notifier *interval_sub,
					  unsigned long seq)
{
	return mmu_interval_check_retry(interval_sub, seq);
}

void rust_helper_mmu_interval_set_seq(struct mmu_interval_notifier *interval_sub,
				      unsigned long cur_seq)
{
	mmu_interval_set_seq(interval_sub, cur_seq);
}

bool rust_helper_mmu_notifier_range_blockable(const struct mmu_notifier_range *range)
{
	return mmu_notifier_range_blockable(range);
}

#endif

#ifdef CONFIG_HMM_MIRROR

unsigned int rust_helper_hmm_pfn_to_map_order(unsigned long hmm_pfn)
{
	return hmm_pfn_to_map_order(hmm_pfn);
}

struct page *rust_helper_hmm_pfn_to_page(unsigned long hmm_pfn)
{
	return hmm_pfn_to_page(hmm_pfn);
}

#endif

/*
 * Teach lockdep that @lock may be taken under reclaim, as a notifier lock is
 * when an invalidation comes from the shrinker: an allocation that can enter
 * reclaim while @lock is held is then reported at once, not when reclaim
 * happens to run into it.
 */
void rust_helper_mutex_prime_reclaim(struct mutex *lock)
{
	fs_reclaim_acquire(GFP_KERNEL);
	might_lock(lock);
	fs_reclaim_release(GFP_KERNEL);
}

struct page *rust_helper_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

struct folio *rust_helper_page_folio(struct page *page)
{
	return page_folio(page);
}

unsigned long rust_helper_folio_pfn(struct folio *folio)
{
	return folio_pfn(folio);
}

long rust_helper_folio_nr_pages(struct folio *folio)
{
	return folio_nr_pages(folio);
}

bool rust_helper_folio_test_dirty(struct folio *folio)
{
	return folio_test_dirty(folio);
}

#ifdef CONFIG_LOCKDEP
/*
 * One lockdep map for every range lock (see rust/kernel/mm/range_lock.rs):
 * it stands for "this task holds a range", so that lockdep learns the order
 * of ranges against the mmap lock, the notifier locks, reclaim and fence
 * signalling, as __mmu_notifier_invalidate_range_start_map does for
 * invalidations.
 */
static struct lock_class_key range_lock_key;
static struct lockdep_map range_lock_map =
	STATIC_LOCKDEP_MAP_INIT("range_lock", &range_lock_key);

bool rust_helper_range_lock_map_acquire(void)
{
	/* Ranges of several locks may be held at once: the first one counts. */
	if (lock_is_held(&range_lock_map))
		return false;
	lock_map_acquire(&range_lock_map);
	return true;
}

void rust_helper_range_lock_map_acquire_try(void)
{
	lock_map_acquire_try(&range_lock_map);
}

void rust_helper_range_lock_map_release(void)
{
	lock_map_release(&range_lock_map);
}
#else
bool rust_helper_range_lock_map_acquire(void)
{
	return false;
}

void rust_helper_range_lock_map_acquire_try(void)
{
}

void rust_helper_range_lock_map_release(void)
{
}
#endif

/* One 64-bit store: a waiter never sees half of a user fence. */
int rust_helper_put_user_u64(u64 value, u64 __user *addr)
{
	return put_user(value, addr);
}

/* One 64-bit load. */
int rust_helper_get_user_u64(u64 *value, const u64 __user *addr)
{
	return get_user(*value, addr);
}

bool rust_helper_access_ok_user(const void __user *addr, unsigned long size)
{
	return access_ok(addr, size);
}

bool rust_helper_current_is_kthread(void)
{
	return current->flags & PF_KTHREAD;
}

/* The memory cgroup of @mm's owner, with a reference; NULL without memory cgroups. */
struct mem_cgroup *rust_helper_mem_cgroup_of_mm(struct mm_struct *mm)
{
	return get_mem_cgroup_from_mm(mm);
}

void rust_helper_mem_cgroup_put(struct mem_cgroup *memcg)
{
	mem_cgroup_put(memcg);
}

struct mem_cgroup *rust_helper_set_active_memcg(struct mem_cgroup *memcg)
{
	return set_active_memcg(memcg);
}

void rust_helper_mmap_write_lock(struct mm_struct *mm)
{
	mmap_write_lock(mm);
}

void rust_helper_mmap_write_unlock(struct mm_struct *mm)
{
	mmap_write_unlock(mm);
}
