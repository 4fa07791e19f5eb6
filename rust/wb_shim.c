// SPDX-License-Identifier: GPL-2.0
/*
 * wb_shim.c - what the 6.12 Rust `kernel` crate lacks for a device-mapper
 * target: both struct target_type, thin wrappers for inline functions and
 * macros (bio fields, dm_per_bio_data, dm-io, kthreads, sysfs), and every
 * piece of code that runs in interrupt context (bio and dm-io completion).
 *
 * No policy lives here: each function does one mechanical thing.  The cache
 * logic is in Rust (dm_writeboost.rs and its modules).
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/crc32.h>
#include <linux/crc32c.h>
#include <linux/delay.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/kobject.h>
#include <linux/kthread.h>
#include <linux/sched/mm.h>
#include <linux/module.h>
#include <linux/part_stat.h>
#include <linux/sched/signal.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/timekeeping.h>
#include <linux/vmalloc.h>
#include <linux/xxhash.h>

#include "wb_shim.h"

#define DM_MSG_PREFIX "writeboost"

static_assert(sizeof(atomic_t) == sizeof(int));

/* A count of direct writes in flight, with a wait queue woken when it
 * drops to 0 and a sticky failure flag (see wb_dev_end_io). */
struct wb_waitcount {
	atomic_t n;
	atomic_t failed;
	wait_queue_head_t wq;
};

/* Completed direct writes, handed from end_io (interrupt context) to
 * the cache's completion thread, which ends their tickets under the cache
 * lock and then ends the bios (a second end_io call, which passes). */
struct wb_dq {
	struct llist_head list;
	wait_queue_head_t wq;
};

/* Per-bio data of the device target: what end_io must count down. */
struct wb_pbd {
	atomic_t *inflight;		/* a read remapped to a cache slot */
	struct wb_waitcount *direct;	/* a direct write to the cache device */
	struct wb_dq *dq;		/* where the direct write goes when done */
	struct llist_node node;
	u32 ticket[WB_TICKET_WORDS];	/* the direct write's ticket (Rust's) */
	int status;			/* its completion status (an errno) */
};

/* ------------------------------------------------------------------ */
/* Targets                                                             */
/* ------------------------------------------------------------------ */

static int wb_dev_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	return wbrs_ctr(WB_TARGET_DEVICE, ti, argc, argv);
}

static void wb_dev_dtr(struct dm_target *ti)
{
	wbrs_dtr(WB_TARGET_DEVICE, ti);
}

static int wb_dev_map(struct dm_target *ti, struct bio *bio)
{
	struct wb_pbd *pbd = dm_per_bio_data(bio, sizeof(struct wb_pbd));

	pbd->inflight = NULL;
	pbd->direct = NULL;
	pbd->dq = NULL;
	return wbrs_map(WB_TARGET_DEVICE, ti, bio);
}

/* Interrupt context: only C here. */
static int wb_dev_end_io(struct dm_target *ti, struct bio *bio,
			 blk_status_t *error)
{
	struct wb_pbd *pbd = dm_per_bio_data(bio, sizeof(struct wb_pbd));
	struct wb_waitcount *w = pbd->direct;

	if (pbd->inflight)
		atomic_dec(pbd->inflight);
	if (w) {
		/* The failure is recorded before the count drops: a waiter
		 * that sees 0 sees it too. */
		if (*error)
			atomic_set(&w->failed, 1);
		if (atomic_dec_and_test(&w->n))
			wake_up_all(&w->wq);
		pbd->direct = NULL;
	}
	if (pbd->dq) {
		/* The bio is ended again by the completion thread; end_io then
		 * finds nothing to do. */
		struct wb_dq *dq = pbd->dq;

		pbd->dq = NULL;
		pbd->status = blk_status_to_errno(*error);
		llist_add(&pbd->node, &dq->list);
		wake_up(&dq->wq);
		return DM_ENDIO_INCOMPLETE;
	}
	return DM_ENDIO_DONE;
}

static void wb_dev_status(struct dm_target *ti, status_type_t type,
			  unsigned int status_flags, char *result,
			  unsigned int maxlen)
{
	wbrs_status(WB_TARGET_DEVICE, ti, (int)type, result, maxlen);
}

