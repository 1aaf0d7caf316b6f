/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtcmu.h: the one header a handler sees.
 *
 * A handler is a shared object named handler_<subtype>.so that exports a
 * single symbol, handler_init, emitted by TCMU_HANDLER_REGISTER(). It
 * supplies storage primitives (read, write, flush, unmap); everything SCSI
 * (CDB parsing, range checks, sense data, emulated commands) is done by the
 * core before a handler is called, so handlers trust their arguments and
 * assert() the contract instead of re-checking it.
 *
 * ABI rules: struct tcmu_handler starts with abi_version and struct_size.
 * New fields are only ever appended; the loader copies min(struct_size,
 * sizeof) bytes and zero-fills the rest, so an older handler keeps working
 * and a handler built for a different abi_version is refused by name.
 *
 * Error convention: every function returns 0 (or a count) on success and a
 * negative errno on failure. The core turns errnos from I/O into SCSI sense:
 * -EIO -> MEDIUM ERROR, -ENOSPC -> SPACE ALLOCATION FAILED WRITE PROTECT,
 * -EROFS/-EPERM -> DATA PROTECT, -ENOMEM/-EAGAIN -> BUSY (initiator retries),
 * -ESHUTDOWN (the storage refuses this daemon: another takes over) -> NOT
 * READY, TARGET PORT IN UNAVAILABLE STATE (initiators use another path),
 * anything else -> HARDWARE ERROR.
 */
#ifndef LIBTCMU_H
#define LIBTCMU_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TCMU_HANDLER_ABI_VERSION 1

#define TCMU_EXPORT __attribute__((visibility("default")))

struct tcmu_device;	/* one backstore (configfs user_N/NAME), opaque */
struct tcmu_request;	/* one I/O the core asks a handler to do, opaque */

/* Flags for tcmu_handler.write. */
#define TCMU_WRITE_FUA (1u << 0)	/* data must be on stable storage before completion */

/*
 * Which fields of a running device a reconfiguration changes. The
 * kernel (RECONFIG netlink event) and D-Bus ChangeMedium both end here.
 */
#define TCMU_CHANGE_SIZE	(1u << 0)
#define TCMU_CHANGE_CONFIG	(1u << 1)
#define TCMU_CHANGE_WRITE_CACHE	(1u << 2)

struct tcmu_device_change {
	uint32_t what;		/* TCMU_CHANGE_* bits */
	uint64_t size;		/* new size in bytes (TCMU_CHANGE_SIZE) */
	const char *config;	/* new handler config string (TCMU_CHANGE_CONFIG) */
	bool write_cache;	/* new write cache state (TCMU_CHANGE_WRITE_CACHE) */
};

/*
 * Asymmetric logical unit access (SPC-4 5.16) for storage that several
 * daemons on several hosts serve as one logical unit (gateways): each
 * daemon's target ports are one target port group, and the storage decides
 * which group is active (e.g. the holder of its exclusive lock). A handler
 * opts in with tcmu_device_set_port_group() and get_port_groups; the core
 * then answers REPORT TARGET PORT GROUPS from get_port_groups, advertises
 * asymmetric access in INQUIRY, names the group (as target port group and
 * as relative target port) in VPD page 83h, and answers the commands that
 * need the medium with NOT READY (04h/0Ah transitioning, 0Bh standby, 0Ch
 * unavailable) while this daemon's group is not active. The kernel passes
 * those commands to the daemon only when the device's attribute
 * alua_support is 0.
 */
enum tcmu_port_state {
	TCMU_PORT_ACTIVE_OPTIMIZED = 0x0,
	TCMU_PORT_STANDBY = 0x2,
	TCMU_PORT_UNAVAILABLE = 0x3,
	TCMU_PORT_TRANSITIONING = 0xf,
};

struct tcmu_port_group {
	uint16_t id;		/* target port group, 1 to 65535 */
	uint8_t state;		/* enum tcmu_port_state */
};

