/* SPDX-License-Identifier: MIT */
/*
 * Device descriptor: the compatibility identity of one migratable device,
 * as the kernel driver exposes it in sysfs (one value per file):
 *
 *   model               "vfmig-edu"            (1..63 printable, no blanks)
 *   version             "2.0.3"                (see vfm/version.h)
 *   version_compatible  "2.0.0-2.0.9"          (range list)
 *   features            "pre_copy p2p mmap"    (names, blank/comma separated)
 *   params/<name>       "64"                   (one value)
 *   allowed/<name>      "4096,8192" "1-16" "on,off" "off,1-16"
 *   stream_formats      "1,2"                  (optional: the migration
 *                       stream formats (uapi/vfmig.h) the device produces
 *                       and loads; absent means "1", as older drivers)
 *
 * Names ([A-Za-z0-9_], 1..31 bytes) are params and features; values are
 * 1..63 bytes of [A-Za-z0-9_.:+-]. An allowed item is either a value or a
 * decimal range lo-hi (u64). A value matches an item if it is equal, or if
 * both are decimal numbers and numerically equal, or the item is a range
 * holding the number. Lists are separated by commas, blanks or newlines.
 * One trailing newline (as sysfs writes) is ignored everywhere.
 *
 * Every length is capped (VFM_DESC_*); exceeding one is an error naming the
 * file or field, never a truncation.
 */
#ifndef VFM_DESC_H
#define VFM_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vfm/err.h"
#include "vfm/version.h"

#define VFM_DESC_MODEL_MAX 63 /* bytes, without NUL */
#define VFM_DESC_NAME_MAX 31 /* param and feature names */
#define VFM_DESC_VALUE_MAX 63 /* one value */
#define VFM_DESC_FEATURES_MAX 32 /* features in one descriptor */
#define VFM_DESC_PARAMS_MAX 16 /* params, and separately allowed sets */
#define VFM_DESC_ALLOWED_MAX 16 /* items in one allowed list */
#define VFM_DESC_FILE_MAX 4096 /* bytes of one descriptor file */

struct vfm_allowed_item {
	bool is_range;
	uint64_t lo, hi; /* is_range: lo <= hi */
	char value[VFM_DESC_VALUE_MAX + 1]; /* !is_range */
};

struct vfm_allowed {
	char name[VFM_DESC_NAME_MAX + 1];
	unsigned int n;
	struct vfm_allowed_item item[VFM_DESC_ALLOWED_MAX];
};

struct vfm_param {
	char name[VFM_DESC_NAME_MAX + 1];
	char value[VFM_DESC_VALUE_MAX + 1];
};

struct vfm_desc {
	char model[VFM_DESC_MODEL_MAX + 1];
	bool has_version, has_compatible; /* set by the loaders/setters */
	struct vfm_version version;
	struct vfm_range_list compatible;
	unsigned int nfeatures;
	char features[VFM_DESC_FEATURES_MAX][VFM_DESC_NAME_MAX + 1];
	unsigned int nparams;
	struct vfm_param params[VFM_DESC_PARAMS_MAX];
	unsigned int nallowed;
	struct vfm_allowed allowed[VFM_DESC_PARAMS_MAX];
	/* Bit n: stream format n (1..VFM_DESC_STREAM_FORMAT_MAX); 0: not
	 * stated, which means format 1 only (vfm_desc_stream_formats()). */
	uint32_t stream_formats;
};

#define VFM_DESC_STREAM_FORMAT_MAX 31

/* An empty descriptor (no model: vfm_desc_check() fails until set). */
void vfm_desc_init(struct vfm_desc *d);

/* In-memory construction; strings are NUL-terminated text as in the files. */
int vfm_desc_set_model(struct vfm_desc *d, const char *model,
		       struct vfm_err *err);
int vfm_desc_set_version(struct vfm_desc *d, const char *version,
			 struct vfm_err *err);
int vfm_desc_set_compatible(struct vfm_desc *d, const char *ranges,
			    struct vfm_err *err);
/* Adds each name of a blank/comma separated list; duplicates are ignored. */
int vfm_desc_add_features(struct vfm_desc *d, const char *names,
			  struct vfm_err *err);
