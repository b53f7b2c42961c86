// SPDX-License-Identifier: MIT
/* The order in which a device set changes state (see quiesce.h). */
#include <string.h>

#include "quiesce.h"
#include "uapi/vfmig.h"

#define S(x) VFIO_DEVICE_STATE_##x
#define P2P_STEP 0x80000000u /* left out without P2P */

/* Each row: from, to, then the steps (0-terminated; the last is @to). */
static const struct {
	uint32_t from, to;
	uint32_t steps[VFM_QS_STEPS_MAX];
} table[] = {
	/* The source stops: no new peer DMA anywhere before any stops. */
	{ S(PRE_COPY),
	  S(STOP_COPY),
	  { P2P_STEP | S(PRE_COPY_P2P), S(STOP_COPY) } },
	{ S(RUNNING),
	  S(STOP_COPY),
	  { P2P_STEP | S(RUNNING_P2P), S(STOP_COPY) } },
	{ S(PRE_COPY), S(STOP), { P2P_STEP | S(PRE_COPY_P2P), S(STOP) } },
	{ S(RUNNING), S(STOP), { P2P_STEP | S(RUNNING_P2P), S(STOP) } },
	/* The destination starts: every device answers before any runs. */
	{ S(STOP), S(RUNNING), { P2P_STEP | S(RUNNING_P2P), S(RUNNING) } },
	/* The source resumes after it stopped: the same, through STOP. */
	{ S(STOP_COPY),
	  S(RUNNING),
	  { S(STOP), P2P_STEP | S(RUNNING_P2P), S(RUNNING) } },
	{ S(PRE_COPY_P2P), S(RUNNING), { S(RUNNING_P2P), S(RUNNING) } },
	{ S(RUNNING_P2P), S(RUNNING), { S(RUNNING) } },
};

void vfm_qs_plan(uint32_t from, uint32_t to, bool p2p, struct vfm_qs_plan *p)
{
	memset(p, 0, sizeof(*p));
	if (from == to)
		return;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (table[i].from != from || table[i].to != to)
			continue;
		for (unsigned int k = 0;
		     k < VFM_QS_STEPS_MAX && table[i].steps[k]; k++) {
			uint32_t st = table[i].steps[k];

			if ((st & P2P_STEP) && !p2p)
				continue;
			p->step[p->nsteps++] = st & ~P2P_STEP;
		}
		return;
	}
	/* Anything else (e.g. RUNNING -> PRE_COPY, RESUMING -> STOP, to
	 * RESUMING) starts or ends no device's DMA: one step. */
	p->step[p->nsteps++] = to;
}
