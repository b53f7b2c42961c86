/* SPDX-License-Identifier: MIT */
/* The in-process "sim" device: internal state shared by its files. */
#ifndef VFM_DEV_SIM_H
#define VFM_DEV_SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dev.h"
#include "stream.h"

#define VFM_SIM_REGS_SIZE 256u
#define VFM_SIM_SEGS_MAX 4096

struct vfm_sim_save {
	bool active;
	bool hdr_sent, regs_sent, end_sent, eof;
	uint64_t *unsent; /* initial image pages not yet sent */
	uint64_t unsent_count;
	uint64_t init_cursor; /* page index: unsent bits below are 0 */
	uint64_t *dirty; /* sent, then written */
	uint64_t dirty_count;
	uint64_t dirty_cursor;
	uint64_t unsent_zero, dirty_zero; /* of those, pages in sim->zmap */
	uint16_t format; /* of this stream, fixed at its start */
	uint64_t records; /* REGS + DATA + ZERO records emitted */
	uint64_t pos; /* stream bytes emitted */
	/* A record that did not fit the caller's room. */
	uint8_t *pend;
	uint32_t pend_len, pend_off;
	/* Migration buffer ring (segments handed out oldest first). */
	uint64_t head, tail;
	uint64_t seg_off[VFM_SIM_SEGS_MAX], seg_len[VFM_SIM_SEGS_MAX];
	unsigned int seg_first, seg_n;
};

struct vfm_sim_load {
	bool active, failed, hdr_ok, end_ok;
	uint8_t *mem; /* shadow memory, applied on RESUMING->STOP */
	uint8_t regs[VFM_SIM_REGS_SIZE];
	uint64_t *got; /* pages received */
	uint64_t *zmap; /* received pages that are all zeros */
	uint16_t format; /* of the stream's header */
	uint64_t got_count;
	bool got_regs;
	uint64_t pos; /* stream bytes consumed */
	uint64_t records;
	/* Parser. */
	uint8_t hbuf[VFM_STREAM_HDR_LEN];
	uint32_t hlen; /* bytes of hbuf filled (header or record hdr) */
	bool in_payload;
	struct vfm_rec rec;
	uint64_t rec_start; /* stream position of the record header */
	uint32_t paid; /* payload bytes consumed */
	uint32_t crc;
	uint8_t endbuf[VFM_REC_END_LEN];
	char why[256];
};

struct vfm_sim {
	struct vfm_dev dev;
	pthread_mutex_t lock; /* protects everything below */
	uint32_t state;
	uint64_t size, pages;
	uint64_t dirty_rate; /* bytes/s dirtied by the workload */
	uint64_t seed;
	uint8_t *mem;
	/* Pages known to hold only zeros: the zero pages of a sparse state,
	 * pages zeroed by a write, pages that arrived as zeros. A page that
	 * is zero but not marked travels as DATA: correct, only larger. */
	uint64_t *zmap;
	unsigned int zero_pct; /* zero=N: N% of pages start as zeros */
	uint32_t formats; /* stream formats it loads and produces (bit n) */
	uint16_t format; /* the format the next saving stream produces */
	uint8_t *spare; /* replaced memory, reused as the next shadow */
	uint8_t regs[VFM_SIM_REGS_SIZE];
	struct vfm_desc desc;
	char params_text[VFMIG_PARAMS_MAX];
	bool no_precopy; /* precopy=off: no PRE_COPY states */
	bool no_buf; /* mmap=off: read()/write() only, as a driver without
		      * the vfmig buffer */
	uint8_t *buf; /* the migration buffer */
	size_t buf_size;
	struct vfm_sim_save sv;
	struct vfm_sim_load ld;
	uint64_t rng;
	/* Workload thread. */
	pthread_t thread;
	bool thread_started, stop_thread;
	pthread_cond_t cond; /* wakes the workload on stop */
};

static inline struct vfm_sim *to_sim(struct vfm_dev *d)
{
	return (struct vfm_sim *)d;
}

static inline bool vfm_bit_test(const uint64_t *m, uint64_t i)
{
	return m[i / 64] >> (i % 64) & 1;
}

static inline void vfm_bit_set(uint64_t *m, uint64_t i)
{
	m[i / 64] |= 1ull << (i % 64);
}

static inline void vfm_bit_clear(uint64_t *m, uint64_t i)
{
	m[i / 64] &= ~(1ull << (i % 64));
}

bool vfm_sim_running(uint32_t state);
/* Whether @len bytes at @p are all zero. */
bool vfm_sim_is_zero(const uint8_t *p, size_t len);
/* A write into device memory, as a VM's access through the region would:
 * dirties the pages it touches (tests use it for exact dirty checks). */
int vfm_sim_poke(struct vfm_dev *d, uint64_t off, const void *buf, size_t len);

/* dev_sim_save.c; *_locked: the caller holds sim->lock. */
int vfm_sim_save_start_locked(struct vfm_sim *s);
void vfm_sim_save_end_locked(struct vfm_sim *s);
int vfm_sim_save_gen_locked(struct vfm_sim *s, uint8_t *out, size_t room,
			    size_t *got);
int vfm_sim_precopy_info(struct vfm_dev *d, uint64_t *initial, uint64_t *dirty);
int vfm_sim_data_size(struct vfm_dev *d, uint64_t *bytes);
int vfm_sim_save_next(struct vfm_dev *d, uint64_t max, struct vfm_dev_seg *seg);
int vfm_sim_save_release(struct vfm_dev *d, const struct vfm_dev_seg *seg);
ssize_t vfm_sim_read(struct vfm_dev *d, void *buf, size_t len);

/* dev_sim_load.c */
int vfm_sim_load_start_locked(struct vfm_sim *s);
void vfm_sim_load_end_locked(struct vfm_sim *s);
int vfm_sim_load_finish_locked(struct vfm_sim *s);
int vfm_sim_load_commit(struct vfm_dev *d, uint64_t off, uint64_t len);
ssize_t vfm_sim_write(struct vfm_dev *d, const void *buf, size_t len);
/* The reason the last load failed ("" if none). */
const char *vfm_sim_load_error(struct vfm_dev *d);

#endif
