// SPDX-License-Identifier: MIT
/* Device descriptors in memory, and the parsers of their text files. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vfm/desc.h"
#include "internal.h"

void vfm_desc_init(struct vfm_desc *d)
{
	memset(d, 0, sizeof(*d));
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       vfm_isdigit(c) || c == '_';
}

static bool value_char(char c)
{
	return name_char(c) || c == '.' || c == ':' || c == '+' || c == '-';
}

/* Check a name of @len bytes; the sentence names @what. */
static int check_name(const char *s, size_t len, const char *what,
		      struct vfm_err *err)
{
	if (!len)
		return vfm_err_set(err, -EINVAL, "empty %s", what);
	if (len > VFM_DESC_NAME_MAX)
		return vfm_err_set(err, -ENAMETOOLONG,
				   "%s '%.*s...' is longer than %d bytes", what,
				   16, s, VFM_DESC_NAME_MAX);
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i]))
			return vfm_err_set(
				err, -EINVAL,
				"%s '%.*s' has a character other than A-Z a-z 0-9 _ at column %zu",
				what, (int)len, s, i + 1);
	return 0;
}

static int check_value(const char *s, size_t len, struct vfm_err *err)
{
	if (!len)
		return vfm_err_set(err, -EINVAL, "empty value");
	if (len > VFM_DESC_VALUE_MAX)
		return vfm_err_set(err, -ENAMETOOLONG,
				   "value '%.*s...' is longer than %d bytes",
				   16, s, VFM_DESC_VALUE_MAX);
	for (size_t i = 0; i < len; i++)
		if (!value_char(s[i]))
			return vfm_err_set(
				err, -EINVAL,
				"value '%.*s' has a character other than A-Z a-z 0-9 _ . : + - at column %zu",
				(int)len, s, i + 1);
	return 0;
}

/* Decimal u64 of exactly @len bytes. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t n = 0;

	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned int dgt;

		if (!vfm_isdigit(s[i]))
			return false;
		dgt = (unsigned int)(s[i] - '0');
		if (n > (UINT64_MAX - dgt) / 10)
			return false;
		n = n * 10 + dgt;
	}
	*out = n;
	return true;
}

static void trim(const char **s, size_t *len)
{
	while (*len && vfm_isblank((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len && vfm_isblank((*s)[*len - 1]))
		(*len)--;
}

static bool is_sep(char c)
{
	return c == ',' || vfm_isblank(c);
}

/* Next list item in [*p, end): returns false at the end. */
static bool next_item(const char **p, const char *end, const char **item,
		      size_t *len)
{
	const char *q = *p;

	while (q < end && is_sep(*q))
		q++;
	if (q == end)
		return false;
	*item = q;
	while (q < end && !is_sep(*q))
		q++;
	*len = (size_t)(q - *item);
	*p = q;
	return true;
}

static int set_model(struct vfm_desc *d, const char *s, size_t len,
		     struct vfm_err *err)
{
	trim(&s, &len);
	if (!len)
		return vfm_err_set(err, -EINVAL, "the model is empty");
	if (len > VFM_DESC_MODEL_MAX)
		return vfm_err_set(err, -ENAMETOOLONG,
				   "the model is longer than %d bytes",
				   VFM_DESC_MODEL_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return vfm_err_set(
				err, -EINVAL,
				"the model has a blank or non-printable byte at column %zu",
				i + 1);
	memcpy(d->model, s, len);
	d->model[len] = '\0';
	return 0;
}

static int add_features(struct vfm_desc *d, const char *s, size_t len,
			struct vfm_err *err)
{
	const char *p = s, *end = s + len, *it;
	size_t n;
	int ret;

