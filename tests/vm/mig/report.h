/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Result lines of the guest test programs, in the format tests/vm's driver
 * reads: "ok NAME", "not ok NAME - reason", "skip NAME - reason" and
 * "# measure NAME VALUE UNIT".
 */
#ifndef VFM_VM_REPORT_H
#define VFM_VM_REPORT_H

#include <stdbool.h>

void vfm_ok(const char *name);
void vfm_fail(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void vfm_skip(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* ok when cond holds, else not ok with the reason. Returns cond. */
bool vfm_expect(bool cond, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void vfm_measure(const char *name, double value, const char *unit);
/* Informational line (prefixed "# "), never parsed as a result. */
void vfm_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

unsigned int vfm_failures(void);

#endif
