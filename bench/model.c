// SPDX-License-Identifier: MIT
/*
 * The downtime model (model.h): each part fitted on its own measurement.
 * The fixed parts are medians; the digest is a line through the origin in
 * the state's size; the final phase is final0 + bytes * max(1 / link, cpu),
 * fitted by least squares exactly: between two consecutive link costs the
 * set of runs bound by cpu is fixed, so the fit is a straight line there
 * and each such interval is solved in closed form.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double vb_model_median(const double *v, int n)
{
	double *c, m;

	if (n <= 0)
		return NAN;
	c = malloc((size_t)n * sizeof(*c));
	if (!c)
		return NAN;
	memcpy(c, v, (size_t)n * sizeof(*c));
	qsort(c, (size_t)n, sizeof(*c), cmp_double);
	m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

static bool usable(const struct vb_mobs *o, int skip_cell)
{
	return o->cell != skip_cell && o->link_Bps > 0 && o->size > 0 &&
	       o->final_bytes >= 0 && o->downtime_ms >= 0 && o->stop_ms >= 0 &&
	       o->final_ms >= 0 && o->resume_ms >= 0 && o->commit_ms >= 0;
}

/* Link cost in ms per byte. */
static double link_ms_per_B(double link_Bps)
{
	return 1e3 / link_Bps;
}

/* final_ms = f0 + B * max(a, c) on the runs in @x (B, a, y triples). */
struct fin {
	double B, a, y;
};

static double fin_sse(const struct fin *x, int n, double f0, double c)
{
	double s = 0;

	for (int i = 0; i < n; i++) {
		double e = x[i].y - f0 - x[i].B * fmax(x[i].a, c);

		s += e * e;
	}
	return s;
}

/* Least squares of r = f0 + z c with f0 >= 0 and lo <= c <= hi. */
static void line_fit(const double *r, const double *z, int n, double lo,
		     double hi, double *f0, double *c)
{
	double mr = 0, mz = 0, szz = 0, szr = 0;

	for (int i = 0; i < n; i++) {
		mr += r[i] / n;
		mz += z[i] / n;
	}
	for (int i = 0; i < n; i++) {
		szz += (z[i] - mz) * (z[i] - mz);
		szr += (z[i] - mz) * (r[i] - mr);
	}
	*c = szz > 0 ? szr / szz : lo;
	*c = fmin(fmax(*c, lo), hi);
	*f0 = mr - *c * mz;
	if (*f0 < 0) {
		/* Through the origin, then clamp again. */
		double zz = 0, zr = 0;

		for (int i = 0; i < n; i++) {
			zz += z[i] * z[i];
			zr += z[i] * r[i];
		}
		*c = zz > 0 ? zr / zz : lo;
		*c = fmin(fmax(*c, lo), hi);
		*f0 = 0;
		for (int i = 0; i < n; i++)
			*f0 += (r[i] - z[i] * *c) / n;
		*f0 = fmax(*f0, 0);
	}
}