	while (next_item(&p, end, &it, &n)) {
		char name[VFM_DESC_NAME_MAX + 1];

		ret = check_name(it, n, "feature name", err);
		if (ret)
			return ret;
		memcpy(name, it, n);
		name[n] = '\0';
		if (vfm_desc_has_feature(d, name))
			continue;
		if (d->nfeatures == VFM_DESC_FEATURES_MAX)
			return vfm_err_set(err, -E2BIG, "more than %d features",
					   VFM_DESC_FEATURES_MAX);
		memcpy(d->features[d->nfeatures++], name, n + 1);
	}
	return 0;
}

static int set_param(struct vfm_desc *d, const char *name, const char *s,
		     size_t len, struct vfm_err *err)
{
	struct vfm_param *pm = NULL;
	int ret;

	trim(&s, &len);
	ret = check_value(s, len, err);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < d->nparams; i++)
		if (!strcmp(d->params[i].name, name))
			pm = &d->params[i];
	if (!pm) {
		if (d->nparams == VFM_DESC_PARAMS_MAX)
			return vfm_err_set(err, -E2BIG,
					   "more than %d parameters",
					   VFM_DESC_PARAMS_MAX);
		pm = &d->params[d->nparams++];
		snprintf(pm->name, sizeof(pm->name), "%s", name);
	}
	memcpy(pm->value, s, len);
	pm->value[len] = '\0';
	return 0;
}

/* "lo-hi" with decimal lo and hi; false if @s is not of that shape. */
static int parse_range_item(const char *s, size_t len,
			    struct vfm_allowed_item *it, struct vfm_err *err)
{
	const char *dash = memchr(s, '-', len);
	size_t i;

	if (!dash || dash == s || dash == s + len - 1)
		return 0;
	for (i = 0; i < len; i++)
		if (s + i != dash && !vfm_isdigit(s[i]))
			return 0;
	if (!parse_u64(s, (size_t)(dash - s), &it->lo) ||
	    !parse_u64(dash + 1, len - (size_t)(dash - s) - 1, &it->hi))
		return vfm_err_set(err, -ERANGE,
				   "range '%.*s' has a number above 2^64-1",
				   (int)len, s);
	if (it->lo > it->hi)
		return vfm_err_set(err, -EINVAL,
				   "range '%.*s' has its start above its end",
				   (int)len, s);
	it->is_range = true;
	return 1;
}

static int set_allowed(struct vfm_desc *d, const char *name, const char *s,
		       size_t len, struct vfm_err *err)
{
	struct vfm_allowed tmp, *a = NULL;
	const char *p = s, *end = s + len, *item;
	size_t n;
	int ret;

	memset(&tmp, 0, sizeof(tmp));
	snprintf(tmp.name, sizeof(tmp.name), "%s", name);
	while (next_item(&p, end, &item, &n)) {
		struct vfm_allowed_item *it;

		if (tmp.n == VFM_DESC_ALLOWED_MAX)
			return vfm_err_set(err, -E2BIG,
					   "more than %d allowed values",
					   VFM_DESC_ALLOWED_MAX);
		it = &tmp.item[tmp.n];
		ret = parse_range_item(item, n, it, err);
		if (ret < 0)
			return ret;
		if (!ret) {
			ret = check_value(item, n, err);
			if (ret)
				return ret;
			memcpy(it->value, item, n);
			it->value[n] = '\0';
		}
		tmp.n++;
	}
	if (!tmp.n)
		return vfm_err_set(err, -EINVAL, "the allowed list is empty");
	for (unsigned int i = 0; i < d->nallowed; i++)
		if (!strcmp(d->allowed[i].name, name))
			a = &d->allowed[i];
	if (!a) {
		if (d->nallowed == VFM_DESC_PARAMS_MAX)
			return vfm_err_set(err, -E2BIG,
					   "more than %d allowed lists",
					   VFM_DESC_PARAMS_MAX);
		a = &d->allowed[d->nallowed++];
	}
	*a = tmp;
	return 0;
}

/* "1,2" or "1 2": each a format number 1..VFM_DESC_STREAM_FORMAT_MAX. */
static int set_stream_formats(struct vfm_desc *d, const char *s, size_t len,
			      struct vfm_err *err)
{
	const char *p = s, *end = s + len, *it;
	uint32_t set = 0;
	uint64_t v;
	size_t n;

	while (next_item(&p, end, &it, &n)) {
		if (!parse_u64(it, n, &v) || !v ||
		    v > VFM_DESC_STREAM_FORMAT_MAX)
			return vfm_err_set(
				err, -EINVAL,
				"'%.*s' is not a stream format (1-%d)",
				(int)(n > 20 ? 20 : n), it,
				VFM_DESC_STREAM_FORMAT_MAX);
		set |= 1u << v;
	}
	if (!set)
		return vfm_err_set(err, -EINVAL, "no stream format");
	d->stream_formats = set;
	return 0;
}

