// SPDX-License-Identifier: MIT
/* Error sentences for callers of proto/. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>

#include "internal.h"

void vfm_err_clear(struct vfm_err *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

int vfm_err_set(struct vfm_err *err, int ret, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return ret;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return ret;
}

void vfm_err_prefix(struct vfm_err *err, const char *prefix)
{
	char tmp[VFM_ERR_MSG_MAX];
	size_t p, m;

	if (!err)
		return;
	p = strnlen(prefix, sizeof(tmp) - 3);
	m = strnlen(err->msg, sizeof(err->msg));
	if (p + 2 + m >= sizeof(tmp))
		m = sizeof(tmp) - 1 - p - 2;
	memcpy(tmp, prefix, p);
	memcpy(tmp + p, ": ", 2);
	memcpy(tmp + p + 2, err->msg, m);
	tmp[p + 2 + m] = '\0';
	memcpy(err->msg, tmp, sizeof(tmp));
}

int vfm_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n = strlen(src);

	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(dst, src, n + 1);
	return 0;
}
