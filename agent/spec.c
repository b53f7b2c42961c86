// SPDX-License-Identifier: MIT
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

int vfm_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	double mult = 1;

	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'T':
		mult *= 1024;
		/* fallthrough */
	case 'G':
		mult *= 1024;
		/* fallthrough */
	case 'M':
		mult *= 1024;
		/* fallthrough */
	case 'K':
		mult *= 1024;
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		break;
	default:
		break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -EINVAL;
	v *= mult;
	if (v >= 18446744073709551615.0)
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

int vfm_parse_kv(char *s, struct vfm_kv *kv, int max)
{
	int n = 0;
	char *tok = s;

	if (!*s)
		return 0;
	while (tok) {
		char *next = strchr(tok, ',');
		char *eq;

		if (next)
			*next++ = '\0';
		eq = strchr(tok, '=');
		if (eq) {
			if (n == max || eq == tok)
				return -EINVAL;
			*eq = '\0';
			kv[n].key = tok;
			kv[n].val = eq + 1;
			n++;
		} else {
			/* Continuation of the previous value: undo the cut. */
			if (!n || !*tok)
				return -EINVAL;
			tok[-1] = ',';
		}
		tok = next;
	}
	return n;
}