struct tcmu_handler {
	uint32_t abi_version;	/* set by TCMU_HANDLER_REGISTER */
	uint32_t struct_size;	/* set by TCMU_HANDLER_REGISTER */

	/* Matches the "<subtype>/" prefix of a device's dev_config. Required. */
	const char *subtype;
	/* One line for listings. */
	const char *name;
	/* Config string grammar in prose, shown by `targetcli help create`. */
	const char *config_description;

	/* Optional: called once after dlopen / before dlclose. */
	int (*load)(void);
	void (*unload)(void);

	/*
	 * Optional. Checks a config string (the handler's part, after the
	 * subtype and any ";option=value;" prefix) without opening anything.
	 * Returns 0 when usable; otherwise -errno and a malloc'd, human
	 * readable reason in *ret_reason (the caller frees it). Runs on a
	 * thread of the daemon's own, possibly beside other checks and the
	 * handler's devices, so it may wait for a server (keep it within
	 * seconds: targetcli gives up after 25) but must be thread-safe.
	 */
	int (*check_config)(const char *config, char **ret_reason);

	/*
	 * Required. Opens the device's storage. The device's name, config
	 * string, size and block size are available through the accessors
	 * below. Returns 0 or -errno; on failure the handler has released
	 * everything it took and has logged why.
	 */
	int (*open)(struct tcmu_device *dev);
	/*
	 * Required. Releases what open took. No request is in flight. Usually
	 * called on the thread that detaches; when requests outlived the
	 * detach's wait (30 s), on the device's ring thread after the last
	 * completed.
	 */
	void (*close)(struct tcmu_device *dev);
	/*
	 * Optional. The kernel removed the device for good (not a daemon
	 * shutdown). Called after close, with the same accessors valid, to
	 * release storage that only the device owned (alloc's memory).
	 */
	void (*remove)(struct tcmu_device *dev);

	/*
	 * I/O. offset and length are in bytes, inside the device, and length
	 * equals the total size of iov. Return 0 when the handler has taken
	 * the request: it then calls tcmu_request_complete() exactly once,
	 * from any thread, possibly before returning. Return -errno when the
	 * request was not taken; the core completes it with that error.
	 */
	int (*read)(struct tcmu_device *dev, struct tcmu_request *req,
		    const struct iovec *iov, size_t iov_count,
		    uint64_t offset, uint64_t length);			/* required */
	int (*write)(struct tcmu_device *dev, struct tcmu_request *req,
		     const struct iovec *iov, size_t iov_count,
		     uint64_t offset, uint64_t length, uint32_t flags);	/* required */
	/* Makes every completed write durable. Required. */
	int (*flush)(struct tcmu_device *dev, struct tcmu_request *req);
	/*
	 * Optional: deallocates a range; later reads of it return zeros.
	 * Without it the device does not advertise thin provisioning.
	 */
	int (*unmap)(struct tcmu_device *dev, struct tcmu_request *req,
		     uint64_t offset, uint64_t length);

	/*
	 * Optional: applies a change to an open device. Returns 0 or -errno
	 * (the change is then refused and nothing changed). Without it only
	 * changes that leave the values as they are are accepted, plus write
	 * cache changes, which the core handles itself (turning the cache off,
	 * it flushes first). Called on the daemon's main thread, or on the
	 * ring thread for a write cache change an initiator makes (MODE SELECT).
	 */
	int (*reconfigure)(struct tcmu_device *dev,
			   const struct tcmu_device_change *change);

	/*
	 * Optional, for GET LBA STATUS: whether the bytes at offset are
	 * mapped (hold data) or deallocated (read as zeros after unmap), and
	 * in *ret_length how many bytes from offset, at least 1 and at most
	 * length, share that state. Synchronous and quick (metadata only):
	 * it runs on the ring's thread. Returns 0 or -errno. Without it (and
	 * without query_lba_status) every block is reported mapped. Storage
	 * that must be asked over the network implements query_lba_status
	 * instead: a ring thread serves many devices, and a call that waits
	 * stalls all of them.
	 */
	int (*get_lba_status)(struct tcmu_device *dev, uint64_t offset, uint64_t length,
			      bool *ret_mapped, uint64_t *ret_length);