static int wb_dev_message(struct dm_target *ti, unsigned int argc, char **argv,
			  char *result, unsigned int maxlen)
{
	return wbrs_message(WB_TARGET_DEVICE, ti, argc, argv, result, maxlen);
}

static void wb_dev_postsuspend(struct dm_target *ti)
{
	wbrs_postsuspend(WB_TARGET_DEVICE, ti);
}

static int wb_dev_preresume(struct dm_target *ti)
{
	return wbrs_preresume(WB_TARGET_DEVICE, ti);
}

static int wb_dev_iterate_devices(struct dm_target *ti,
				  iterate_devices_callout_fn fn, void *data)
{
	struct dm_dev *dev = wbrs_backing(ti);

	if (!dev)
		return 0;
	return fn(ti, dev, 0, ti->len, data);
}

static void wb_dev_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	/* Sub-4 KiB writes are supported (per-sector dirty bits), but 4 KiB
	 * aligned I/O is what the cache stores most efficiently. */
	limits->io_min = max_t(unsigned int, limits->io_min, 512);
	limits->io_opt = max_t(unsigned int, limits->io_opt, 4096);
}

static struct target_type wb_device_target = {
	.name = "writeboost",
	.version = {1, 0, 0},
	.module = THIS_MODULE,
	.ctr = wb_dev_ctr,
	.dtr = wb_dev_dtr,
	.map = wb_dev_map,
	.end_io = wb_dev_end_io,
	.status = wb_dev_status,
	.message = wb_dev_message,
	.postsuspend = wb_dev_postsuspend,
	.preresume = wb_dev_preresume,
	.iterate_devices = wb_dev_iterate_devices,
	.io_hints = wb_dev_io_hints,
};

static int wb_mgr_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	return wbrs_ctr(WB_TARGET_MGR, ti, argc, argv);
}

static void wb_mgr_dtr(struct dm_target *ti)
{
	wbrs_dtr(WB_TARGET_MGR, ti);
}

static int wb_mgr_map(struct dm_target *ti, struct bio *bio)
{
	/* The manager is a control device: I/O to it moves no data. */
	if (bio_data_dir(bio) == READ && bio_has_data(bio))
		zero_fill_bio(bio);
	bio_endio(bio);
	return DM_MAPIO_SUBMITTED;
}

static void wb_mgr_status(struct dm_target *ti, status_type_t type,
			  unsigned int status_flags, char *result,
			  unsigned int maxlen)
{
	wbrs_status(WB_TARGET_MGR, ti, (int)type, result, maxlen);
}

static int wb_mgr_message(struct dm_target *ti, unsigned int argc, char **argv,
			  char *result, unsigned int maxlen)
{
	return wbrs_message(WB_TARGET_MGR, ti, argc, argv, result, maxlen);
}

static struct target_type wb_mgr_target = {
	.name = "writeboost-mgr",
	.version = {1, 0, 0},
	.module = THIS_MODULE,
	.ctr = wb_mgr_ctr,
	.dtr = wb_mgr_dtr,
	.map = wb_mgr_map,
	.status = wb_mgr_status,
	.message = wb_mgr_message,
};

/* ------------------------------------------------------------------ */
/* sysfs                                                               */
/* ------------------------------------------------------------------ */

static struct kobject *wb_sysfs_root[2];	/* devices, caches */
static struct dm_io_client *wb_io_client;

int wb_shim_register(void)
{
	int r;

	wb_io_client = dm_io_client_create();
	if (IS_ERR(wb_io_client)) {
		r = PTR_ERR(wb_io_client);
		goto out;
	}
	r = -ENOMEM;
	wb_sysfs_root[0] = kobject_create_and_add("devices", &THIS_MODULE->mkobj.kobj);
	if (!wb_sysfs_root[0])
		goto out_io;
	wb_sysfs_root[1] = kobject_create_and_add("caches", &THIS_MODULE->mkobj.kobj);
	if (!wb_sysfs_root[1])
		goto out_devices;
	r = dm_register_target(&wb_device_target);
	if (r)
		goto out_caches;
	r = dm_register_target(&wb_mgr_target);
	if (r)
		goto out_target;
	return 0;

out_target:
	dm_unregister_target(&wb_device_target);
out_caches:
	kobject_put(wb_sysfs_root[1]);
out_devices:
	kobject_put(wb_sysfs_root[0]);
out_io:
	dm_io_client_destroy(wb_io_client);
out:
	DMERR("registration failed: %d", r);
	return r;
}