static int apply(struct vfm_desc *d, const char *relpath, const char *text,
		 size_t len, struct vfm_err *err)
{
	const char *name;
	size_t col0;
	int ret;

	if (len > VFM_DESC_FILE_MAX)
		return vfm_err_set(err, -EFBIG, "longer than %d bytes",
				   VFM_DESC_FILE_MAX);
	if (memchr(text, '\0', len))
		return vfm_err_set(err, -EINVAL, "contains a NUL byte");
	if (!strcmp(relpath, "model"))
		return set_model(d, text, len, err);
	if (!strcmp(relpath, "features"))
		return add_features(d, text, len, err);
	if (!strcmp(relpath, "version") ||
	    !strcmp(relpath, "version_compatible")) {
		const char *s = text;

		trim(&s, &len);
		col0 = (size_t)(s - text);
		if (relpath[7] == '\0') {
			ret = vfm_version_parse(s, len, &d->version, err);
			d->has_version = !ret;
		} else {
			ret = vfm_ranges_parse(s, len, &d->compatible, err);
			d->has_compatible = !ret;
		}
		if (ret && err && err->col && col0) {
			/* Columns count from the file's first byte. */
			char tmp[VFM_ERR_MSG_MAX];
			const char *rest = strchr(err->msg, ':');

			err->col += (unsigned int)col0;
			snprintf(tmp, sizeof(tmp), "column %u%s", err->col,
				 rest ? rest : "");
			memcpy(err->msg, tmp, sizeof(tmp));
		}
		return ret;
	}
	if (!strcmp(relpath, "stream_formats"))
		return set_stream_formats(d, text, len, err);
	if (!strncmp(relpath, "params/", 7) ||
	    !strncmp(relpath, "allowed/", 8)) {
		name = strchr(relpath, '/') + 1;
		ret = check_name(name, strlen(name), "parameter name", err);
		if (ret)
			return ret;
		if (relpath[0] == 'p')
			return set_param(d, name, text, len, err);
		return set_allowed(d, name, text, len, err);
	}
	return vfm_err_set(err, -ENOENT, "not a descriptor file");
}

int vfm_desc_apply_file(struct vfm_desc *d, const char *relpath,
			const char *text, size_t len, struct vfm_err *err)
{
	int ret;

	vfm_err_clear(err);
	ret = apply(d, relpath, text, len, err);
	if (ret)
		vfm_err_prefix(err, relpath);
	return ret;
}

int vfm_desc_set_stream_formats(struct vfm_desc *d, const char *list,
				struct vfm_err *err)
{
	return vfm_desc_apply_file(d, "stream_formats", list, strlen(list),
				   err);
}

uint32_t vfm_desc_stream_formats(const struct vfm_desc *d)
{
	return d->stream_formats ? d->stream_formats : 1u << 1;
}

int vfm_stream_formats_format(uint32_t set, char *buf, size_t cap)
{
	size_t n = 0;

	if (!cap)
		return -ENOSPC;
	buf[0] = '\0';
	for (unsigned int f = 1; f <= VFM_DESC_STREAM_FORMAT_MAX; f++) {
		int w;

		if (!(set >> f & 1))
			continue;
		w = snprintf(buf + n, cap - n, "%s%u", n ? "," : "", f);
		if (w < 0 || (size_t)w >= cap - n)
			return -ENOSPC;
		n += (size_t)w;
	}
	return (int)n;
}

unsigned int vfm_stream_format_pick(const struct vfm_desc *src,
				    const struct vfm_desc *dst)
{
	uint32_t common = vfm_desc_stream_formats(src) &
			  vfm_desc_stream_formats(dst);

	for (unsigned int f = VFM_DESC_STREAM_FORMAT_MAX; f; f--)
		if (common >> f & 1)
			return f;
	return 0;
}

int vfm_desc_set_model(struct vfm_desc *d, const char *model,
		       struct vfm_err *err)
{
	return vfm_desc_apply_file(d, "model", model, strlen(model), err);
}

int vfm_desc_set_version(struct vfm_desc *d, const char *version,
			 struct vfm_err *err)
{
	return vfm_desc_apply_file(d, "version", version, strlen(version), err);
}

