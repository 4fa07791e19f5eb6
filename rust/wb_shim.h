/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wb_shim.h - the one boundary between the C shim and the Rust module.
 *
 * Everything declared here is either implemented in wb_shim.c (prefix wb_)
 * and called from Rust, or implemented in Rust (prefix wbrs_) and called
 * from C.  The Rust side is generated from this file by bindgen at build
 * time (scripts/gen-shim-bindings.sh), and every wbrs_ definition in Rust is
 * checked against its typedef below, so the two languages cannot drift.
 *
 * The header deliberately uses only forward-declared structs and plain
 * scalars: C code owns every struct layout, Rust never reaches into one.
 *
 * Context rules (see Documentation/design.md):
 *  - wbrs_* functions are only ever called in process context.
 *  - bio completions (interrupt context) are handled entirely in C.
 */
#ifndef WB_SHIM_H
#define WB_SHIM_H

#include <linux/types.h>

struct bio;
struct block_device;
struct dm_dev;
struct dm_target;
struct file;
struct task_struct;
struct wb_io_batch;
struct wb_kobj;

/* ------------------------------------------------------------------ */
/* Rust entry points (implemented in Rust, called by C).               */
/* ------------------------------------------------------------------ */

/* Target kinds for the generic callbacks below. */
enum wb_target_kind {
	WB_TARGET_DEVICE = 0,	/* "writeboost" */
	WB_TARGET_MGR = 1,	/* "writeboost-mgr" */
};

/* status_type_t values, mirrored as plain ints. */
enum wb_status_type {
	WB_STATUS_INFO = 0,
	WB_STATUS_TABLE = 1,
	WB_STATUS_IMA = 2,
};

/* Values returned by wbrs_map_fn (mirror DM_MAPIO_*). */
enum wb_map_result {
	WB_MAP_SUBMITTED = 0,
	WB_MAP_REMAPPED = 1,
	WB_MAP_KILL = 4,
};

typedef int wbrs_ctr_fn(int kind, struct dm_target *ti, unsigned int argc,
			char **argv);
typedef void wbrs_dtr_fn(int kind, struct dm_target *ti);
typedef int wbrs_map_fn(int kind, struct dm_target *ti, struct bio *bio);
typedef void wbrs_status_fn(int kind, struct dm_target *ti, int type,
			    char *result, unsigned int maxlen);
typedef int wbrs_message_fn(int kind, struct dm_target *ti, unsigned int argc,
			    char **argv, char *result, unsigned int maxlen);
typedef void wbrs_postsuspend_fn(int kind, struct dm_target *ti);
/* 0, or a negative errno that aborts the resume (the device stays
 * suspended with the new table; a later resume calls it again). */
typedef int wbrs_preresume_fn(int kind, struct dm_target *ti);
typedef struct dm_dev *wbrs_backing_fn(struct dm_target *ti);
typedef int wbrs_thread_fn(void *data);
/* Kinds for sysfs directories. */
enum wb_sysfs_kind {
	WB_SYSFS_DEVICE = 0,	/* /sys/module/dm_writeboost/devices/<id> */
	WB_SYSFS_CACHE = 1,	/* /sys/module/dm_writeboost/caches/<id>  */
};
typedef long wbrs_sysfs_show_fn(int kind, unsigned int id, const char *attr,
				char *buf);
typedef long wbrs_sysfs_store_fn(int kind, unsigned int id, const char *attr,
				 const char *buf, unsigned long len);

wbrs_ctr_fn wbrs_ctr;
wbrs_dtr_fn wbrs_dtr;
wbrs_map_fn wbrs_map;
wbrs_status_fn wbrs_status;
wbrs_message_fn wbrs_message;
wbrs_postsuspend_fn wbrs_postsuspend;
wbrs_preresume_fn wbrs_preresume;
wbrs_backing_fn wbrs_backing;
wbrs_sysfs_show_fn wbrs_sysfs_show;
wbrs_sysfs_store_fn wbrs_sysfs_store;

/* ------------------------------------------------------------------ */
/* C services (implemented in wb_shim.c, called by Rust).              */
/* ------------------------------------------------------------------ */

/* Module-level: register both targets and the sysfs roots. */
int wb_shim_register(void);
void wb_shim_unregister(void);
/* Pin/unpin the module while a cache or device needs it to stay loaded. */
bool wb_module_get(void);
void wb_module_put(void);

