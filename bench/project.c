// SPDX-License-Identifier: MIT
/*
 * proj_ms: the downtime model (model.c) fitted on this run's migrations
 * (their link: the peer goodput measured in the same run) and evaluated on
 * --link-gbps. With one link only, the agents' per-byte rate is known only
 * when some run was bound by it; vfm-bench-model fits it across links.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

void vb_project(const struct vb_opts *o, struct vb_results *res)
{
	struct vb_mobs *obs = calloc((size_t)res->nruns + 1, sizeof(*obs));
	int n = 0;

	res->have_model = false;
	if (!obs)
		return;
	for (int i = 0; i < res->nruns; i++) {
		const struct vb_run *r = &res->runs[i];

		if (!r->ok || r->stop_ms < 0 || r->final_ms < 0 ||
		    r->peer_Bps <= 0)
			continue;
		obs[n++] =
			(struct vb_mobs){ .size = (double)r->size,
					  .final_bytes = (double)r->final_bytes,
					  .link_Bps = r->peer_Bps,
					  .downtime_ms = r->downtime_ms,
					  .stop_ms = r->stop_ms,
					  .final_ms = r->final_ms,
					  .resume_ms = r->resume_ms,
					  .commit_ms = r->commit_ms,
					  .verify_ms = -1 };
	}
	res->have_model = n && !vb_model_fit(obs, n, -1, &res->model);
	free(obs);
	for (int i = 0; i < res->nruns; i++) {
		struct vb_run *r = &res->runs[i];
		struct vb_mpred p;

		if (!r->ok || !res->have_model)
			continue;
		vb_model_predict(&res->model, (double)r->size,
				 (double)r->final_bytes,
				 vb_link_Bps(o->link_gbps), &p);
		r->proj_downtime_ms = p.downtime_ms;
		/* The link's time for the final bytes against the rest. */
		snprintf(r->dominant, sizeof(r->dominant), "%s",
			 p.link_ms >= p.downtime_ms - p.link_ms ? "transport" :
								  "device");
	}
}

void vb_model_line(FILE *f, const struct vb_results *res)
{
	const struct vb_model *m = &res->model;

	if (!res->have_model) {
		fprintf(f,
			"model: not fitted (no migration with its downtime split and a measured peer)\n");
		return;
	}
	fprintf(f,
		"model (fitted on %d runs, rms %.2f ms): downtime = stop %.3f + resume %.3f + commit %.3f ms + %.3f ns/B x state + final %.3f ms + final bytes x max(1/link, ",
		m->n, m->rms_ms, m->stop_ms, m->resume_ms, m->commit_ms,
		m->verify_ns_per_B, m->final0_ms);
	if (m->cpu_known)
		fprintf(f, "%.3f ns/B = %.0f MB/s of the agents)\n",
			m->cpu_ns_per_B, 1e3 / m->cpu_ns_per_B);
	else
		fprintf(f,
			"?: no run was bound by the agents; the projection assumes the link sets the rate)\n");
}

struct json_object *vb_model_json(const struct vb_results *res)
{
	const struct vb_model *m = &res->model;
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "fitted",
			       json_object_new_boolean(res->have_model));
	if (!res->have_model)
		return o;
	vb_json_put_num(o, "stop_ms", m->stop_ms);
	vb_json_put_num(o, "resume_ms", m->resume_ms);
	vb_json_put_num(o, "commit_ms", m->commit_ms);
	vb_json_put_num(o, "state_ns_per_byte", m->verify_ns_per_B);
	vb_json_put_num(o, "final0_ms", m->final0_ms);
	vb_json_put_num(o, "cpu_ns_per_byte",
			m->cpu_known ? m->cpu_ns_per_B : NAN);
	json_object_object_add(o, "runs", json_object_new_int(m->n));
	json_object_object_add(o, "runs_cpu_bound",
			       json_object_new_int(m->n_cpu_bound));
	vb_json_put_num(o, "rms_ms", m->rms_ms);
	return o;
}
