/* SPDX-License-Identifier: MIT */
/*
 * Printing a compatibility verdict: a table for people, JSON for machines,
 * one line per rule for logs. Used by `vfmig compat` and the handshake log.
 */
#ifndef VFM_AGENT_VERDICT_FMT_H
#define VFM_AGENT_VERDICT_FMT_H

#include <stddef.h>
#include <stdio.h>

#include "vfm/compat.h"
#include "vfm/desc.h"

/* The table: a heading naming both devices (either may be NULL), every
 * rule with PASS/FAIL, its code, subject and sentence, the notes, and a
 * closing line with the decision. */
void vfm_verdict_print_table(FILE *f, const struct vfm_verdict *v,
			     const struct vfm_desc *src,
			     const struct vfm_desc *dst);

/* One JSON object (and a newline):
 * {"compatible":bool,"failed":n,"source":{...}|null,"destination":...,
 *  "rules":[{"code":"model_match","code_num":1,"passed":true,
 *            "subject":"","sentence":"..."}],"notes":["..."]} */
void vfm_verdict_print_json(FILE *f, const struct vfm_verdict *v,
			    const struct vfm_desc *src,
			    const struct vfm_desc *dst);

/* A descriptor as a JSON object (model, version, version_compatible,
 * features, params, allowed). */
void vfm_desc_print_json(FILE *f, const struct vfm_desc *d);

/* A JSON string literal with quotes; control characters, quotes and
 * backslashes escaped, invalid UTF-8 replaced by U+FFFD. */
void vfm_json_string(FILE *f, const char *s);

/* "PASS model_match: source and ..." for a log line; returns @buf. */
const char *vfm_rule_line(const struct vfm_rule_result *r, char *buf,
			  size_t cap);

#endif
