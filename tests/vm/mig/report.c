// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdio.h>

#include "report.h"

static unsigned int nfail;

__attribute__((format(printf, 3, 0))) static void
vline(const char *kind, const char *name, const char *fmt, va_list ap)
{
	printf("%s %s", kind, name);
	if (fmt) {
		fputs(" - ", stdout);
		vprintf(fmt, ap);
	}
	putchar('\n');
	fflush(stdout);
}

void vfm_ok(const char *name)
{
	printf("ok %s\n", name);
	fflush(stdout);
}

void vfm_fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	nfail++;
	va_start(ap, fmt);
	vline("not ok", name, fmt, ap);
	va_end(ap);
}

void vfm_skip(const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline("skip", name, fmt, ap);
	va_end(ap);
}

bool vfm_expect(bool cond, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (cond) {
		vfm_ok(name);
		return true;
	}
	nfail++;
	va_start(ap, fmt);
	vline("not ok", name, fmt, ap);
	va_end(ap);
	return false;
}

void vfm_measure(const char *name, double value, const char *unit)
{
	printf("# measure %s %.3f %s\n", name, value, unit);
	fflush(stdout);
}

void vfm_note(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

unsigned int vfm_failures(void)
{
	return nfail;
}