/* Adds or replaces. */
int vfm_desc_set_param(struct vfm_desc *d, const char *name, const char *value,
		       struct vfm_err *err);
/* Adds or replaces the allowed list of @name, e.g. "off,1-16". */
int vfm_desc_set_allowed(struct vfm_desc *d, const char *name, const char *list,
			 struct vfm_err *err);

/*
 * Apply the content of one descriptor file, named by its path relative to
 * the descriptor directory ("model", "features", "params/memory",
 * "allowed/rss"). @text need not be NUL-terminated. Errors name @relpath.
 * This is the text parser the directory loader and the fuzzer use.
 */
int vfm_desc_apply_file(struct vfm_desc *d, const char *relpath,
			const char *text, size_t len, struct vfm_err *err);

/* "1,2": the stream formats of the device (see stream_formats above). */
int vfm_desc_set_stream_formats(struct vfm_desc *d, const char *list,
				struct vfm_err *err);
/* The stated set, or format 1 alone when none is stated. */
uint32_t vfm_desc_stream_formats(const struct vfm_desc *d);
/* "1,2"; length or -ENOSPC. */
int vfm_stream_formats_format(uint32_t set, char *buf, size_t cap);
/* The stream format a source produces for a destination: the highest one
 * the source produces and the destination loads; 0 if there is none. */
unsigned int vfm_stream_format_pick(const struct vfm_desc *src,
				    const struct vfm_desc *dst);

/* Model, version and version_compatible are present (-EINVAL if not). */
int vfm_desc_check(const struct vfm_desc *d, struct vfm_err *err);

/* Look-ups; NULL / false when absent. */
const char *vfm_desc_param(const struct vfm_desc *d, const char *name);
const struct vfm_allowed *vfm_desc_allowed(const struct vfm_desc *d,
					   const char *name);
bool vfm_desc_has_feature(const struct vfm_desc *d, const char *name);
bool vfm_allowed_match(const struct vfm_allowed *a, const char *value);
/* "4096,8192" / "off,1-16"; length or -ENOSPC. */
int vfm_allowed_format(const struct vfm_allowed *a, char *buf, size_t cap);

/*
 * The directory form (the only file I/O in proto/). Loading reads model,
 * version, version_compatible, features (all required; features may be
 * empty), stream_formats (optional) and every regular file under params/
 * and allowed/ (both optional).
 * Saving creates @dir and its subfolders if needed and writes one file per
 * value, each ending in a newline.
 */
int vfm_desc_load_dir(const char *dir, struct vfm_desc *d, struct vfm_err *err);
int vfm_desc_save_dir(const struct vfm_desc *d, const char *dir,
		      struct vfm_err *err);

/*
 * The wire form: a nested TLV container (see vfm/wire.h), one TLV per
 * field, each value in its text form so the wire reuses the file parsers:
 *   VFM_DTLV_MODEL, VFM_DTLV_VERSION, VFM_DTLV_COMPATIBLE  (once, mandatory)
 *   VFM_DTLV_FEATURE "name"            (0..n)
 *   VFM_DTLV_PARAM   "name=value"      (0..n)
 *   VFM_DTLV_ALLOWED "name=item,item"  (0..n)
 */
enum vfm_desc_tlv {
	VFM_DTLV_MODEL = 1,
	VFM_DTLV_VERSION = 2,
	VFM_DTLV_COMPATIBLE = 3,
	VFM_DTLV_FEATURE = 4,
	VFM_DTLV_PARAM = 5,
	VFM_DTLV_ALLOWED = 6,
	/* Optional (a peer that predates it skips it): "1,2", only when the
	 * descriptor states its stream formats. */
	VFM_DTLV_STREAM_FORMATS = 7,
};

struct vfm_msgb;
struct vfm_tlv;
/* Append @d as one nested TLV of type @tlv_type (mandatory bit included). */
int vfm_desc_put(struct vfm_msgb *b, uint16_t tlv_type,
		 const struct vfm_desc *d);
/* Decode the nested container held by @t. */
int vfm_desc_get(const struct vfm_tlv *t, struct vfm_desc *d,
		 struct vfm_err *err);

#endif
