/* SPDX-License-Identifier: MIT */
/*
 * The compatibility engine: the destination decides whether it can accept
 * the source device's state. Rules, each reported with its outcome:
 *
 *   model       the models are the same
 *   version     the source version lies in the destination's
 *               version_compatible
 *   param       every source param is known at the destination and its
 *               value is in the destination's allowed list (without an
 *               allowed/<name>, only the destination's own value is allowed)
 *   dest-only   a param the destination has and the source lacks is
 *               acceptable only if the destination allows "off" for it; the
 *               verdict then carries a note that it will be set off
 *   feature     every feature the source requires is supported by the
 *               destination
 *   stream      (only when the source states its stream formats) the
 *               source produces a stream format the destination loads; the
 *               sentence names the one it will use: the highest common
 *               (vfm_stream_format_pick). A source that states none produces
 *               format 1, which every destination loads.
 *
 * A device set (several devices in one migration, paired in order) adds
 * three rules to the first device's verdict (vfm_compat_eval_set); each
 * other device has its own verdict with the rules above:
 *   set-size    both sides name the same number of devices
 *   set-p2p     every device on both sides offers the P2P states ("p2p"
 *               feature), so no device is stopped while a peer can still
 *               DMA into it (QEMU refuses a multi-device migration otherwise)
 *   set-members every other device's verdict accepts
 *
 * The verdict lists every rule evaluated, passed and failed, in that order
 * of rules. Codes are STABLE: they travel on the wire and appear in logs and
 * JSON; never renumber or rename one, only add.
 */
#ifndef VFM_COMPAT_H
#define VFM_COMPAT_H

#include <stdbool.h>
#include <stdint.h>

#include "vfm/desc.h"

enum vfm_compat_code {
	VFM_COMPAT_MODEL_MATCH = 1,
	VFM_COMPAT_MODEL_MISMATCH = 2,
	VFM_COMPAT_VERSION_COMPATIBLE = 3,
	VFM_COMPAT_VERSION_INCOMPATIBLE = 4,
	VFM_COMPAT_PARAM_ALLOWED = 5,
	VFM_COMPAT_PARAM_MISSING_AT_DESTINATION = 6,
	VFM_COMPAT_PARAM_VALUE_NOT_ALLOWED = 7,
	VFM_COMPAT_PARAM_DESTINATION_ONLY_OFF = 8,
	VFM_COMPAT_PARAM_DESTINATION_ONLY_NOT_OFF = 9,
	VFM_COMPAT_FEATURE_SUPPORTED = 10,
	VFM_COMPAT_FEATURE_UNSUPPORTED = 11,
	VFM_COMPAT_STREAM_FORMAT_COMMON = 12,
	VFM_COMPAT_STREAM_FORMAT_NONE = 13,
	VFM_COMPAT_SET_SIZE_MATCH = 14,
	VFM_COMPAT_SET_SIZE_MISMATCH = 15,
	VFM_COMPAT_SET_P2P = 16,
	VFM_COMPAT_SET_P2P_MISSING = 17,
	VFM_COMPAT_SET_MEMBERS_ACCEPTED = 18,
	VFM_COMPAT_SET_MEMBER_REFUSED = 19,
};

#define VFM_SET_MAX 8 /* devices in one migration */

#define VFM_VERDICT_RESULTS_MAX \
	(6 + 2 * VFM_DESC_PARAMS_MAX + VFM_DESC_FEATURES_MAX)
#define VFM_VERDICT_NOTES_MAX VFM_DESC_PARAMS_MAX
#define VFM_SENTENCE_MAX 256 /* including the NUL */

struct vfm_rule_result {
	uint16_t code; /* enum vfm_compat_code */
	bool passed;
	char subject[VFM_DESC_NAME_MAX + 1]; /* param/feature name or "" */
	char sentence[VFM_SENTENCE_MAX]; /* for the operator */
};

struct vfm_verdict {
	bool accept; /* true iff no result failed */
	unsigned int nresults;
	struct vfm_rule_result r[VFM_VERDICT_RESULTS_MAX];
	unsigned int nnotes;
	char notes[VFM_VERDICT_NOTES_MAX][VFM_SENTENCE_MAX];
};

/* "model_mismatch", ...; NULL for a code this build does not know. */
const char *vfm_compat_code_name(uint16_t code);
/* The code named @name, or 0. */
uint16_t vfm_compat_code_from_name(const char *name);
/* Whether @code is a passing outcome (false for unknown codes). */
bool vfm_compat_code_passes(uint16_t code);

/* Evaluate with the source's own features as the required set. */
int vfm_compat_eval(const struct vfm_desc *src, const struct vfm_desc *dst,
		    struct vfm_verdict *v);
/* Evaluate with an explicit required-features set (@nreq names). */
int vfm_compat_eval_req(const struct vfm_desc *src, const struct vfm_desc *dst,
			const char *const *req, unsigned int nreq,
			struct vfm_verdict *v);

/*
 * The set rules, appended to @v (the first device's verdict, already
 * evaluated): @src (@nsrc devices) and @dst (@ndst) in set order;
 * @member_accept[i]: whether device i + 2 was accepted, for the @nmembers
 * paired devices after the first. Only when a side names several devices.
 */
void vfm_compat_eval_set(const struct vfm_desc *const *src, unsigned int nsrc,
			 const struct vfm_desc *const *dst, unsigned int ndst,
			 const bool *member_accept, unsigned int nmembers,
			 struct vfm_verdict *v);

/* Count of failed results. */
unsigned int vfm_verdict_failures(const struct vfm_verdict *v);

#endif