	/* TCMU_HANDLER_* facts about the storage, reported in VPD pages. */
	uint32_t flags;

	/*
	 * Asynchronous handlers (see tcmu_device_watch_fd()). Required once
	 * the handler watches a file descriptor: fd is ready for events
	 * (TCMU_FD_* bits; an error or hang-up on fd reports every event
	 * watched, so that the handler's read or write meets it). Runs on the
	 * device's ring thread; the requests completed inside it reach the
	 * kernel together, with one notification, when it returns.
	 */
	void (*fd_ready)(struct tcmu_device *dev, int fd, uint32_t events);
	/*
	 * Optional: called on the ring thread after each batch of commands
	 * the core handed to this device, after each fd_ready (a completion
	 * may start the next step of a command, as the write of COMPARE AND
	 * WRITE) and after every other call the core makes there (the next
	 * step of a long command, an EXTENDED COPY's read or write for
	 * another device, the flush when the write cache goes off), so that
	 * the handler submits what it queued in one go (io_uring_submit) or
	 * changes what it watches: a request queued in any call is submitted
	 * by the batch_done that follows it.
	 */
	void (*batch_done)(struct tcmu_device *dev);

	/*
	 * Optional, since LIBTCMU_1.2: COMPARE AND WRITE, atomic against every
	 * writer of the storage (not only this daemon's commands). Compares
	 * length bytes at offset with compare_iov and, if equal, writes
	 * write_iov there (flags: TCMU_WRITE_FUA); each iov array sums to
	 * length. Complete with 0 (written), tcmu_request_complete_miscompare()
	 * (nothing written), or -errno. Return -EOPNOTSUPP without taking the
	 * request to let the core do it its own way (read, compare, write under
	 * the device's write gate: atomic only against this daemon). The core
	 * holds that gate around this call too, so that this daemon's own
	 * writes to the range are ordered with it.
	 */
	int (*compare_and_write)(struct tcmu_device *dev, struct tcmu_request *req,
				 const struct iovec *compare_iov, size_t compare_count,
				 const struct iovec *write_iov, size_t write_count,
				 uint64_t offset, uint64_t length, uint32_t flags);
	/*
	 * Optional, since LIBTCMU_1.2: asymmetric access for storage that
	 * several daemons serve as one logical unit (see tcmu_port_group
	 * below). The logical unit's target port groups and their states as
	 * the storage records them, so that every daemon answers alike: fills
	 * at most max groups and returns how many (0 to max), or -errno (the
	 * command then gets NOT READY, transitioning). Runs on the ring thread
	 * for REPORT TARGET PORT GROUPS, which initiators send every few
	 * seconds per path; it may ask the storage, bounded in time, and may
	 * update this daemon's own state (tcmu_device_set_port_state).
	 */
	int (*get_port_groups)(struct tcmu_device *dev, struct tcmu_port_group *groups,
			       size_t max);
	/*
	 * Optional, since LIBTCMU_1.2: SET TARGET PORT GROUPS (explicit
	 * asymmetric access) asks this daemon's group to enter state
	 * (TCMU_PORT_ACTIVE_OPTIMIZED: take the storage over; TCMU_PORT_STANDBY:
	 * give it up). Same contract as flush: 0 and tcmu_request_complete()
	 * once, or -errno without taking the request. Without it the core
	 * advertises implicit asymmetric access only and refuses the command.
	 */
	int (*set_port_state)(struct tcmu_device *dev, struct tcmu_request *req, uint8_t state);
	/*
	 * Optional, since LIBTCMU_1.3: get_lba_status answered later, for
	 * storage whose allocation map must be asked for (a cluster, a
	 * server), so that no ring thread waits for it. The same question:
	 * whether the bytes at offset are mapped, and how many bytes from
	 * offset, at least 1 and at most length, share that state. Same
	 * contract as read: return 0 when the request is taken and then call
	 * tcmu_request_complete_lba_status() with the answer, or
	 * tcmu_request_complete() with -errno, exactly once, from any thread,
	 * possibly before returning; return -errno when it was not taken. One
	 * GET LBA STATUS command asks again from where an answer ended, one
	 * query at a time, until it has enough extents. Used in place of
	 * get_lba_status when a handler has both.
	 */
	int (*query_lba_status)(struct tcmu_device *dev, struct tcmu_request *req,
				uint64_t offset, uint64_t length);
};