int vfm_desc_set_compatible(struct vfm_desc *d, const char *ranges,
			    struct vfm_err *err)
{
	return vfm_desc_apply_file(d, "version_compatible", ranges,
				   strlen(ranges), err);
}

int vfm_desc_add_features(struct vfm_desc *d, const char *names,
			  struct vfm_err *err)
{
	return vfm_desc_apply_file(d, "features", names, strlen(names), err);
}

static int apply_named(struct vfm_desc *d, const char *dir, const char *name,
		       const char *text, struct vfm_err *err)
{
	char rel[16 + VFM_DESC_NAME_MAX + 2];

	if (strlen(name) > VFM_DESC_NAME_MAX)
		return vfm_err_set(
			err, -ENAMETOOLONG,
			"%s/%.16s...: the name is longer than %d bytes", dir,
			name, VFM_DESC_NAME_MAX);
	snprintf(rel, sizeof(rel), "%s/%s", dir, name);
	return vfm_desc_apply_file(d, rel, text, strlen(text), err);
}

int vfm_desc_set_param(struct vfm_desc *d, const char *name, const char *value,
		       struct vfm_err *err)
{
	return apply_named(d, "params", name, value, err);
}

int vfm_desc_set_allowed(struct vfm_desc *d, const char *name, const char *list,
			 struct vfm_err *err)
{
	return apply_named(d, "allowed", name, list, err);
}

int vfm_desc_check(const struct vfm_desc *d, struct vfm_err *err)
{
	if (!d->model[0])
		return vfm_err_set(err, -EINVAL, "model: missing");
	if (!d->has_version)
		return vfm_err_set(err, -EINVAL, "version: missing");
	if (!d->has_compatible)
		return vfm_err_set(err, -EINVAL, "version_compatible: missing");
	return 0;
}

const char *vfm_desc_param(const struct vfm_desc *d, const char *name)
{
	for (unsigned int i = 0; i < d->nparams && i < VFM_DESC_PARAMS_MAX; i++)
		if (!strcmp(d->params[i].name, name))
			return d->params[i].value;
	return NULL;
}

const struct vfm_allowed *vfm_desc_allowed(const struct vfm_desc *d,
					   const char *name)
{
	for (unsigned int i = 0; i < d->nallowed && i < VFM_DESC_PARAMS_MAX;
	     i++)
		if (!strcmp(d->allowed[i].name, name))
			return &d->allowed[i];
	return NULL;
}

bool vfm_desc_has_feature(const struct vfm_desc *d, const char *name)
{
	for (unsigned int i = 0; i < d->nfeatures && i < VFM_DESC_FEATURES_MAX;
	     i++)
		if (!strcmp(d->features[i], name))
			return true;
	return false;
}

bool vfm_allowed_match(const struct vfm_allowed *a, const char *value)
{
	uint64_t num = 0;
	bool is_num = parse_u64(value, strlen(value), &num);

	for (unsigned int i = 0; i < a->n && i < VFM_DESC_ALLOWED_MAX; i++) {
		const struct vfm_allowed_item *it = &a->item[i];
		uint64_t v;

		if (it->is_range) {
			if (is_num && num >= it->lo && num <= it->hi)
				return true;
		} else if (!strcmp(it->value, value)) {
			return true;
		} else if (is_num &&
			   parse_u64(it->value, strlen(it->value), &v) &&
			   v == num) {
			return true;
		}
	}
	return false;
}

int vfm_allowed_format(const struct vfm_allowed *a, char *buf, size_t cap)
{
	size_t n = 0;

	if (!cap)
		return -ENOSPC;
	buf[0] = '\0';
	for (unsigned int i = 0; i < a->n && i < VFM_DESC_ALLOWED_MAX; i++) {
		const struct vfm_allowed_item *it = &a->item[i];
		int w;

		if (it->is_range)
			w = snprintf(buf + n, cap - n, "%s%llu-%llu",
				     i ? "," : "", (unsigned long long)it->lo,
				     (unsigned long long)it->hi);
		else
			w = snprintf(buf + n, cap - n, "%s%s", i ? "," : "",
				     it->value);
		if (w < 0 || (size_t)w >= cap - n)
			return -ENOSPC;
		n += (size_t)w;
	}
	return (int)n;
}
