/* SPDX-License-Identifier: MIT */
/*
 * Error detail for proto/: every function returns 0 or a negative errno and,
 * when given a struct vfm_err, fills it with a sentence for the operator.
 * The library never prints; the caller decides where the sentence goes.
 */
#ifndef VFM_ERR_H
#define VFM_ERR_H

#include <stddef.h>

#define VFM_ERR_MSG_MAX 256

struct vfm_err {
	char msg[VFM_ERR_MSG_MAX]; /* "" when no error was recorded */
	unsigned int col; /* 1-based column of a text error, 0 if n/a */
	size_t off; /* byte offset of a wire error, 0 if n/a */
};

/* Clear @err (may be NULL). */
void vfm_err_clear(struct vfm_err *err);

#endif
