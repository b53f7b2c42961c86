// SPDX-License-Identifier: MIT
/* Printing a compatibility verdict as a table, as JSON, or as log lines. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "verdict_fmt.h"

/* Length of the valid UTF-8 sequence at @s, or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void vfm_json_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		size_t n;

		switch (*s) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*s < 0x20 || *s == 0x7f) {
				fprintf(f, "\\u%04x", *s);
				break;
			}
			n = utf8_len(s);
			if (!n) {
				fputs("\\ufffd", f);
				break;
			}
			fwrite(s, 1, n, f);
			s += n;
			continue;
		}
		s++;
	}
	fputc('"', f);
}

void vfm_desc_print_json(FILE *f, const struct vfm_desc *d)
{
	char buf[VFM_RANGES_STR_MAX + 1];

	fputs("{\"model\":", f);
	vfm_json_string(f, d->model);
	fputs(",\"version\":", f);
	if (vfm_version_format(&d->version, buf, sizeof(buf)) < 0)
		buf[0] = '\0';
	vfm_json_string(f, buf);
	fputs(",\"version_compatible\":", f);
	if (vfm_ranges_format(&d->compatible, buf, sizeof(buf)) < 0)
		buf[0] = '\0';
	vfm_json_string(f, buf);
	fputs(",\"features\":[", f);
	for (unsigned int i = 0; i < d->nfeatures; i++) {
		fputs(i ? "," : "", f);
		vfm_json_string(f, d->features[i]);
	}
	fputs("],\"params\":{", f);
	for (unsigned int i = 0; i < d->nparams; i++) {
		fputs(i ? "," : "", f);
		vfm_json_string(f, d->params[i].name);
		fputc(':', f);
		vfm_json_string(f, d->params[i].value);
	}
	fputs("},\"allowed\":{", f);
	for (unsigned int i = 0; i < d->nallowed; i++) {
		fputs(i ? "," : "", f);
		vfm_json_string(f, d->allowed[i].name);
		fputc(':', f);
		if (vfm_allowed_format(&d->allowed[i], buf, sizeof(buf)) < 0)
			buf[0] = '\0';
		vfm_json_string(f, buf);
	}
	fputs("}}", f);
}

static const char *code_name(uint16_t code, char *buf, size_t cap)
{
	const char *n = vfm_compat_code_name(code);

	if (n)
		return n;
	snprintf(buf, cap, "code_%u", code);
	return buf;
}

void vfm_verdict_print_json(FILE *f, const struct vfm_verdict *v,
			    const struct vfm_desc *src,
			    const struct vfm_desc *dst)
{
	char cb[16];

	fprintf(f, "{\"compatible\":%s,\"failed\":%u,\"source\":",
		v->accept ? "true" : "false", vfm_verdict_failures(v));
	if (src)
		vfm_desc_print_json(f, src);
	else
		fputs("null", f);
	fputs(",\"destination\":", f);
	if (dst)
		vfm_desc_print_json(f, dst);
	else
		fputs("null", f);
	fputs(",\"rules\":[", f);
	for (unsigned int i = 0; i < v->nresults; i++) {
		const struct vfm_rule_result *r = &v->r[i];

		fputs(i ? ",{\"code\":" : "{\"code\":", f);
		vfm_json_string(f, code_name(r->code, cb, sizeof(cb)));
		fprintf(f,
			",\"code_num\":%u,\"passed\":%s,\"subject\":", r->code,
			r->passed ? "true" : "false");
		vfm_json_string(f, r->subject);
		fputs(",\"sentence\":", f);
		vfm_json_string(f, r->sentence);
		fputc('}', f);
	}
	fputs("],\"notes\":[", f);
	for (unsigned int i = 0; i < v->nnotes; i++) {
		fputs(i ? "," : "", f);
		vfm_json_string(f, v->notes[i]);
	}
	fputs("]}\n", f);
}

static void heading(FILE *f, const char *role, const struct vfm_desc *d)
{
	char ver[VFM_VERSION_STR_MAX + 1];

	if (!d)
		return;
	if (vfm_version_format(&d->version, ver, sizeof(ver)) < 0)
		ver[0] = '\0';
	fprintf(f, "%-12s %s %s", role, d->model, ver);
	for (unsigned int i = 0; i < d->nparams; i++)
		fprintf(f, "%s%s=%s", i ? " " : "  params: ", d->params[i].name,
			d->params[i].value);
	fputc('\n', f);
}

void vfm_verdict_print_table(FILE *f, const struct vfm_verdict *v,
			     const struct vfm_desc *src,
			     const struct vfm_desc *dst)
{
	unsigned int failed = vfm_verdict_failures(v);
	char cb[16];

	heading(f, "source:", src);
	heading(f, "destination:", dst);
	if (src || dst)
		fputc('\n', f);
	fprintf(f, "%-6s %-31s %-16s %s\n", "RESULT", "CODE", "SUBJECT",
		"REASON");
	for (unsigned int i = 0; i < v->nresults; i++) {
		const struct vfm_rule_result *r = &v->r[i];

		fprintf(f, "%-6s %-31s %-16s %s\n", r->passed ? "PASS" : "FAIL",
			code_name(r->code, cb, sizeof(cb)),
			r->subject[0] ? r->subject : "-", r->sentence);
	}
	for (unsigned int i = 0; i < v->nnotes; i++)
		fprintf(f, "%-6s %s\n", "NOTE", v->notes[i]);
	if (v->accept)
		fprintf(f, "\nverdict: COMPATIBLE (all %u rules passed)\n",
			v->nresults);
	else
		fprintf(f, "\nverdict: REFUSED (%u of %u rules failed)\n",
			failed, v->nresults);
}

const char *vfm_rule_line(const struct vfm_rule_result *r, char *buf,
			  size_t cap)
{
	char cb[16];

	snprintf(buf, cap, "%s %s%s%s: %s", r->passed ? "PASS" : "FAIL",
		 code_name(r->code, cb, sizeof(cb)), r->subject[0] ? " " : "",
		 r->subject, r->sentence);
	return buf;
}
