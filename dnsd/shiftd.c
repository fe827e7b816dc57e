/* dnsd/shiftd.c - dnsd runs the staged traffic shifts. See dnsd/shiftd.h. */
#include "dnsd/shiftd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "db/shift.h"

/* Why the target of s must be rolled back now ("" when it need not). */
static void check_target(const struct shift_info *s,
                         const struct hstate_view *hv, char *why,
                         size_t cap)
{
	uint32_t id = (uint32_t)s->target_id;
	double sum = 0;
	unsigned n = 0;

	why[0] = '\0';
	if (!hv || id >= hv->n)
		return;
	if (hstate_view_state(hv, id) == HSTATE_DOWN) {
		snprintf(why, cap, "target %s down (quorum)", s->target);
		return;
	}
	if (s->max_rtt_ms <= 0)
		return;
	for (size_t r = 0; r < hv->n_regions; r++) {
		float v = hstate_view_rtt(hv, r, id);

		if (v >= 0) {
			sum += v;
			n++;
		}
	}
	if (n && sum / n > s->max_rtt_ms)
		snprintf(why, cap, "target %s RTT %.1f ms above %.1f ms (mean "
		         "of %u probe regions)", s->target, sum / n,
		         s->max_rtt_ms, n);
}

/* Is the next stage of s due at now? (As shift_advance decides.) */
static bool stage_due(const struct shift_info *s, double now)
{
	return s->state == SHIFT_RUNNING && s->stage < s->n_steps &&
	       now >= s->stage_started + s->every;
}

int shiftd_tick(struct store *h, const struct hstate_view *hv, double now,
                const struct shiftd_writer *wr, struct shiftd_stats *st)
{
	static char last_err[512];
	struct shift_info *v = NULL, after;
	size_t n = 0;
	char err[512], why[640];
	int rc, changed = 0;

	rc = shift_list_active(h, &v, &n, err, sizeof err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct shift_info *s = &v[i];

		check_target(s, hv, why, sizeof why);
		if (why[0]) {
			rc = wr ? wr->write(wr->ctx, s, why, now,
			                    NULL, err, sizeof err)
			        : shift_rollback(h, s->service_id, why, now,
			                         err, sizeof err);
			if (rc > 0) {
				log_warn("shift %s: rolled back to 0%% at stage "
				         "%u of %u (%u%%): %s", s->service,
				         s->stage, s->n_steps, shift_percent(s),
				         why);
				st->rollbacks++;
				changed++;
			}
			rc = rc < 0 ? rc : 0;
			continue;
		}
		if (wr && !stage_due(s, now))
			continue;
		rc = wr ? wr->write(wr->ctx, s, NULL, now, &after,
		                    err, sizeof err)
		        : shift_advance(h, s->service_id, now, &after, err,
		                        sizeof err);
		if (rc > 0) {
			st->stages++;
			changed++;
			if (after.state == SHIFT_DONE) {
				st->done++;
				log_info("shift %s: stage %u of %u (100%%): done, "
				         "%s is preferred", s->service,
				         after.stage, after.n_steps, s->target);
			} else {
				log_info("shift %s: stage %u of %u (%u%% to %s)",
				         s->service, after.stage, after.n_steps,
				         shift_percent(&after), s->target);
			}
		}
		rc = rc < 0 ? rc : 0;
	}
	free(v);
	if (rc < 0) {
		if (strcmp(err, last_err) != 0)
			log_err("shifts: %s (retrying)", err);
		snprintf(last_err, sizeof last_err, "%s", err);
		return rc;
	}
	last_err[0] = '\0';
	return changed;
}

int shiftd_metrics(struct store *h, const struct shiftd_stats *st,
                   struct evbuffer *out)
{
	struct shift_info *v = NULL;
	size_t n = 0;
	char err[256];
	int rc = 0;

	rc |= evbuffer_add_printf(out,
		"# HELP dnsd_shift_stages_total Shift stages begun by this "
		"dnsd.\n# TYPE dnsd_shift_stages_total counter\n"
		"dnsd_shift_stages_total %llu\n"
		"# HELP dnsd_shift_rollbacks_total Shifts rolled back by this "
		"dnsd (target down or too slow).\n"
		"# TYPE dnsd_shift_rollbacks_total counter\n"
		"dnsd_shift_rollbacks_total %llu\n"
		"# HELP dnsd_shift_done_total Shifts completed by this dnsd.\n"
		"# TYPE dnsd_shift_done_total counter\n"
		"dnsd_shift_done_total %llu\n",
		(unsigned long long)st->stages,
		(unsigned long long)st->rollbacks,
		(unsigned long long)st->done) < 0;
	if (h && shift_list_active(h, &v, &n, err, sizeof err) == 0 && n) {
		rc |= evbuffer_add_printf(out,
			"# HELP dnsd_shift_percent Percent of clients a running "
			"shift sends to its target.\n"
			"# TYPE dnsd_shift_percent gauge\n") < 0;
		for (size_t i = 0; i < n; i++)
			rc |= evbuffer_add_printf(out,
				"dnsd_shift_percent{service=\"%s\",target=\"%s\"} "
				"%u\n", v[i].service, v[i].target,
				shift_percent(&v[i])) < 0;
		rc |= evbuffer_add_printf(out,
			"# HELP dnsd_shift_stage Current stage (from 1) of a "
			"running shift.\n# TYPE dnsd_shift_stage gauge\n") < 0;
		for (size_t i = 0; i < n; i++)
			rc |= evbuffer_add_printf(out,
				"dnsd_shift_stage{service=\"%s\",target=\"%s\"} "
				"%u\n", v[i].service, v[i].target,
				v[i].stage) < 0;
	}
	free(v);
	return rc ? -ENOMEM : 0;
}