/* dm_target */
void wb_ti_set_error(struct dm_target *ti, const char *msg);
void *wb_ti_private(struct dm_target *ti);
void wb_ti_set_private(struct dm_target *ti, void *p);
u64 wb_ti_begin(struct dm_target *ti);
u64 wb_ti_len(struct dm_target *ti);
/* Identity of the mapped device the target's table belongs to. */
const void *wb_ti_md(struct dm_target *ti);
/* "maj:min" dev_t of the mapped device, and its name. */
u32 wb_ti_md_devt(struct dm_target *ti);
const void *wb_ti_table(struct dm_target *ti);
/* Device target set-up: flush/discard support, per-bio data, max I/O size. */
int wb_ti_setup_device(struct dm_target *ti, u32 max_io_sectors);
/* Manager target set-up: flushes and discards are accepted and completed. */
void wb_ti_setup_mgr(struct dm_target *ti);
int wb_get_device(struct dm_target *ti, const char *path, struct dm_dev **out);
void wb_put_device(struct dm_target *ti, struct dm_dev *dev);
struct block_device *wb_dm_dev_bdev(struct dm_dev *dev);

/* Block devices */
u64 wb_bdev_sectors(struct block_device *bdev);
u32 wb_bdev_devt(struct block_device *bdev);
/* Open a block device by path (exclusively if holder != NULL).  Returns
 * NULL and sets *err on failure. */
struct file *wb_bdev_open_path(const char *path, void *holder, int *err);
/* Open a block device by dev_t, shared (no holder). */
struct file *wb_bdev_open_devt(u32 devt, void *holder, int *err);
void wb_bdev_close(struct file *f);
struct block_device *wb_file_bdev(struct file *f);
int wb_bdev_flush(struct block_device *bdev);
/* Milliseconds the device has been busy since boot (io_ticks). */
u64 wb_bdev_io_ticks_ms(struct block_device *bdev);
/* The device's logical block size in bytes (512, or 4096 for a 4Kn disk). */
u32 wb_bdev_logical_block_size(struct block_device *bdev);
/* Whether the current task has a signal pending. */
bool wb_signal_pending(void);
/* Whether the current task is being killed (SIGKILL, or a fatal signal
 * it does not handle). */
bool wb_fatal_signal_pending(void);
/* A name of the disk behind bdev that is the same across boots (see
 * Documentation/on-disk-format.md, "Backing identity"), NUL-terminated in
 * buf (len bytes).  Returns its length or a negative errno. */
int wb_bdev_identity(struct block_device *bdev, char *buf, u32 len);

/* bio */
enum wb_bio_op {
	WB_BIO_READ = 0,
	WB_BIO_WRITE = 1,
	WB_BIO_FLUSH = 2,	/* empty REQ_PREFLUSH */
	WB_BIO_DISCARD = 3,
	WB_BIO_OTHER = 4,	/* write-zeroes, secure erase, ... */
};
int wb_bio_op(struct bio *bio);
bool wb_bio_preflush(struct bio *bio);
bool wb_bio_fua(struct bio *bio);
u64 wb_bio_sector(struct bio *bio);
u32 wb_bio_sectors(struct bio *bio);
void wb_bio_remap(struct bio *bio, struct block_device *bdev, u64 sector);
void wb_bio_endio(struct bio *bio, int err);
void wb_bio_accept_partial(struct bio *bio, u32 sectors);
/* Which of a target's duplicated bios this is (dm_bio_get_target_bio_nr):
 * 0 or 1 for the two clones of an empty flush. */
u32 wb_bio_target_nr(struct bio *bio);
/* Copy the bio's payload into (write) or out of (read) a kernel buffer. */
void wb_bio_copy_to_buf(struct bio *bio, void *buf);
void wb_bio_copy_from_buf(struct bio *bio, const void *buf);
/* Per-bio data: an optional in-flight counter decremented at completion. */
void wb_bio_set_inflight(struct bio *bio, int *counter);
/* Direct writes in flight (per RAM buffer): end_io counts the bio down,
 * wakes waiters at 0 and sets the sticky failure flag on an error. */
struct wb_waitcount;
struct wb_dq;
/* Words of a direct write's ticket kept in its per-bio data. */
enum wb_ticket { WB_TICKET_WORDS = 5 };
/* Marks a remapped bio as a direct write: end_io counts it down in w and
 * queues it on dq (ticket: WB_TICKET_WORDS words, kept for the thread). */
