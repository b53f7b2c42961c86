// SPDX-License-Identifier: MIT
/* The compatibility engine: the destination decides (see vfm/compat.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vfm/compat.h"
#include "internal.h"

static const char *const code_names[] = {
	[VFM_COMPAT_MODEL_MATCH] = "model_match",
	[VFM_COMPAT_MODEL_MISMATCH] = "model_mismatch",
	[VFM_COMPAT_VERSION_COMPATIBLE] = "version_compatible",
	[VFM_COMPAT_VERSION_INCOMPATIBLE] = "version_incompatible",
	[VFM_COMPAT_PARAM_ALLOWED] = "param_allowed",
	[VFM_COMPAT_PARAM_MISSING_AT_DESTINATION] =
		"param_missing_at_destination",
	[VFM_COMPAT_PARAM_VALUE_NOT_ALLOWED] = "param_value_not_allowed",
	[VFM_COMPAT_PARAM_DESTINATION_ONLY_OFF] = "param_destination_only_off",
	[VFM_COMPAT_PARAM_DESTINATION_ONLY_NOT_OFF] =
		"param_destination_only_not_off",
	[VFM_COMPAT_FEATURE_SUPPORTED] = "feature_supported",
	[VFM_COMPAT_FEATURE_UNSUPPORTED] = "feature_unsupported",
	[VFM_COMPAT_STREAM_FORMAT_COMMON] = "stream_format_common",
	[VFM_COMPAT_STREAM_FORMAT_NONE] = "stream_format_none",
	[VFM_COMPAT_SET_SIZE_MATCH] = "set_size_match",
	[VFM_COMPAT_SET_SIZE_MISMATCH] = "set_size_mismatch",
	[VFM_COMPAT_SET_P2P] = "set_p2p",
	[VFM_COMPAT_SET_P2P_MISSING] = "set_p2p_missing",
	[VFM_COMPAT_SET_MEMBERS_ACCEPTED] = "set_members_accepted",
	[VFM_COMPAT_SET_MEMBER_REFUSED] = "set_member_refused",
};

const char *vfm_compat_code_name(uint16_t code)
{
	if (code < VFM_ARRAY_SIZE(code_names))
		return code_names[code];
	return NULL;
}

uint16_t vfm_compat_code_from_name(const char *name)
{
	for (uint16_t i = 1; i < VFM_ARRAY_SIZE(code_names); i++)
		if (code_names[i] && !strcmp(code_names[i], name))
			return i;
	return 0;
}

bool vfm_compat_code_passes(uint16_t code)
{
	switch (code) {
	case VFM_COMPAT_MODEL_MATCH:
	case VFM_COMPAT_VERSION_COMPATIBLE:
	case VFM_COMPAT_PARAM_ALLOWED:
	case VFM_COMPAT_PARAM_DESTINATION_ONLY_OFF:
	case VFM_COMPAT_FEATURE_SUPPORTED:
	case VFM_COMPAT_STREAM_FORMAT_COMMON:
	case VFM_COMPAT_SET_SIZE_MATCH:
	case VFM_COMPAT_SET_P2P:
	case VFM_COMPAT_SET_MEMBERS_ACCEPTED:
		return true;
	}
	return false;
}

static void add(struct vfm_verdict *v, uint16_t code, const char *subject,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void add(struct vfm_verdict *v, uint16_t code, const char *subject,
		const char *fmt, ...)
{
	struct vfm_rule_result *r;
	va_list ap;

	if (v->nresults == VFM_VERDICT_RESULTS_MAX)
		return; /* cannot happen: the caps bound the rules */
	r = &v->r[v->nresults++];
	r->code = code;
	r->passed = vfm_compat_code_passes(code);
	snprintf(r->subject, sizeof(r->subject), "%s", subject);
	va_start(ap, fmt);
	vsnprintf(r->sentence, sizeof(r->sentence), fmt, ap);
	va_end(ap);
	if (!r->passed)
		v->accept = false;
}

/* The destination's allowed values for @name, as text ("" if none). */
static const char *allowed_text(const struct vfm_desc *dst, const char *name,
				char *buf, size_t cap)
{
	const struct vfm_allowed *a = vfm_desc_allowed(dst, name);
	const char *own = vfm_desc_param(dst, name);

	buf[0] = '\0';
	if (a) {
		if (vfm_allowed_format(a, buf, cap) < 0)
			strcpy(buf + cap - 4, "...");
	} else if (own) {
		snprintf(buf, cap, "%s", own);
	}
	return buf;
}

static bool dst_allows(const struct vfm_desc *dst, const char *name,
		       const char *value)
{
	const struct vfm_allowed *a = vfm_desc_allowed(dst, name);
	const char *own = vfm_desc_param(dst, name);

	if (a)
		return vfm_allowed_match(a, value);
	return own && !strcmp(own, value);
}