void wb_shim_unregister(void)
{
	dm_unregister_target(&wb_mgr_target);
	dm_unregister_target(&wb_device_target);
	kobject_put(wb_sysfs_root[1]);
	kobject_put(wb_sysfs_root[0]);
	dm_io_client_destroy(wb_io_client);
}

bool wb_module_get(void)
{
	return try_module_get(THIS_MODULE);
}

void wb_module_put(void)
{
	module_put(THIS_MODULE);
}

struct wb_kobj {
	struct kobject kobj;
	int kind;
	unsigned int id;
	bool linked;
};

struct wb_attr {
	struct attribute attr;
};

static ssize_t wb_attr_show(struct kobject *kobj, struct attribute *attr,
			    char *buf)
{
	struct wb_kobj *k = container_of(kobj, struct wb_kobj, kobj);

	return wbrs_sysfs_show(k->kind, k->id, attr->name, buf);
}

static ssize_t wb_attr_store(struct kobject *kobj, struct attribute *attr,
			     const char *buf, size_t len)
{
	struct wb_kobj *k = container_of(kobj, struct wb_kobj, kobj);

	return wbrs_sysfs_store(k->kind, k->id, attr->name, buf, len);
}

static const struct sysfs_ops wb_sysfs_ops = {
	.show = wb_attr_show,
	.store = wb_attr_store,
};

#define WB_ATTR(n, m) static struct attribute wb_attr_##n = { .name = #n, .mode = m }

WB_ATTR(cache_id, 0444);
WB_ATTR(dev, 0444);
WB_ATTR(device_no, 0444);
WB_ATTR(migrate_threshold, 0644);
WB_ATTR(nr_dirty_caches, 0444);
WB_ATTR(writeback_error, 0444);
WB_ATTR(writeback_errors, 0444);

static struct attribute *wb_device_attrs[] = {
	&wb_attr_cache_id, &wb_attr_dev, &wb_attr_device_no,
	&wb_attr_migrate_threshold, &wb_attr_nr_dirty_caches,
	&wb_attr_writeback_error, &wb_attr_writeback_errors, NULL,
};
ATTRIBUTE_GROUPS(wb_device);

WB_ATTR(allow_migrate, 0644);
WB_ATTR(barrier_deadline_ms, 0644);
WB_ATTR(commit_super_block, 0644);
WB_ATTR(commit_super_block_interval, 0644);
WB_ATTR(flush_current_buffer, 0644);
WB_ATTR(flush_current_buffer_interval, 0644);
WB_ATTR(force_migrate, 0644);
WB_ATTR(idle_seal_ms, 0644);
WB_ATTR(index_bytes, 0444);
WB_ATTR(last_flushed_segment_id, 0444);
WB_ATTR(last_migrated_segment_id, 0444);
WB_ATTR(nr_max_batched_migration, 0644);
WB_ATTR(update_interval, 0644);
WB_ATTR(write_around_mode, 0644);

static struct attribute *wb_cache_attrs[] = {
	&wb_attr_allow_migrate, &wb_attr_barrier_deadline_ms,
	&wb_attr_write_around_mode,
	&wb_attr_commit_super_block, &wb_attr_commit_super_block_interval,
	&wb_attr_flush_current_buffer, &wb_attr_flush_current_buffer_interval,
	&wb_attr_force_migrate, &wb_attr_idle_seal_ms,
	&wb_attr_index_bytes,
	&wb_attr_last_flushed_segment_id,
	&wb_attr_last_migrated_segment_id, &wb_attr_nr_max_batched_migration,
	&wb_attr_update_interval, &wb_attr_nr_dirty_caches, NULL,
};
ATTRIBUTE_GROUPS(wb_cache);

static void wb_kobj_release(struct kobject *kobj)
{
	kfree(container_of(kobj, struct wb_kobj, kobj));
}

static const struct kobj_type wb_ktype[2] = {
	{ .sysfs_ops = &wb_sysfs_ops, .release = wb_kobj_release,
	  .default_groups = wb_device_groups },
	{ .sysfs_ops = &wb_sysfs_ops, .release = wb_kobj_release,
	  .default_groups = wb_cache_groups },
};

