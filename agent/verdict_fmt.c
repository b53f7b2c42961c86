// SPDX-License-Identifier: MIT
/* Printing a compatibility verdict as a table, as JSON, or as log lines. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "verdict_fmt.h"

/* Add @s to @o under @key, as a string with invalid UTF-8 replaced. */
static void add_str(struct json_object *o, const char *key, const char *s)
{
	json_object_object_add(o, key, vfm_json_string_new(s));
}

struct json_object *vfm_desc_json(const struct vfm_desc *d)
{
	struct json_object *o = json_object_new_object(), *a;
	char buf[VFM_RANGES_STR_MAX + 1];

	if (!o)
		return NULL;
	add_str(o, "model", d->model);
	if (vfm_version_format(&d->version, buf, sizeof(buf)) < 0)
		buf[0] = '\0';
	add_str(o, "version", buf);
	if (vfm_ranges_format(&d->compatible, buf, sizeof(buf)) < 0)
		buf[0] = '\0';
	add_str(o, "version_compatible", buf);
	a = json_object_new_array();
	for (unsigned int i = 0; a && i < d->nfeatures; i++)
		json_object_array_add(a, vfm_json_string_new(d->features[i]));
	json_object_object_add(o, "features", a);
	a = json_object_new_object();
	for (unsigned int i = 0; a && i < d->nparams; i++)
		add_str(a, d->params[i].name, d->params[i].value);
	json_object_object_add(o, "params", a);
	a = json_object_new_object();
	for (unsigned int i = 0; a && i < d->nallowed; i++) {
		if (vfm_allowed_format(&d->allowed[i], buf, sizeof(buf)) < 0)
			buf[0] = '\0';
		add_str(a, d->allowed[i].name, buf);
	}
	json_object_object_add(o, "allowed", a);
	return o;
}

/* Print @o (consumed) as one line of JSON; @nl: end it with a newline. */
static void print_json(FILE *f, struct json_object *o, bool nl)
{
	fputs(o ? vfm_json_text(o) : "null", f);
	if (nl)
		fputc('\n', f);
	json_object_put(o);
}

void vfm_json_string(FILE *f, const char *s)
{
	print_json(f, vfm_json_string_new(s), false);
}

void vfm_desc_print_json(FILE *f, const struct vfm_desc *d)
{
	print_json(f, vfm_desc_json(d), false);
}

static const char *code_name(uint16_t code, char *buf, size_t cap)
{
	const char *n = vfm_compat_code_name(code);

	if (n)
		return n;
	snprintf(buf, cap, "code_%u", code);
	return buf;
}

struct json_object *vfm_rule_json(const struct vfm_rule_result *r)
{
	struct json_object *o = json_object_new_object();
	char cb[16];

	if (!o)
		return NULL;
	add_str(o, "code", code_name(r->code, cb, sizeof(cb)));
	json_object_object_add(o, "code_num", json_object_new_int(r->code));
	json_object_object_add(o, "passed", json_object_new_boolean(r->passed));
	add_str(o, "subject", r->subject);
	add_str(o, "sentence", r->sentence);
	return o;
}

struct json_object *vfm_verdict_json(const struct vfm_verdict *v,
				     const struct vfm_desc *src,
				     const struct vfm_desc *dst)
{
	struct json_object *o = json_object_new_object(), *a;

	if (!o)
		return NULL;
	json_object_object_add(o, "accept", json_object_new_boolean(v->accept));
	json_object_object_add(
		o, "failed", json_object_new_int((int)vfm_verdict_failures(v)));
	json_object_object_add(o, "source_descriptor",
			       src ? vfm_desc_json(src) : NULL);
	json_object_object_add(o, "destination_descriptor",
			       dst ? vfm_desc_json(dst) : NULL);
	a = json_object_new_array();
	for (unsigned int i = 0; a && i < v->nresults; i++)
		json_object_array_add(a, vfm_rule_json(&v->r[i]));
	json_object_object_add(o, "rules", a);
	a = json_object_new_array();
	for (unsigned int i = 0; a && i < v->nnotes; i++)
		json_object_array_add(a, vfm_json_string_new(v->notes[i]));
	json_object_object_add(o, "notes", a);
	return o;
}

void vfm_verdict_print_json(FILE *f, const struct vfm_verdict *v,
			    const struct vfm_desc *src,
			    const struct vfm_desc *dst)
{
	print_json(f, vfm_verdict_json(v, src, dst), true);
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