void wb_bio_set_direct(struct bio *bio, struct wb_waitcount *w,
		       struct wb_dq *dq, const u32 *ticket);
/* The ticket of a direct write taken from its queue, and its completion
 * status (0 or a negative errno). */
int wb_bio_direct_ticket(struct bio *bio, u32 *ticket);
struct wb_dq *wb_dq_new(void);
void wb_dq_free(struct wb_dq *dq);
/* Waits at most ms for completed direct writes (or kthread_should_stop)
 * and takes them all: a bi_next chain in completion order, or NULL. End
 * each with wb_bio_endio. */
struct bio *wb_dq_take(struct wb_dq *dq, u32 ms);
/* Large tables (the index): vmalloc'd with __GFP_RETRY_MAYFAIL |
 * __GFP_NOWARN, so that a lack of memory fails the allocation (NULL)
 * instead of invoking the OOM killer; freed with wb_vfree. */
void *wb_vmalloc_mayfail(size_t bytes);
void wb_vfree(void *p);
/* Bytes of memory available without swapping (MemAvailable). */
u64 wb_mem_available_bytes(void);
struct wb_waitcount *wb_waitcount_new(void);
void wb_waitcount_free(struct wb_waitcount *w);
void wb_waitcount_inc(struct wb_waitcount *w);
int wb_waitcount_read(struct wb_waitcount *w);
/* Waits at most ms for the count to reach 0; true if it did. */
bool wb_waitcount_wait(struct wb_waitcount *w, u32 ms);
bool wb_waitcount_failed(struct wb_waitcount *w);
/* Hold a bio on a singly linked list (uses bi_next). */
void wb_bio_set_next(struct bio *bio, struct bio *next);
struct bio *wb_bio_next(struct bio *bio);

/* Synchronous and batched I/O through dm-io (kmalloc'd or vmalloc'd buf). */
enum wb_io_flags {
	WB_IO_READ = 0,
	WB_IO_WRITE = 1,
	WB_IO_FUA = 2,		/* with WB_IO_WRITE */
	WB_IO_PREFLUSH = 4,	/* with WB_IO_WRITE */
};
int wb_io_sync(struct block_device *bdev, u64 sector, u64 nr_sectors,
	       void *buf, int flags);
struct wb_io_batch *wb_io_batch_alloc(void);
void wb_io_batch_free(struct wb_io_batch *b);
int wb_io_batch_add(struct wb_io_batch *b, struct block_device *bdev,
		    u64 sector, u64 nr_sectors, void *buf, int flags);
/* Wait for every I/O added since the last wait; 0 or the first error. */
int wb_io_batch_wait(struct wb_io_batch *b);

/* Threads and time */
struct task_struct *wb_kthread_run(wbrs_thread_fn *fn, void *data,
				   const char *name, int *err);
int wb_kthread_stop(struct task_struct *t);
bool wb_kthread_should_stop(void);
/* memalloc_noio_save/restore: allocations in the scope never start I/O. */
unsigned int wb_noio_save(void);
void wb_noio_restore(unsigned int flags);
void wb_msleep(u32 ms);
u64 wb_now_ms(void);
u64 wb_real_seconds(void);
u64 wb_random_u64(void);

/* Checksums: raw CRC32C update (no pre/post inversion). */
u32 wb_crc32c(u32 state, const void *data, unsigned long len);
/* Measures both CRC32C implementations, keeps the faster: 1 = tables. */
int wb_crc32c_pick(u64 *accel_ns, u64 *tables_ns);
/* xxh64 (seed 0) of the concatenation of four byte ranges. */
u64 wb_xxh64_4(const void *a, unsigned long a_len, const void *b, unsigned long b_len,
	       const void *c, unsigned long c_len, const void *d, unsigned long d_len);
/* Nanoseconds of the best of three xxh64 runs over 64 KiB (for the log). */
u64 wb_xxh64_time(void);

/* sysfs: kobjects hold only (kind, id); attributes call wbrs_sysfs_*. */
struct wb_kobj *wb_sysfs_add(int kind, unsigned int id,
			     struct block_device *link, int *err);
void wb_sysfs_del(struct wb_kobj *k);

#endif /* WB_SHIM_H */
