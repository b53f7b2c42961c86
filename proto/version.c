// SPDX-License-Identifier: MIT
/* Dotted numeric versions and version range lists. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vfm/version.h"
#include "internal.h"

/* What stands at @pos, for error sentences. */
static const char *found(const char *s, size_t len, size_t pos, char *buf,
			 size_t cap)
{
	unsigned char c;

	if (pos >= len)
		return "the end of the text";
	c = (unsigned char)s[pos];
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, cap, "'%c'", c);
	else
		snprintf(buf, cap, "byte 0x%02x", c);
	return buf;
}

static int syntax(struct vfm_err *err, const char *s, size_t len, size_t pos,
		  const char *expected)
{
	char b[16];

	if (err)
		err->col = (unsigned int)pos + 1;
	return vfm_err_set(err, -EINVAL, "column %zu: expected %s, found %s",
			   pos + 1, expected, found(s, len, pos, b, sizeof(b)));
}

/* Parse a version starting at *pos; stop at the first byte that cannot
 * continue it. */
static int version_at(const char *s, size_t len, size_t *pos,
		      struct vfm_version *v, struct vfm_err *err)
{
	size_t p = *pos;

	memset(v, 0, sizeof(*v));
	for (;;) {
		uint64_t n = 0;
		size_t start = p;

		if (v->nparts == VFM_VERSION_PARTS_MAX)
			return syntax(err, s, len, p - 1,
				      "at most 4 version components");
		if (p >= len || !vfm_isdigit(s[p]))
			return syntax(err, s, len, p,
				      v->nparts ? "a digit after '.'" :
						  "a version (digits)");
		while (p < len && vfm_isdigit(s[p])) {
			n = n * 10 + (uint64_t)(s[p] - '0');
			if (n > UINT32_MAX) {
				if (err)
					err->col = (unsigned int)start + 1;
				return vfm_err_set(
					err, -ERANGE,
					"column %zu: version component is above 4294967295",
					start + 1);
			}
			p++;
		}
		v->part[v->nparts++] = (uint32_t)n;
		if (p >= len || s[p] != '.')
			break;
		p++;
	}
	*pos = p;
	return 0;
}

int vfm_version_parse(const char *s, size_t len, struct vfm_version *v,
		      struct vfm_err *err)
{
	size_t pos = 0;
	int ret;

	ret = version_at(s, len, &pos, v, err);
	if (ret)
		return ret;
	if (pos != len)
		return syntax(err, s, len, pos,
			      "'.' or the end of the version");
	return 0;
}