struct wb_kobj *wb_sysfs_add(int kind, unsigned int id,
			     struct block_device *link, int *err)
{
	struct wb_kobj *k;
	int r;

	if (kind != WB_SYSFS_DEVICE && kind != WB_SYSFS_CACHE) {
		*err = -EINVAL;
		return NULL;
	}
	k = kzalloc(sizeof(*k), GFP_KERNEL);
	if (!k) {
		*err = -ENOMEM;
		return NULL;
	}
	k->kind = kind;
	k->id = id;
	r = kobject_init_and_add(&k->kobj, &wb_ktype[kind], wb_sysfs_root[kind],
				 "%u", id);
	if (r) {
		kobject_put(&k->kobj);
		*err = r;
		return NULL;
	}
	if (link && link->bd_disk) {
		r = sysfs_create_link(&k->kobj, &disk_to_dev(link->bd_disk)->kobj,
				      "device");
		if (r) {
			kobject_put(&k->kobj);
			*err = r;
			return NULL;
		}
		k->linked = true;
	}
	kobject_uevent(&k->kobj, KOBJ_ADD);
	return k;
}

void wb_sysfs_del(struct wb_kobj *k)
{
	if (!k)
		return;
	kobject_uevent(&k->kobj, KOBJ_REMOVE);
	if (k->linked)
		sysfs_remove_link(&k->kobj, "device");
	kobject_del(&k->kobj);
	kobject_put(&k->kobj);
}

/* ------------------------------------------------------------------ */
/* dm_target                                                           */
/* ------------------------------------------------------------------ */

/*
 * DM keeps ti->error as a bare pointer and prints it after the constructor
 * returns, so a message built at run time needs storage that outlives the
 * call.  Messages are copied into a ring of static buffers: a slot is only
 * reused after WB_ERR_SLOTS later errors, long after DM has printed it.
 */
#define WB_ERR_SLOTS 32
#define WB_ERR_LEN 160	/* MSG_LEN in ffi.rs */
static char wb_err_ring[WB_ERR_SLOTS][WB_ERR_LEN];
static atomic_t wb_err_next = ATOMIC_INIT(0);

void wb_ti_set_error(struct dm_target *ti, const char *msg)
{
	unsigned int slot = (unsigned int)atomic_inc_return(&wb_err_next) % WB_ERR_SLOTS;

	strscpy(wb_err_ring[slot], msg, WB_ERR_LEN);
	ti->error = wb_err_ring[slot];
}

void *wb_ti_private(struct dm_target *ti)
{
	return ti->private;
}

void wb_ti_set_private(struct dm_target *ti, void *p)
{
	ti->private = p;
}

u64 wb_ti_begin(struct dm_target *ti)
{
	return ti->begin;
}

u64 wb_ti_len(struct dm_target *ti)
{
	return ti->len;
}

const void *wb_ti_md(struct dm_target *ti)
{
	return dm_table_get_md(ti->table);
}

const void *wb_ti_table(struct dm_target *ti)
{
	return ti->table;
}

u32 wb_ti_md_devt(struct dm_target *ti)
{
	return disk_devt(dm_disk(dm_table_get_md(ti->table)));
}

int wb_ti_setup_device(struct dm_target *ti, u32 max_io_sectors)
{
	/* Two clones of each empty flush: one for the cache, one for the
	 * backing device (see map() in device.rs). */
	ti->num_flush_bios = 2;
	ti->num_discard_bios = 1;
	ti->flush_supported = true;
	ti->discards_supported = true;
	ti->per_io_data_size = sizeof(struct wb_pbd);
	if (max_io_sectors)
		return dm_set_target_max_io_len(ti, max_io_sectors);
	return 0;
}

void wb_ti_setup_mgr(struct dm_target *ti)
{
	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->discards_supported = true;
}

int wb_get_device(struct dm_target *ti, const char *path, struct dm_dev **out)
{
	return dm_get_device(ti, path, dm_table_get_mode(ti->table), out);
}

void wb_put_device(struct dm_target *ti, struct dm_dev *dev)
{
	dm_put_device(ti, dev);
}