static int fit_final(const struct fin *x, int n, struct vb_model *m)
{
	double *a = malloc((size_t)(n + 1) * sizeof(*a));
	double *r = malloc((size_t)(n + 1) * sizeof(*r));
	double *z = malloc((size_t)(n + 1) * sizeof(*z));
	double best = INFINITY;
	int na = 0;

	if (!a || !r || !z) {
		free(a);
		free(r);
		free(z);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		if (x[i].B > 0)
			a[na++] = x[i].a;
	qsort(a, (size_t)na, sizeof(*a), cmp_double);
	/* Interval k: c in [a[k-1], a[k]] (k = 0: below every link cost,
	 * where c does not matter: no run is cpu-bound). */
	for (int k = 0; k <= na; k++) {
		double lo = k ? a[k - 1] : 0, hi = k < na ? a[k] : INFINITY;
		double f0, c, sse;

		if (k && k < na && a[k] == a[k - 1])
			continue;
		for (int i = 0; i < n; i++) {
			bool cpu = x[i].B > 0 && k && x[i].a <= lo;

			r[i] = x[i].y - (cpu ? 0 : x[i].B * x[i].a);
			z[i] = cpu ? x[i].B : 0;
		}
		if (!k) {
			f0 = 0;
			for (int i = 0; i < n; i++)
				f0 += r[i] / n;
			f0 = fmax(f0, 0);
			c = 0;
		} else {
			line_fit(r, z, n, lo, hi, &f0, &c);
		}
		sse = fin_sse(x, n, f0, c);
		/* A cpu cost only when it explains the runs better. */
		if (sse < best * (1 - 1e-9) - 1e-12) {
			best = sse;
			m->final0_ms = f0;
			m->cpu_ns_per_B = c * 1e6;
			m->cpu_known = k > 0;
		}
	}
	m->n_cpu_bound = 0;
	for (int i = 0; i < n && m->cpu_known; i++)
		m->n_cpu_bound += x[i].B > 0 && x[i].a < m->cpu_ns_per_B / 1e6;
	free(a);
	free(r);
	free(z);
	return 0;
}

int vb_model_fit(const struct vb_mobs *obs, int n, int skip_cell,
		 struct vb_model *m)
{
	double *v = calloc((size_t)n + 1, sizeof(*v));
	struct fin *x = calloc((size_t)n + 1, sizeof(*x));
	double vs = 0, ss = 0, ms = 0, msz = 0, mc = 0, szz = 0, szc = 0;
	int k = 0, nv = 0, ret = 0;

	memset(m, 0, sizeof(*m));
	if (!v || !x) {
		ret = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (usable(&obs[i], skip_cell))
			k++;
	if (!k) {
		ret = -EINVAL;
		goto out;
	}
	m->n = k;
#define MED(expr)                                            \
	({                                                   \
		int j_ = 0;                                  \
		for (int i_ = 0; i_ < n; i_++) {             \
			const struct vb_mobs *o_ = &obs[i_]; \
			if (usable(o_, skip_cell))           \
				v[j_++] = (expr);            \
		}                                            \
		vb_model_median(v, j_);                      \
	})
	m->stop_ms = MED(o_->stop_ms);
	m->resume_ms = MED(o_->resume_ms);
	/* The digest, where the destination's log told it. */
	for (int i = 0; i < n; i++) {
		const struct vb_mobs *o = &obs[i];

		if (usable(o, skip_cell) && o->verify_ms >= 0) {
			vs += o->verify_ms * o->size;
			ss += o->size * o->size;
			v[nv++] = fmax(o->commit_ms - o->verify_ms, 0);
		}
	}
	if (nv) {
		m->verify_ns_per_B = vs / ss * 1e6;
		m->commit_ms = vb_model_median(v, nv);
	} else {
		/* Not known: commit = c0 + k * size by least squares. */
		for (int i = 0; i < n; i++)
			if (usable(&obs[i], skip_cell)) {
				msz += obs[i].size / k;
				mc += obs[i].commit_ms / k;
			}
		for (int i = 0; i < n; i++)
			if (usable(&obs[i], skip_cell)) {
				szz += (obs[i].size - msz) *
				       (obs[i].size - msz);
				szc += (obs[i].size - msz) *
				       (obs[i].commit_ms - mc);
			}
		ms = szz > 0 ? fmax(szc / szz, 0) : 0;
		m->verify_ns_per_B = ms * 1e6;
		m->commit_ms = fmax(mc - ms * msz, 0);
	}
	k = 0;
	for (int i = 0; i < n; i++) {
		const struct vb_mobs *o = &obs[i];

		if (!usable(o, skip_cell))
			continue;
		x[k].B = o->final_bytes;
		x[k].a = link_ms_per_B(o->link_Bps);
		x[k].y = o->final_ms;
		k++;
	}
	ret = fit_final(x, k, m);
	if (ret)
		goto out;
	ms = 0;
	for (int i = 0; i < n; i++) {
		const struct vb_mobs *o = &obs[i];
		struct vb_mpred p;

		if (!usable(o, skip_cell))
			continue;
		vb_model_predict(m, o->size, o->final_bytes, o->link_Bps, &p);
		ms += (p.downtime_ms - o->downtime_ms) *
		      (p.downtime_ms - o->downtime_ms);
	}
	m->rms_ms = sqrt(ms / m->n);
#undef MED
out:
	free(v);
	free(x);
	return ret;
}

void vb_model_predict(const struct vb_model *m, double size, double final_bytes,
		      double link_Bps, struct vb_mpred *p)
{
	double a = link_ms_per_B(link_Bps), c = m->cpu_ns_per_B / 1e6;

	p->stop_ms = m->stop_ms;
	p->resume_ms = m->resume_ms;
	p->commit_ms = m->commit_ms + m->verify_ns_per_B / 1e6 * size;
	p->link_ms = final_bytes * a;
	p->final_ms = m->final0_ms + final_bytes * fmax(a, c);
	p->link_bound = a >= c;
	p->downtime_ms = p->stop_ms + p->final_ms + p->resume_ms + p->commit_ms;
}

int vb_model_cell_errors(const struct vb_mobs *obs, int n, int ncells,
			 struct vb_cell_err *out)
{
	double *meas = calloc((size_t)n + 1, sizeof(*meas));
	double *pred = calloc((size_t)n + 1, sizeof(*pred));
	double *loo = calloc((size_t)n + 1, sizeof(*loo));
	struct vb_model all, m;
	int ret = 0;

	if (!meas || !pred || !loo) {
		ret = -ENOMEM;
		goto out;
	}
	ret = vb_model_fit(obs, n, -1, &all);
	if (ret)
		goto out;
	for (int c = 0; c < ncells; c++) {
		struct vb_cell_err *e = &out[c];
		bool have_loo = !vb_model_fit(obs, n, c, &m);
		int k = 0;

		memset(e, 0, sizeof(*e));
		e->cell = c;
		for (int i = 0; i < n; i++) {
			const struct vb_mobs *o = &obs[i];
			struct vb_mpred p;

			if (o->cell != c || !usable(o, -1))
				continue;
			meas[k] = o->downtime_ms;
			vb_model_predict(&all, o->size, o->final_bytes,
					 o->link_Bps, &p);
			pred[k] = p.downtime_ms;
			if (have_loo) {
				vb_model_predict(&m, o->size, o->final_bytes,
						 o->link_Bps, &p);
				loo[k] = p.downtime_ms;
			}
			if (!k || o->downtime_ms < e->meas_min)
				e->meas_min = o->downtime_ms;
			if (!k || o->downtime_ms > e->meas_max)
				e->meas_max = o->downtime_ms;
			k++;
		}
		e->runs = k;
		if (!k)
			continue;
		e->meas_p50 = vb_model_median(meas, k);
		e->pred_ms = vb_model_median(pred, k);
		e->err = e->pred_ms / e->meas_p50 - 1;
		e->loo_pred_ms = have_loo ? vb_model_median(loo, k) : NAN;
		e->loo_err = have_loo ? e->loo_pred_ms / e->meas_p50 - 1 : NAN;
	}
out:
	free(meas);
	free(pred);
	free(loo);
	return ret;
}