/* Flags for tcmu_handler.flags. */
#define TCMU_HANDLER_NON_ROTATING (1u << 0)	/* no seek penalty: memory, flash */
/*
 * Since LIBTCMU_1.2. The handler's read, write, flush or unmap may block
 * (a synchronous network call, a disk that stalls): each of its devices
 * then gets a ring thread of its own, named "tcmu-dev-<uio minor>" (top
 * -H, ps -L), instead of a share of the workers that serve the other
 * devices, so that a call that blocks stalls only that device. Everything
 * else is as for other handlers: its callbacks, fd_ready and batch_done
 * run on that one thread, never concurrently. It costs a thread per
 * device; a handler that can complete asynchronously (tcmu_device_watch_fd)
 * should do that instead.
 */
#define TCMU_HANDLER_BLOCKING (1u << 1)

/*
 * Emits the handler's only exported symbol. The handler variable must not
 * be const: the macro stamps the ABI version and size into it.
 */
#define TCMU_HANDLER_REGISTER(handler)						\
	TCMU_EXPORT const struct tcmu_handler *handler_init(void);		\
	TCMU_EXPORT const struct tcmu_handler *handler_init(void)		\
	{									\
		(handler).abi_version = TCMU_HANDLER_ABI_VERSION;		\
		(handler).struct_size = sizeof(handler);			\
		return &(handler);						\
	}

/* Completes a request taken by read/write/flush/unmap: 0 or -errno. */
void tcmu_request_complete(struct tcmu_request *req, int result);
/*
 * Completes a compare_and_write whose byte at offset (from the command's
 * first byte, less than its length) differed: MISCOMPARE with that offset
 * in the sense's INFORMATION field. Since LIBTCMU_1.2.
 */
void tcmu_request_complete_miscompare(struct tcmu_request *req, uint64_t offset);
/*
 * Completes a query_lba_status: the bytes from its offset are mapped (or
 * deallocated) for length bytes (at least 1, at most the length asked;
 * anything else is taken as 1 byte mapped). Since LIBTCMU_1.3.
 */
void tcmu_request_complete_lba_status(struct tcmu_request *req, bool mapped, uint64_t length);

/*
 * Asynchronous completion without a thread per device: the device's ring
 * thread waits for the handler's file descriptors (an io_uring's or an
 * eventfd, a socket, a timerfd) next to the ring, and calls
 * tcmu_handler.fd_ready when one is ready. fd_ready and batch_done run on
 * that thread, never concurrently with each other or with the device's
 * read/write/flush/unmap calls made there.
 *
 * On detach (removal, shutdown) the core takes no new commands from the
 * ring, keeps serving the watched fds until every request in flight has
 * completed, then ends the watches, and only then calls close().
 */
#define TCMU_FD_READABLE (1u << 0)
#define TCMU_FD_WRITABLE (1u << 1)