struct block_device *wb_dm_dev_bdev(struct dm_dev *dev)
{
	return dev->bdev;
}

/* ------------------------------------------------------------------ */
/* Block devices                                                       */
/* ------------------------------------------------------------------ */

u64 wb_bdev_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

u32 wb_bdev_devt(struct block_device *bdev)
{
	return bdev->bd_dev;
}

int wb_bdev_identity(struct block_device *bdev, char *buf, u32 len)
{
	struct gendisk *disk = bdev->bd_disk;
	struct mapped_device *md;
	int r;

	if (!len)
		return -EINVAL;
	/* A device-mapper device: its uuid, else its name (dm-N is not stable). */
	md = dm_get_md(bdev->bd_dev);
	if (md) {
		char *name = kmalloc(DM_NAME_LEN + DM_UUID_LEN, GFP_KERNEL);
		char *uuid = name + DM_NAME_LEN;

		if (!name) {
			dm_put(md);
			return -ENOMEM;
		}
		r = dm_copy_name_and_uuid(md, name, uuid);
		dm_put(md);
		if (!r)
			r = uuid[0] ? snprintf(buf, len, "dm-uuid:%s", uuid) :
				      snprintf(buf, len, "dm-name:%s", name);
		kfree(name);
		return r < 0 ? r : min_t(int, r, len - 1);
	}
	/* A driver that knows the disk's unique id (NAA, EUI-64, T10). */
	if (disk->fops->get_unique_id) {
		static const enum blk_unique_id types[] = { BLK_UID_NAA, BLK_UID_EUI64, BLK_UID_T10 };
		u8 id[16];
		int i;

		for (i = 0; i < ARRAY_SIZE(types); i++) {
			r = disk->fops->get_unique_id(disk, id, types[i]);
			if (r > 0 && r <= (int)sizeof(id)) {
				r = snprintf(buf, len, "uid:%d:%*phN:%u", types[i], r, id, bdev_partno(bdev));
				return min_t(int, r, len - 1);
			}
		}
	}
	r = snprintf(buf, len, "disk:%s:%u", disk->disk_name, bdev_partno(bdev));
	return min_t(int, r, len - 1);
}

struct file *wb_bdev_open_path(const char *path, void *holder, int *err)
{
	struct file *f = bdev_file_open_by_path(path,
			BLK_OPEN_READ | BLK_OPEN_WRITE, holder, NULL);

	if (IS_ERR(f)) {
		*err = PTR_ERR(f);
		return NULL;
	}
	return f;
}

struct file *wb_bdev_open_devt(u32 devt, void *holder, int *err)
{
	struct file *f = bdev_file_open_by_dev(devt,
			BLK_OPEN_READ | BLK_OPEN_WRITE, holder, NULL);

	if (IS_ERR(f)) {
		*err = PTR_ERR(f);
		return NULL;
	}
	return f;
}

void wb_bdev_close(struct file *f)
{
	bdev_fput(f);
}

struct block_device *wb_file_bdev(struct file *f)
{
	return file_bdev(f);
}

int wb_bdev_flush(struct block_device *bdev)
{
	return blkdev_issue_flush(bdev);
}

u64 wb_bdev_io_ticks_ms(struct block_device *bdev)
{
	/* The "time spent doing I/O" of /proc/diskstats (jiffies). */
	return jiffies_to_msecs(part_stat_read(bdev, io_ticks));
}

u32 wb_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

bool wb_signal_pending(void)
{
	return signal_pending(current);
}

bool wb_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

/* ------------------------------------------------------------------ */
/* bio                                                                 */
/* ------------------------------------------------------------------ */

int wb_bio_op(struct bio *bio)
{
	switch (bio_op(bio)) {
	case REQ_OP_READ:
		return WB_BIO_READ;
	case REQ_OP_WRITE:
		return bio_sectors(bio) ? WB_BIO_WRITE : WB_BIO_FLUSH;
	case REQ_OP_FLUSH:
		return WB_BIO_FLUSH;
	case REQ_OP_DISCARD:
		return WB_BIO_DISCARD;
	default:
		return WB_BIO_OTHER;
	}
}

bool wb_bio_preflush(struct bio *bio)
{
	return bio->bi_opf & REQ_PREFLUSH;
}

