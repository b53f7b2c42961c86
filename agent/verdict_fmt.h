/* SPDX-License-Identifier: MIT */
/*
 * Printing a compatibility verdict: a table for people, JSON for machines,
 * one line per rule for logs. Used by `vfmig compat` and the handshake log.
 */
#ifndef VFM_AGENT_VERDICT_FMT_H
#define VFM_AGENT_VERDICT_FMT_H

#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

#include "vfm/compat.h"
#include "vfm/desc.h"

/* The table: a heading naming both devices (either may be NULL), every
 * rule with PASS/FAIL, its code, subject and sentence, the notes, and a
 * closing line with the decision. */
void vfm_verdict_print_table(FILE *f, const struct vfm_verdict *v,
			     const struct vfm_desc *src,
			     const struct vfm_desc *dst);

/*
 * A verdict as JSON, with the keys the handshake log uses too
 * (docs/log-schema.md): {"accept":bool,"failed":n,
 *  "source_descriptor":{...}|null,"destination_descriptor":{...}|null,
 *  "rules":[{"code":"model_match","code_num":1,"passed":true,
 *            "subject":"","sentence":"..."}],"notes":["..."]}
 * The log splits it: descriptors in "handshake", each rule in a
 * "handshake_rule", accept/failed/notes in "verdict".
 * The json_object functions return a new object (NULL without memory).
 */
struct json_object *vfm_verdict_json(const struct vfm_verdict *v,
				     const struct vfm_desc *src,
				     const struct vfm_desc *dst);
/* One rule: {"code","code_num","passed","subject","sentence"}. */
struct json_object *vfm_rule_json(const struct vfm_rule_result *r);
/* A descriptor: model, version, version_compatible, features, params,
 * allowed. */
struct json_object *vfm_desc_json(const struct vfm_desc *d);

/* The verdict object above on one line, and a newline. */
void vfm_verdict_print_json(FILE *f, const struct vfm_verdict *v,
			    const struct vfm_desc *src,
			    const struct vfm_desc *dst);
/* The descriptor object above (no newline). */
void vfm_desc_print_json(FILE *f, const struct vfm_desc *d);
/* A JSON string literal (json-c's escaping; invalid UTF-8 replaced by
 * U+FFFD). */
void vfm_json_string(FILE *f, const char *s);

/* "PASS model_match: source and ..." for a log line; returns @buf. */
const char *vfm_rule_line(const struct vfm_rule_result *r, char *buf,
			  size_t cap);

#endif