int vfm_version_cmp(const struct vfm_version *a, const struct vfm_version *b)
{
	for (int i = 0; i < VFM_VERSION_PARTS_MAX; i++) {
		uint32_t x = i < a->nparts ? a->part[i] : 0;
		uint32_t y = i < b->nparts ? b->part[i] : 0;

		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

int vfm_version_format(const struct vfm_version *v, char *buf, size_t cap)
{
	size_t n = 0;

	if (cap)
		buf[0] = '\0';
	for (int i = 0; i < v->nparts && i < VFM_VERSION_PARTS_MAX; i++) {
		int w = snprintf(buf + n, cap > n ? cap - n : 0, "%s%u",
				 i ? "." : "", v->part[i]);

		if (w < 0 || (size_t)w >= (cap > n ? cap - n : 0))
			return -ENOSPC;
		n += (size_t)w;
	}
	return (int)n;
}

static size_t skip_blanks(const char *s, size_t len, size_t p)
{
	while (p < len && (s[p] == ' ' || s[p] == '\t'))
		p++;
	return p;
}

static int range_at(const char *s, size_t len, size_t *pos, struct vfm_range *r,
		    struct vfm_err *err)
{
	size_t p = *pos, lo_pos = p;
	int ret;

	memset(r, 0, sizeof(*r));
	if (p < len && s[p] == '-') {
		p++;
		ret = version_at(s, len, &p, &r->hi, err);
		if (ret)
			return ret;
		r->has_hi = true;
		*pos = p;
		return 0;
	}
	if (p >= len || !vfm_isdigit(s[p]))
		return syntax(err, s, len, p, "a version or '-version'");
	ret = version_at(s, len, &p, &r->lo, err);
	if (ret)
		return ret;
	r->has_lo = true;
	if (p < len && s[p] == '-') {
		p++;
		if (p < len && vfm_isdigit(s[p])) {
			size_t hi_pos = p;

			ret = version_at(s, len, &p, &r->hi, err);
			if (ret)
				return ret;
			r->has_hi = true;
			if (vfm_version_cmp(&r->lo, &r->hi) > 0) {
				if (err)
					err->col = (unsigned int)hi_pos + 1;
				return vfm_err_set(
					err, -EINVAL,
					"column %zu: range end %.*s is below its start %.*s",
					hi_pos + 1, (int)(p - hi_pos),
					s + hi_pos, (int)(hi_pos - 1 - lo_pos),
					s + lo_pos);
			}
		}
	} else {
		r->hi = r->lo; /* a single version */
		r->has_hi = true;
	}
	*pos = p;
	return 0;
}

int vfm_ranges_parse(const char *s, size_t len, struct vfm_range_list *rl,
		     struct vfm_err *err)
{
	size_t p = 0;
	int ret;

	memset(rl, 0, sizeof(*rl));
	for (;;) {
		p = skip_blanks(s, len, p);
		if (rl->n == VFM_RANGES_MAX) {
			if (err)
				err->col = (unsigned int)p + 1;
			return vfm_err_set(err, -E2BIG,
					   "column %zu: more than %d ranges",
					   p + 1, VFM_RANGES_MAX);
		}
		ret = range_at(s, len, &p, &rl->r[rl->n], err);
		if (ret)
			return ret;
		rl->n++;
		p = skip_blanks(s, len, p);
		if (p == len)
			return 0;
		if (s[p] != ',')
			return syntax(err, s, len, p,
				      "',' or the end of the range list");
		p++;
	}
}

bool vfm_ranges_contain(const struct vfm_range_list *rl,
			const struct vfm_version *v)
{
	for (unsigned int i = 0; i < rl->n && i < VFM_RANGES_MAX; i++) {
		const struct vfm_range *r = &rl->r[i];

		if (r->has_lo && vfm_version_cmp(v, &r->lo) < 0)
			continue;
		if (r->has_hi && vfm_version_cmp(v, &r->hi) > 0)
			continue;
		if (r->has_lo || r->has_hi)
			return true;
	}
	return false;
}

int vfm_ranges_format(const struct vfm_range_list *rl, char *buf, size_t cap)
{
	char lo[VFM_VERSION_STR_MAX + 1], hi[VFM_VERSION_STR_MAX + 1];
	size_t n = 0;

	if (!cap)
		return -ENOSPC;
	buf[0] = '\0';
	for (unsigned int i = 0; i < rl->n && i < VFM_RANGES_MAX; i++) {
		const struct vfm_range *r = &rl->r[i];
		int w;

		lo[0] = hi[0] = '\0';
		if (r->has_lo && vfm_version_format(&r->lo, lo, sizeof(lo)) < 0)
			return -ENOSPC;
		if (r->has_hi && vfm_version_format(&r->hi, hi, sizeof(hi)) < 0)
			return -ENOSPC;
		if (r->has_lo && r->has_hi &&
		    !vfm_version_cmp(&r->lo, &r->hi) && !strcmp(lo, hi))
			w = snprintf(buf + n, cap - n, "%s%s", i ? "," : "",
				     lo);
		else
			w = snprintf(buf + n, cap - n, "%s%s-%s", i ? "," : "",
				     lo, hi);
		if (w < 0 || (size_t)w >= cap - n)
			return -ENOSPC;
		n += (size_t)w;
	}
	return (int)n;
}