/*
 * Has the ring thread of dev also wait for fd to become ready for events
 * (TCMU_FD_* bits, level-triggered) and then call handler->fd_ready on it.
 * Calling it again for the same fd changes the events; 0 pauses the watch.
 * Call it from open() (the watch starts when the device starts being
 * served) or on the ring thread (inside read/write/flush/unmap, fd_ready
 * or batch_done). A device may watch several fds. 0 or -errno: -EINVAL
 * for a bad fd or event, or a handler without fd_ready; -EPERM from
 * another thread.
 */
int tcmu_device_watch_fd(struct tcmu_device *dev, int fd, uint32_t events);
/*
 * Ends a watch; same threads as above. -ENOENT when fd is not watched.
 * Watches also end before close() is called.
 */
int tcmu_device_unwatch_fd(struct tcmu_device *dev, int fd);

/* Device accessors; valid from open until close returns. */
const char *tcmu_device_get_name(const struct tcmu_device *dev);
const char *tcmu_device_get_subtype(const struct tcmu_device *dev);
/* "user_<hba>/<name>": unique among the kernel's TCMU devices. */
const char *tcmu_device_get_backstore(const struct tcmu_device *dev);
/* The handler's part of the config string (after "<subtype>/" and options). */
const char *tcmu_device_get_config(const struct tcmu_device *dev);
uint64_t tcmu_device_get_size(const struct tcmu_device *dev);
uint32_t tcmu_device_get_block_size(const struct tcmu_device *dev);
bool tcmu_device_get_write_cache(const struct tcmu_device *dev);
void *tcmu_device_get_private(const struct tcmu_device *dev);
void tcmu_device_set_private(struct tcmu_device *dev, void *private_data);
/*
 * For a handler with unmap whose storage for this device cannot deallocate
 * (a file system without hole punching, a disk without discard): false
 * makes the device stop advertising thin provisioning (no UNMAP, WRITE SAME
 * writes its zeros). Call it from open() or reconfigure(); devices start
 * with true. Since LIBTCMU_1.1.
 */
void tcmu_device_set_unmap_supported(struct tcmu_device *dev, bool supported);
/*
 * A write-protected device answers every command that would change the
 * medium (WRITE*, WRITE SAME, UNMAP, COMPARE AND WRITE, WRITE AND VERIFY,
 * FORMAT UNIT) with DATA PROTECT, WRITE PROTECTED (27h/00h); an EXTENDED
 * COPY that would write it ends with COPY ABORTED, WRITE PROTECTED. MODE
 * SENSE sets the WP bit of the device-specific parameter. Reads and
 * SYNCHRONIZE CACHE work. Devices start writable. Callable from open() or
 * from any callback on the ring thread. Since LIBTCMU_1.2.
 */
void tcmu_device_set_write_protected(struct tcmu_device *dev, bool write_protected);
/*
 * Sets the unit serial number (VPD page 80h; page 83h's vendor-specific
 * and NAA designators are derived from it as from configfs's
 * vpd_unit_serial) in place of configfs's wwn/vpd_unit_serial, so that
 * every daemon serving the same storage gives the same identity: 1 to 254
 * printable ASCII characters, no space at either end. The NAA designator
 * takes the serial's hexadecimal digits, so a serial should have some.
 * Only from open(). Returns 0, -EINVAL (a serial outside that form, or a
 * call outside open()) or -ENOMEM. Since LIBTCMU_1.2.
 */
int tcmu_device_set_unit_serial(struct tcmu_device *dev, const char *serial);

/*
 * The target port group (1 to 65535) of this daemon's ports to the device,
 * for asymmetric access (see enum tcmu_port_state): the group every daemon
 * serving the storage knows this one by. Only from open(), by a handler
 * with get_port_groups. Returns 0 or -EINVAL. The device starts in
 * TCMU_PORT_STANDBY. Since LIBTCMU_1.2.
 */
int tcmu_device_set_port_group(struct tcmu_device *dev, uint16_t group);
/*
 * This daemon's group's state, as the handler learns it from the storage
 * (it took or lost the lock): the medium is served only while it is
 * TCMU_PORT_ACTIVE_OPTIMIZED. Any thread. Since LIBTCMU_1.2.
 */