static void check_model_version(const struct vfm_desc *src,
				const struct vfm_desc *dst,
				struct vfm_verdict *v)
{
	char sv[VFM_VERSION_STR_MAX + 1], dv[VFM_VERSION_STR_MAX + 1];
	char rl[160];

	if (!strcmp(src->model, dst->model))
		add(v, VFM_COMPAT_MODEL_MATCH, "",
		    "source and destination are both model %s", src->model);
	else
		add(v, VFM_COMPAT_MODEL_MISMATCH, "",
		    "source model %s does not match destination model %s",
		    src->model, dst->model);

	if (vfm_version_format(&src->version, sv, sizeof(sv)) < 0)
		strcpy(sv, "?");
	if (vfm_version_format(&dst->version, dv, sizeof(dv)) < 0)
		strcpy(dv, "?");
	if (vfm_ranges_format(&dst->compatible, rl, sizeof(rl)) < 0)
		strcpy(rl + sizeof(rl) - 4, "...");
	if (vfm_ranges_contain(&dst->compatible, &src->version))
		add(v, VFM_COMPAT_VERSION_COMPATIBLE, "",
		    "source version %s is within the destination's compatible versions %s",
		    sv, rl);
	else
		add(v, VFM_COMPAT_VERSION_INCOMPATIBLE, "",
		    "source version %s is outside the destination's compatible versions %s (destination version %s)",
		    sv, rl, dv);
}

static void check_params(const struct vfm_desc *src, const struct vfm_desc *dst,
			 struct vfm_verdict *v)
{
	char al[128];

	for (unsigned int i = 0; i < src->nparams; i++) {
		const struct vfm_param *p = &src->params[i];

		if (!vfm_desc_param(dst, p->name) &&
		    !vfm_desc_allowed(dst, p->name))
			add(v, VFM_COMPAT_PARAM_MISSING_AT_DESTINATION, p->name,
			    "source parameter %s=%s does not exist at the destination",
			    p->name, p->value);
		else if (dst_allows(dst, p->name, p->value))
			add(v, VFM_COMPAT_PARAM_ALLOWED, p->name,
			    "source parameter %s=%s is allowed at the destination (allowed: %s)",
			    p->name, p->value,
			    allowed_text(dst, p->name, al, sizeof(al)));
		else
			add(v, VFM_COMPAT_PARAM_VALUE_NOT_ALLOWED, p->name,
			    "source parameter %s=%s is not allowed at the destination (allowed: %s)",
			    p->name, p->value,
			    allowed_text(dst, p->name, al, sizeof(al)));
	}

	for (unsigned int i = 0; i < dst->nparams; i++) {
		const char *name = dst->params[i].name;

		if (vfm_desc_param(src, name))
			continue;
		if (dst_allows(dst, name, "off")) {
			add(v, VFM_COMPAT_PARAM_DESTINATION_ONLY_OFF, name,
			    "parameter %s exists only at the destination, which allows it off",
			    name);
			if (v->nnotes < VFM_VERDICT_NOTES_MAX)
				snprintf(
					v->notes[v->nnotes++],
					sizeof(v->notes[0]),
					"destination parameter %s will be set to off: the source does not have it",
					name);
		} else {
			add(v, VFM_COMPAT_PARAM_DESTINATION_ONLY_NOT_OFF, name,
			    "parameter %s exists only at the destination, which does not allow it off (allowed: %s)",
			    name, allowed_text(dst, name, al, sizeof(al)));
		}
	}
}

static void check_features(const struct vfm_desc *dst, const char *const *req,
			   unsigned int nreq, struct vfm_verdict *v)
{
	char have[160];
	size_t n = 0;

	have[0] = '\0';
	for (unsigned int i = 0; i < dst->nfeatures; i++) {
		int w = snprintf(have + n, sizeof(have) - n, "%s%s",
				 i ? " " : "", dst->features[i]);

		if (w < 0 || (size_t)w >= sizeof(have) - n) {
			strcpy(have + sizeof(have) - 4, "...");
			break;
		}
		n += (size_t)w;
	}
	for (unsigned int i = 0; i < nreq; i++) {
		if (vfm_desc_has_feature(dst, req[i]))
			add(v, VFM_COMPAT_FEATURE_SUPPORTED, req[i],
			    "required feature %s is supported by the destination",
			    req[i]);
		else
			add(v, VFM_COMPAT_FEATURE_UNSUPPORTED, req[i],
			    "required feature %s is not supported by the destination (it has: %s)",
			    req[i], n ? have : "none");
	}
}

static void check_stream_formats(const struct vfm_desc *src,
				 const struct vfm_desc *dst,
				 struct vfm_verdict *v)
{
	char sf[96], df[96];
	unsigned int f = vfm_stream_format_pick(src, dst);

