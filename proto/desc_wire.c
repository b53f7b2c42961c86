// SPDX-License-Identifier: MIT
/* The descriptor as a nested TLV container (see vfm/desc.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vfm/desc.h"
#include "vfm/wire.h"
#include "internal.h"

#define M VFM_TLV_MANDATORY
#define TEXT_MAX 2048 /* longest field text: "name=" + a full allowed list */

int vfm_desc_put(struct vfm_msgb *b, uint16_t tlv_type,
		 const struct vfm_desc *d)
{
	char text[TEXT_MAX];
	size_t mark;
	int len;

	if (vfm_desc_check(d, NULL))
		return b->err = b->err ? b->err : -EINVAL;
	vfm_msg_nest_begin(b, tlv_type, &mark);
	vfm_msg_put_str(b, M | VFM_DTLV_MODEL, d->model);
	len = vfm_version_format(&d->version, text, sizeof(text));
	if (len < 0)
		return b->err = b->err ? b->err : len;
	vfm_msg_put_str(b, M | VFM_DTLV_VERSION, text);
	len = vfm_ranges_format(&d->compatible, text, sizeof(text));
	if (len < 0)
		return b->err = b->err ? b->err : len;
	vfm_msg_put_str(b, M | VFM_DTLV_COMPATIBLE, text);
	for (unsigned int i = 0; i < d->nfeatures; i++)
		vfm_msg_put_str(b, M | VFM_DTLV_FEATURE, d->features[i]);
	for (unsigned int i = 0; i < d->nparams; i++) {
		snprintf(text, sizeof(text), "%s=%s", d->params[i].name,
			 d->params[i].value);
		vfm_msg_put_str(b, M | VFM_DTLV_PARAM, text);
	}
	for (unsigned int i = 0; i < d->nallowed; i++) {
		int n = snprintf(text, sizeof(text), "%s=", d->allowed[i].name);

		len = vfm_allowed_format(&d->allowed[i], text + n,
					 sizeof(text) - (size_t)n);
		if (len < 0)
			return b->err = b->err ? b->err : len;
		vfm_msg_put_str(b, M | VFM_DTLV_ALLOWED, text);
	}
	if (d->stream_formats) {
		len = vfm_stream_formats_format(d->stream_formats, text,
						sizeof(text));
		if (len < 0)
			return b->err = b->err ? b->err : len;
		vfm_msg_put_str(b, VFM_DTLV_STREAM_FORMATS, text);
	}
	return vfm_msg_nest_end(b, mark);
}

/* "name=value" into the right descriptor file. */
static int put_named(struct vfm_desc *d, const char *dir, char *text,
		     struct vfm_err *err)
{
	char *eq = strchr(text, '=');
	bool dup;

	if (!eq)
		return vfm_err_set(err, -EBADMSG,
				   "descriptor %s entry '%.40s' has no '='",
				   dir, text);
	*eq = '\0';
	if (dir[0] == 'p')
		dup = vfm_desc_param(d, text) != NULL;
	else
		dup = vfm_desc_allowed(d, text) != NULL;
	if (dup)
		return vfm_err_set(err, -EBADMSG,
				   "descriptor has %s/%.31s twice", dir, text);
	if (dir[0] == 'p')
		return vfm_desc_set_param(d, text, eq + 1, err);
	return vfm_desc_set_allowed(d, text, eq + 1, err);
}

int vfm_desc_get(const struct vfm_tlv *t, struct vfm_desc *d,
		 struct vfm_err *err)
{
	static const char *const once[] = { [VFM_DTLV_MODEL] = "model",
					    [VFM_DTLV_VERSION] = "version",
					    [VFM_DTLV_COMPATIBLE] =
						    "version_compatible" };
	struct vfm_tlv_iter it;
	struct vfm_tlv f;
	char text[TEXT_MAX];
	unsigned int seen = 0;
	int ret;

	vfm_desc_init(d);
	vfm_tlv_iter_nested(&it, t);
	while ((ret = vfm_tlv_next(&it, &f, err)) > 0) {
		switch (f.type) {
		case VFM_DTLV_MODEL:
		case VFM_DTLV_VERSION:
		case VFM_DTLV_COMPATIBLE:
			if (seen & (1u << f.type))
				return vfm_err_set(err, -EBADMSG,
						   "descriptor has %s twice",
						   once[f.type]);
			seen |= 1u << f.type;
			ret = vfm_tlv_get_str(&f, text, sizeof(text), err);
			if (!ret)
				ret = vfm_desc_apply_file(d, once[f.type], text,
							  strlen(text), err);
			break;
		case VFM_DTLV_FEATURE:
			ret = vfm_tlv_get_str(&f, text, VFM_DESC_NAME_MAX + 1,
					      err);
			if (!ret && (!text[0] || strpbrk(text, " ,\t\r\n")))
				ret = vfm_err_set(
					err, -EBADMSG,
					"descriptor feature '%s' is not one name",
					text);
			if (!ret && vfm_desc_has_feature(d, text))
				ret = vfm_err_set(
					err, -EBADMSG,
					"descriptor has feature %s twice",
					text);
			if (!ret)
				ret = vfm_desc_add_features(d, text, err);
			break;
		case VFM_DTLV_PARAM:
		case VFM_DTLV_ALLOWED:
			ret = vfm_tlv_get_str(&f, text, sizeof(text), err);
			if (!ret)
				ret = put_named(d,
						f.type == VFM_DTLV_PARAM ?
							"params" :
							"allowed",
						text, err);
			break;
		case VFM_DTLV_STREAM_FORMATS:
			if (seen & (1u << f.type))
				return vfm_err_set(
					err, -EBADMSG,
					"descriptor has stream_formats twice");
			seen |= 1u << f.type;
			ret = vfm_tlv_get_str(&f, text, sizeof(text), err);
			if (!ret)
				ret = vfm_desc_apply_file(d, "stream_formats",
							  text, strlen(text),
							  err);
			break;
		default:
			ret = vfm_tlv_unknown(&f, "the descriptor", err);
		}
		if (ret)
			return ret == -EPROTO ? ret : -EBADMSG;
	}
	if (ret)
		return ret;
	if (vfm_desc_check(d, err))
		return vfm_err_set(err, -EBADMSG, "descriptor lacks %s",
				   d->model[0] ? (d->has_version ?
							  "version_compatible" :
							  "version") :
						 "model");
	return 0;
}