void tcmu_device_set_port_state(struct tcmu_device *dev, enum tcmu_port_state state);

/*
 * What the storage behind a device is doing, for operators: tcmu-admin,
 * the D-Bus service and the metrics show it, and each change is logged
 * once. A device starts open. A handler that loses its storage (server
 * gone, client blocklisted) says so and says open again when it is back;
 * reason is a short phrase, or NULL. Any thread, from open() on.
 */
enum tcmu_device_state {
	TCMU_DEVICE_STATE_OPEN = 0,
	TCMU_DEVICE_STATE_RECONNECTING = 1,
	TCMU_DEVICE_STATE_BLOCKLISTED = 2,
	TCMU_DEVICE_STATE_FAILED = 3,
};

void tcmu_device_set_state(struct tcmu_device *dev, enum tcmu_device_state state,
			   const char *reason);

/*
 * Helpers for handlers whose storage is a file descriptor. Each moves
 * exactly length bytes between iov and the file at offset, resuming after
 * short transfers and EINTR; a read that meets the end of the file fills
 * the rest with zeros. 0 or -errno.
 */
int tcmu_fd_read(int fd, const struct iovec *iov, size_t iov_count, uint64_t offset,
		 uint64_t length);
int tcmu_fd_write(int fd, const struct iovec *iov, size_t iov_count, uint64_t offset,
		  uint64_t length);
/*
 * Whether offset holds data and for how many bytes (at most length) that
 * stays so, from SEEK_DATA/SEEK_HOLE; file systems without holes report
 * data throughout. 0 or -errno.
 */
int tcmu_fd_extent(int fd, uint64_t offset, uint64_t length, bool *ret_mapped,
		   uint64_t *ret_length);

/*
 * Logging. Levels as in tcmu.conf. The logger adds time, level, the
 * device ("subtype/name") and the newline, and preserves errno, so "%m"
 * works. Messages above the configured level cost one comparison.
 */
enum tcmu_log_level {
	TCMU_LOG_CRIT = 0,
	TCMU_LOG_ERROR = 1,
	TCMU_LOG_WARN = 2,
	TCMU_LOG_INFO = 3,
	TCMU_LOG_DEBUG = 4,
	TCMU_LOG_DEBUG_SCSI_CMD = 5,
};

extern int tcmu_log_level_current;

void tcmu_log_message(int level, const struct tcmu_device *dev,
		      const char *format, ...)
	__attribute__((format(printf, 3, 4)));

#define tcmu_log_at(level, dev, ...)						\
	do {									\
		if ((level) <= tcmu_log_level_current)				\
			tcmu_log_message((level), (dev), __VA_ARGS__);		\
	} while (0)

#define tcmu_dev_crit(dev, ...)  tcmu_log_at(TCMU_LOG_CRIT, dev, __VA_ARGS__)
#define tcmu_dev_err(dev, ...)   tcmu_log_at(TCMU_LOG_ERROR, dev, __VA_ARGS__)
#define tcmu_dev_warn(dev, ...)  tcmu_log_at(TCMU_LOG_WARN, dev, __VA_ARGS__)
#define tcmu_dev_info(dev, ...)  tcmu_log_at(TCMU_LOG_INFO, dev, __VA_ARGS__)
#define tcmu_dev_dbg(dev, ...)   tcmu_log_at(TCMU_LOG_DEBUG, dev, __VA_ARGS__)
#define tcmu_crit(...)  tcmu_dev_crit(NULL, __VA_ARGS__)
#define tcmu_err(...)   tcmu_dev_err(NULL, __VA_ARGS__)
#define tcmu_warn(...)  tcmu_dev_warn(NULL, __VA_ARGS__)
#define tcmu_info(...)  tcmu_dev_info(NULL, __VA_ARGS__)
#define tcmu_dbg(...)   tcmu_dev_dbg(NULL, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif
