// SPDX-License-Identifier: GPL-2.0
/*
 * Compatibility check of a resuming stream's header against this device's
 * identity: model, version within version_compatible, params allowed.
 *
 * Versions are dotted numbers of 1 to 4 components compared per component
 * (missing components are 0). A range list is comma separated items
 * "a-b", "a-", "-b" or "a". An allowed list is comma separated items, each
 * a literal value or a numeric range "a-b", "a-", "-b".
 */
#include <linux/ctype.h>
#include <linux/kernel.h>
#include <linux/string.h>

#include "vfmig_stub.h"

#define VFMIG_VER_PARTS	4

struct vfmig_ver {
	u32 v[VFMIG_VER_PARTS];
};

/* Parse [s, e) as a version; 0 or -EINVAL. */
static int vfmig_ver_parse(const char *s, const char *e, struct vfmig_ver *out)
{
	int n = 0;

	memset(out, 0, sizeof(*out));
	if (s >= e)
		return -EINVAL;
	while (s < e) {
		u64 x = 0;

		if (n == VFMIG_VER_PARTS || !isdigit(*s))
			return -EINVAL;
		while (s < e && isdigit(*s)) {
			x = x * 10 + (*s++ - '0');
			if (x > U32_MAX)
				return -EINVAL;
		}
		out->v[n++] = x;
		if (s < e) {
			if (*s != '.' || s + 1 == e)
				return -EINVAL;
			s++;
		}
	}
	return 0;
}

static int vfmig_ver_cmp(const struct vfmig_ver *a, const struct vfmig_ver *b)
{
	int i;

	for (i = 0; i < VFMIG_VER_PARTS; i++)
		if (a->v[i] != b->v[i])
			return a->v[i] < b->v[i] ? -1 : 1;
	return 0;
}

static void vfmig_trim(const char **s, const char **e)
{
	while (*s < *e && isspace(**s))
		(*s)++;
	while (*e > *s && isspace((*e)[-1]))
		(*e)--;
}

bool vfmig_version_valid(const char *s)
{
	const char *e = s + strlen(s);
	struct vfmig_ver v;

	vfmig_trim(&s, &e);
	return !vfmig_ver_parse(s, e, &v);
}

/*
 * Walk a range list; with @ver, return 1 if it lies in a range. Returns 0
 * (not in any), 1, or -EINVAL for a malformed list.
 */
static int vfmig_ranges_match(const char *list, const struct vfmig_ver *ver)
{
	const char *s = list, *end = list + strlen(list);
	int hit = 0;

	vfmig_trim(&s, &end);
	if (s == end)
		return -EINVAL;
	while (s < end) {
		const char *ie = memchr(s, ',', end - s) ?: end;
		const char *is = s, *dash, *te;
		struct vfmig_ver lo = {}, hi;
		bool has_lo, has_hi;

		s = ie + 1;
		vfmig_trim(&is, &ie);
		dash = memchr(is, '-', ie - is);
		if (!dash) {
			if (vfmig_ver_parse(is, ie, &lo))
				return -EINVAL;
			if (ver && !vfmig_ver_cmp(ver, &lo))
				hit = 1;
			continue;
		}
		te = dash;
		vfmig_trim(&is, &te);
		has_lo = is < te;
		if (has_lo && vfmig_ver_parse(is, te, &lo))
			return -EINVAL;
		is = dash + 1;
		vfmig_trim(&is, &ie);
		has_hi = is < ie;
		if (has_hi && vfmig_ver_parse(is, ie, &hi))
			return -EINVAL;
		if (!has_lo && !has_hi)
			return -EINVAL;
		if (ver && (!has_lo || vfmig_ver_cmp(ver, &lo) >= 0) &&
		    (!has_hi || vfmig_ver_cmp(ver, &hi) <= 0))
			hit = 1;
	}
	return hit;
}

bool vfmig_ranges_valid(const char *s)
{
	return vfmig_ranges_match(s, NULL) >= 0;
}

static bool vfmig_num(const char *s, const char *e, u64 *out)
{
	u64 x = 0;

	if (s >= e)
		return false;
	for (; s < e; s++) {
		if (!isdigit(*s) || x > (U64_MAX - 9) / 10)
			return false;
		x = x * 10 + (*s - '0');
	}
	*out = x;
	return true;
}

/* Is @val (length @vlen) in the allowed list @list? */
static bool vfmig_allowed(const char *list, const char *val, size_t vlen)
{
	const char *s = list, *end = list + strlen(list);
	u64 num = 0;
	bool numeric = vfmig_num(val, val + vlen, &num);

	while (s < end) {
		const char *ie = memchr(s, ',', end - s) ?: end;
		const char *is = s, *dash, *te, *hs;
		u64 lo = 0, hi = U64_MAX;

		s = ie + 1;
		vfmig_trim(&is, &ie);
		if ((size_t)(ie - is) == vlen && !memcmp(is, val, vlen))
			return true;
		dash = memchr(is, '-', ie - is);
		if (!dash || !numeric)
			continue;
		te = dash;
		hs = dash + 1;
		vfmig_trim(&is, &te);
		vfmig_trim(&hs, &ie);
		if (is == te && hs == ie)
			continue;
		if ((is < te && !vfmig_num(is, te, &lo)) ||
		    (hs < ie && !vfmig_num(hs, ie, &hi)))
			continue;
		if (num >= lo && num <= hi)
			return true;
	}
	return false;
}

static bool vfmig_str_ok(const char *s, size_t max)
{
	return strnlen(s, max) < max;
}

/*
 * The stream header is untrusted input: a refusal says which rule failed and
 * names this device's own values, never bytes of the stream; rate limited,
 * since any process that can open the device can send headers in a loop.
 */
int vfmig_check_hdr(struct vfmig_device *vdev, const struct vfmig_stream_hdr *h)
{
	const char *s, *end;
	bool has_memory = false;
	struct vfmig_ver ver;
	int in;

	if (!vfmig_str_ok(h->model, sizeof(h->model)) ||
	    !vfmig_str_ok(h->version, sizeof(h->version)) ||
	    !vfmig_str_ok(h->params, sizeof(h->params))) {
		vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused: unterminated string in the stream header\n");
		return -EINVAL;
	}
	if (strcmp(h->model, vdev->model)) {
		vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused: model is not this device's model \"%s\"\n",
			      vdev->model);
		return -EINVAL;
	}
	if (vfmig_ver_parse(h->version, h->version + strlen(h->version), &ver)) {
		vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused: source version is malformed\n");
		return -EINVAL;
	}
	in = vfmig_ranges_match(vdev->version_compatible, &ver);
	if (in <= 0) {
		vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused: source version %u.%u.%u.%u is outside this device's version_compatible \"%s\"\n",
			      ver.v[0], ver.v[1], ver.v[2], ver.v[3],
			      vdev->version_compatible);
		return -EINVAL;
	}

	s = h->params;
	end = s + strlen(s);
	while (s < end) {
		const char *le = memchr(s, '\n', end - s) ?: end;
		const char *eq = memchr(s, '=', le - s);
		const char *ls = s;
		u64 mib;

		s = le + 1;
		if (ls == le)
			continue;
		if (!eq) {
			vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused: malformed param line\n");
			return -EINVAL;
		}
		if (eq - ls != 6 || memcmp(ls, "memory", 6)) {
			vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused: a param does not exist on this device (it knows \"memory\")\n");
			return -EINVAL;
		}
		if (!vfmig_num(eq + 1, le, &mib) || mib > U64_MAX >> 20 ||
		    mib << 20 != le64_to_cpu(h->mem_size)) {
			vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused: the memory param does not match the stream's memory size\n");
			return -EINVAL;
		}
		if (!vfmig_allowed(vdev->allowed_memory, eq + 1, le - eq - 1)) {
			vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused: memory=%llu is not in this device's allowed/memory \"%s\"\n",
				      mib, vdev->allowed_memory);
			return -EINVAL;
		}
		if (mib > vfmig_max_mem_mib) {
			vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused: memory=%llu is above this driver's max_mem_mib %u\n",
				      mib, vfmig_max_mem_mib);
			return -EINVAL;
		}
		has_memory = true;
	}
	if (!has_memory) {
		vfmig_warn_rl(vdev, VFMIG_WARN_STREAM, "migration stream refused: the source has no memory param\n");
		return -EINVAL;
	}
	return 0;
}