bool wb_bio_fua(struct bio *bio)
{
	return bio->bi_opf & REQ_FUA;
}

u64 wb_bio_sector(struct bio *bio)
{
	return bio->bi_iter.bi_sector;
}

u32 wb_bio_sectors(struct bio *bio)
{
	return bio_sectors(bio);
}

void wb_bio_remap(struct bio *bio, struct block_device *bdev, u64 sector)
{
	bio_set_dev(bio, bdev);
	bio->bi_iter.bi_sector = sector;
}

void wb_bio_endio(struct bio *bio, int err)
{
	bio->bi_status = errno_to_blk_status(err);
	bio_endio(bio);
}

void wb_bio_accept_partial(struct bio *bio, u32 sectors)
{
	if (sectors < bio_sectors(bio))
		dm_accept_partial_bio(bio, sectors);
}

u32 wb_bio_target_nr(struct bio *bio)
{
	return dm_bio_get_target_bio_nr(bio);
}

void wb_bio_copy_to_buf(struct bio *bio, void *buf)
{
	struct bio_vec bv;
	struct bvec_iter iter;
	char *p = buf;

	bio_for_each_segment(bv, bio, iter) {
		memcpy_from_bvec(p, &bv);
		p += bv.bv_len;
	}
}

void wb_bio_copy_from_buf(struct bio *bio, const void *buf)
{
	struct bio_vec bv;
	struct bvec_iter iter;
	const char *p = buf;

	bio_for_each_segment(bv, bio, iter) {
		memcpy_to_bvec(&bv, p);
		p += bv.bv_len;
	}
}

void wb_bio_set_inflight(struct bio *bio, int *counter)
{
	struct wb_pbd *pbd = dm_per_bio_data(bio, sizeof(struct wb_pbd));

	pbd->inflight = (atomic_t *)counter;
}

void wb_bio_set_direct(struct bio *bio, struct wb_waitcount *w,
		       struct wb_dq *dq, const u32 *ticket)
{
	struct wb_pbd *pbd = dm_per_bio_data(bio, sizeof(struct wb_pbd));

	pbd->direct = w;
	pbd->dq = dq;
	memcpy(pbd->ticket, ticket, sizeof(pbd->ticket));
	pbd->status = 0;
}

int wb_bio_direct_ticket(struct bio *bio, u32 *ticket)
{
	struct wb_pbd *pbd = dm_per_bio_data(bio, sizeof(struct wb_pbd));

	memcpy(ticket, pbd->ticket, sizeof(pbd->ticket));
	return pbd->status;
}

struct wb_dq *wb_dq_new(void)
{
	struct wb_dq *dq = kzalloc(sizeof(*dq), GFP_KERNEL);

	if (dq) {
		init_llist_head(&dq->list);
		init_waitqueue_head(&dq->wq);
	}
	return dq;
}

void wb_dq_free(struct wb_dq *dq)
{
	kfree(dq);
}

struct bio *wb_dq_take(struct wb_dq *dq, u32 ms)
{
	struct llist_node *n;
	struct bio *head = NULL;

	wait_event_interruptible_timeout(dq->wq, !llist_empty(&dq->list) ||
					 kthread_should_stop(),
					 msecs_to_jiffies(ms));
	/* llist_del_all gives the newest first: prepending restores the
	 * order of completion. */
	n = llist_del_all(&dq->list);
	while (n) {
		struct wb_pbd *pbd = llist_entry(n, struct wb_pbd, node);
		struct bio *bio = dm_bio_from_per_bio_data(pbd, sizeof(struct wb_pbd));

		n = n->next;
		bio->bi_next = head;
		head = bio;
	}
	return head;
}