	if (!src->stream_formats)
		return;
	if (vfm_stream_formats_format(vfm_desc_stream_formats(src), sf,
				      sizeof(sf)) < 0)
		strcpy(sf, "?");
	if (vfm_stream_formats_format(vfm_desc_stream_formats(dst), df,
				      sizeof(df)) < 0)
		strcpy(df, "?");
	if (f)
		add(v, VFM_COMPAT_STREAM_FORMAT_COMMON, "",
		    "stream format %u: the source produces formats %s, the destination loads %s",
		    f, sf, df);
	else
		add(v, VFM_COMPAT_STREAM_FORMAT_NONE, "",
		    "no common stream format: the source produces formats %s, the destination loads %s",
		    sf, df);
}

int vfm_compat_eval_req(const struct vfm_desc *src, const struct vfm_desc *dst,
			const char *const *req, unsigned int nreq,
			struct vfm_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->accept = true;
	if (nreq > VFM_DESC_FEATURES_MAX ||
	    src->nparams > VFM_DESC_PARAMS_MAX ||
	    dst->nparams > VFM_DESC_PARAMS_MAX ||
	    dst->nallowed > VFM_DESC_PARAMS_MAX ||
	    dst->nfeatures > VFM_DESC_FEATURES_MAX) {
		v->accept = false;
		return -E2BIG;
	}
	check_model_version(src, dst, v);
	check_params(src, dst, v);
	check_features(dst, req, nreq, v);
	check_stream_formats(src, dst, v);
	return 0;
}

int vfm_compat_eval(const struct vfm_desc *src, const struct vfm_desc *dst,
		    struct vfm_verdict *v)
{
	const char *req[VFM_DESC_FEATURES_MAX];
	unsigned int n = src->nfeatures;

	if (n > VFM_DESC_FEATURES_MAX)
		n = VFM_DESC_FEATURES_MAX;
	for (unsigned int i = 0; i < n; i++)
		req[i] = src->features[i];
	return vfm_compat_eval_req(src, dst, req, n, v);
}

static bool has_p2p(const struct vfm_desc *d)
{
	for (unsigned int i = 0; i < d->nfeatures && i < VFM_DESC_FEATURES_MAX;
	     i++)
		if (!strcmp(d->features[i], "p2p"))
			return true;
	return false;
}

/* The first device of @d (@n devices) without the P2P states, 0 if none. */
static unsigned int lacks_p2p(const struct vfm_desc *const *d, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (!has_p2p(d[i]))
			return i + 1;
	return 0;
}

void vfm_compat_eval_set(const struct vfm_desc *const *src, unsigned int nsrc,
			 const struct vfm_desc *const *dst, unsigned int ndst,
			 const bool *member_accept, unsigned int nmembers,
			 struct vfm_verdict *v)
{
	unsigned int s, d, refused = 0, first = 0;

	if (nsrc <= 1 && ndst <= 1)
		return;
	if (nsrc == ndst)
		add(v, VFM_COMPAT_SET_SIZE_MATCH, "",
		    "both sides migrate a set of %u devices, paired in order",
		    nsrc);
	else
		add(v, VFM_COMPAT_SET_SIZE_MISMATCH, "",
		    "the source migrates %u device%s, the destination receives %u: each source device needs one destination device, paired in order",
		    nsrc, nsrc == 1 ? "" : "s", ndst);
	s = lacks_p2p(src, nsrc);
	d = lacks_p2p(dst, ndst);
	if (!s && !d)
		add(v, VFM_COMPAT_SET_P2P, "",
		    "every device offers the P2P states: the set is quiesced (no new peer-to-peer DMA) before any device stops, and every destination device is in RUNNING_P2P before any runs");
	else
		add(v, VFM_COMPAT_SET_P2P_MISSING, "",
		    "device %u of the %s (%s) lacks the P2P states: in a set of several devices one device could DMA into a peer already stopped and saved, so every device must offer them (QEMU refuses such a set too)",
		    s ? s : d, s ? "source" : "destination",
		    s ? src[s - 1]->model : dst[d - 1]->model);
	for (unsigned int i = 0; i < nmembers; i++) {
		if (!member_accept[i]) {
			refused++;
			if (!first)
				first = i + 2;
		}
	}
	if (!refused && nsrc == ndst)
		add(v, VFM_COMPAT_SET_MEMBERS_ACCEPTED, "",
		    "the other %u device%s of the set %s accepted too",
		    nmembers, nmembers == 1 ? "" : "s",
		    nmembers == 1 ? "is" : "are");
	else if (refused)
		add(v, VFM_COMPAT_SET_MEMBER_REFUSED, "",
		    "%u other device%s of the set %s refused (the first: device %u; see its rules), so the whole set is refused and no device stops",
		    refused, refused == 1 ? "" : "s",
		    refused == 1 ? "is" : "are", first);
}

unsigned int vfm_verdict_failures(const struct vfm_verdict *v)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < v->nresults && i < VFM_VERDICT_RESULTS_MAX;
	     i++)
		n += !v->r[i].passed;
	return n;
}