void *wb_vmalloc_mayfail(size_t bytes)
{
	return __vmalloc(bytes, GFP_KERNEL | __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
}

void wb_vfree(void *p)
{
	vfree(p);
}

u64 wb_mem_available_bytes(void)
{
	return (u64)si_mem_available() << PAGE_SHIFT;
}

struct wb_waitcount *wb_waitcount_new(void)
{
	struct wb_waitcount *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (w)
		init_waitqueue_head(&w->wq);
	return w;
}

void wb_waitcount_free(struct wb_waitcount *w)
{
	kfree(w);
}

void wb_waitcount_inc(struct wb_waitcount *w)
{
	atomic_inc(&w->n);
}

int wb_waitcount_read(struct wb_waitcount *w)
{
	return atomic_read(&w->n);
}

bool wb_waitcount_wait(struct wb_waitcount *w, u32 ms)
{
	return wait_event_timeout(w->wq, atomic_read(&w->n) == 0,
				  msecs_to_jiffies(ms)) > 0;
}

bool wb_waitcount_failed(struct wb_waitcount *w)
{
	return atomic_read(&w->failed) != 0;
}

void wb_bio_set_next(struct bio *bio, struct bio *next)
{
	bio->bi_next = next;
}

struct bio *wb_bio_next(struct bio *bio)
{
	return bio->bi_next;
}

/* ------------------------------------------------------------------ */
/* dm-io                                                               */
/* ------------------------------------------------------------------ */

static void wb_fill_io_req(struct dm_io_request *req, void *buf, int flags)
{
	req->bi_opf = (flags & WB_IO_WRITE) ? REQ_OP_WRITE : REQ_OP_READ;
	if (flags & WB_IO_WRITE) {
		req->bi_opf |= REQ_SYNC;
		if (flags & WB_IO_FUA)
			req->bi_opf |= REQ_FUA;
		if (flags & WB_IO_PREFLUSH)
			req->bi_opf |= REQ_PREFLUSH;
	}
	if (is_vmalloc_addr(buf)) {
		req->mem.type = DM_IO_VMA;
		req->mem.ptr.vma = buf;
	} else {
		req->mem.type = DM_IO_KMEM;
		req->mem.ptr.addr = buf;
	}
	req->mem.offset = 0;
	req->client = wb_io_client;
}

int wb_io_sync(struct block_device *bdev, u64 sector, u64 nr_sectors,
	       void *buf, int flags)
{
	struct dm_io_region region = {
		.bdev = bdev, .sector = sector, .count = nr_sectors,
	};
	struct dm_io_request req = { };
	unsigned long error_bits = 0;
	int r;

	wb_fill_io_req(&req, buf, flags);
	r = dm_io(&req, 1, &region, &error_bits, IOPRIO_DEFAULT);
	if (!r && error_bits)
		r = -EIO;
	return r;
}

struct wb_io_batch {
	atomic_t pending;	/* I/Os in flight, plus one held by the waiter */
	atomic_t error;		/* first error, as a negative errno */
	struct completion done;
};

struct wb_io_batch *wb_io_batch_alloc(void)
{
	struct wb_io_batch *b = kzalloc(sizeof(*b), GFP_KERNEL);

	if (!b)
		return NULL;
	atomic_set(&b->pending, 1);
	init_completion(&b->done);
	return b;
}

void wb_io_batch_free(struct wb_io_batch *b)
{
	kfree(b);
}

/* Interrupt context. */
static void wb_io_batch_endio(unsigned long error, void *context)
{
	struct wb_io_batch *b = context;

	if (error)
		atomic_cmpxchg(&b->error, 0, -EIO);
	if (atomic_dec_and_test(&b->pending))
		complete(&b->done);
}

int wb_io_batch_add(struct wb_io_batch *b, struct block_device *bdev,
		    u64 sector, u64 nr_sectors, void *buf, int flags)
{
	struct dm_io_region region = {
		.bdev = bdev, .sector = sector, .count = nr_sectors,
	};
	struct dm_io_request req = { };
	int r;

	wb_fill_io_req(&req, buf, flags);
	req.notify.fn = wb_io_batch_endio;
	req.notify.context = b;
	atomic_inc(&b->pending);
	r = dm_io(&req, 1, &region, NULL, IOPRIO_DEFAULT);
	if (r) {
		/* dm_io failed before submitting: undo our count. */
		atomic_cmpxchg(&b->error, 0, r);
		if (atomic_dec_and_test(&b->pending))
			complete(&b->done);
	}
	return r;
}

int wb_io_batch_wait(struct wb_io_batch *b)
{
	int r;

	if (!atomic_dec_and_test(&b->pending))
		wait_for_completion(&b->done);
	r = atomic_xchg(&b->error, 0);
	atomic_set(&b->pending, 1);
	reinit_completion(&b->done);
	return r;
}

/* ------------------------------------------------------------------ */
/* Threads, time, checksums                                            */
/* ------------------------------------------------------------------ */

struct task_struct *wb_kthread_run(wbrs_thread_fn *fn, void *data,
				   const char *name, int *err)
{
	struct task_struct *t = kthread_run(fn, data, "%s", name);

	if (IS_ERR(t)) {
		*err = PTR_ERR(t);
		return NULL;
	}
	get_task_struct(t);
	return t;
}

int wb_kthread_stop(struct task_struct *t)
{
	return kthread_stop_put(t);
}

bool wb_kthread_should_stop(void)
{
	return kthread_should_stop();
}

unsigned int wb_noio_save(void)
{
	return memalloc_noio_save();
}

void wb_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

void wb_msleep(u32 ms)
{
	msleep(ms);
}

u64 wb_now_ms(void)
{
	return ktime_to_ms(ktime_get());
}

u64 wb_real_seconds(void)
{
	return ktime_get_real_seconds();
}

u64 wb_random_u64(void)
{
	return get_random_u64();
}

/*
 * CRC32C of segment data: the crypto API's implementation (crc32c(), the
 * CPU's instructions where there are some) or the generic table-driven
 * one (__crc32c_le()). Both compute the same function; which one is faster
 * depends on the machine (under an emulator the instruction can be many
 * times slower than the tables), so wb_crc32c_pick() measures both once at
 * module load and keeps the faster, as the kernel's raid6 and xor code do.
 */
static bool wb_crc_generic;

static u32 wb_crc_accel(u32 state, const void *data, unsigned long len)
{
	return crc32c(state, data, len);
}

static u32 wb_crc_tables(u32 state, const void *data, unsigned long len)
{
	return __crc32c_le(state, data, len);
}

u32 wb_crc32c(u32 state, const void *data, unsigned long len)
{
	if (READ_ONCE(wb_crc_generic))
		return wb_crc_tables(state, data, len);
	return wb_crc_accel(state, data, len);
}

static u64 wb_crc_time(u32 (*f)(u32, const void *, unsigned long), const void *buf, unsigned long len, u32 *out)
{
	u64 best = U64_MAX;
	int i;

	for (i = 0; i < 3; i++) {
		u64 t = ktime_get_ns();

		*out = f(~0u, buf, len);
		t = ktime_get_ns() - t;
		if (t < best)
			best = t;
	}
	return best;
}

int wb_crc32c_pick(u64 *accel_ns, u64 *tables_ns)
{
	const unsigned long len = 64 * 1024;
	u32 a, b;
	u8 *buf = vmalloc(len);

	if (!buf)
		return -ENOMEM;
	get_random_bytes(buf, len);
	*accel_ns = wb_crc_time(wb_crc_accel, buf, len, &a);
	*tables_ns = wb_crc_time(wb_crc_tables, buf, len, &b);
	vfree(buf);
	/* Never trade a correct result for speed. */
	WRITE_ONCE(wb_crc_generic, a == b && *tables_ns < *accel_ns);
	return wb_crc_generic ? 1 : 0;
}

u64 wb_xxh64_4(const void *a, unsigned long a_len, const void *b, unsigned long b_len,
	       const void *c, unsigned long c_len, const void *d, unsigned long d_len)
{
	struct xxh64_state st;

	xxh64_reset(&st, 0);
	xxh64_update(&st, a, a_len);
	xxh64_update(&st, b, b_len);
	xxh64_update(&st, c, c_len);
	xxh64_update(&st, d, d_len);
	return xxh64_digest(&st);
}

u64 wb_xxh64_time(void)
{
	const unsigned long len = 64 * 1024;
	u64 best = U64_MAX, sink = 0;
	u8 *buf = vmalloc(len);
	int i;

	if (!buf)
		return 0;
	get_random_bytes(buf, len);
	for (i = 0; i < 3; i++) {
		u64 t = ktime_get_ns();

		sink ^= xxh64(buf, len, 0);
		t = ktime_get_ns() - t;
		if (t < best)
			best = t;
	}
	vfree(buf);
	/* Keeps the calls from being optimised away. */
	return best | (sink & 0);
}
