/* dnsd/api_config.c - the configuration REST API. See dnsd/api_config.h. */
#include "dnsd/api_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "db/audit.h"
#include "db/diff.h"
#include "db/edit.h"
#include "db/export.h"
#include "dnsd/api.h"

#define PREFIX "/v1/services"

static int status_of(int rc)
{
	switch (rc) {
	case -EINVAL:
	case -ERANGE:
		return 400;
	case -ENOENT:
		return 404;
	case -EEXIST:
	case -EPERM:
	case -EAGAIN:           /* etcd: a conflict after every retry */
		return 409;
	case -ETIMEDOUT:        /* etcd: outcome unknown */
	case -EHOSTDOWN:        /* etcd: unavailable, nothing changed */
		return 503;
	default:
		return 500;
	}
}

static json_t *error(const char *msg)
{
	return json_pack("{s:s}", "error", msg);
}

/* The reply of a write: what changed, the version. */
static json_t *changes(const struct cfg_write *w)
{
	return json_pack("{s:o, s:I, s:b}", "changes", cfg_plan_json(w->done),
	                 "version", (json_int_t)w->version, "dry_run",
	                 w->dry_run);
}

/* The service NAME as exported (NULL: all), or NULL with *status. */
static json_t *service_doc(struct store *db, const char *name, int *status,
                           json_t **reply)
{
	char err[512];
	json_t *doc = cfg_export(db, name, err, sizeof err);

	if (!doc) {
		*status = strstr(err, "not found") ? 404 : status_of(-EINVAL);
		*reply = error(err);
	}
	return doc;
}

/* The member of arr whose key is val (NULL: none). */
static json_t *find_in(json_t *arr, const char *key, const char *val)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(json_object_get(v, key)), val) == 0)
			return v;
	return NULL;
}

static int get(struct store *db, char **seg, int n, json_t **reply)
{
	int status = 200;
	json_t *doc = service_doc(db, n > 0 ? seg[0] : NULL, &status, reply);
	json_t *s, *v;
	char canon[96], err[256];

	if (!doc)
		return status;
	s = json_array_get(json_object_get(doc, "services"), 0);
	if (n == 0) {
		*reply = json_pack("{s:O}", "services",
		                   json_object_get(doc, "services"));
	} else if (n == 1) {
		*reply = json_incref(s);
	} else if (n == 2) {
		*reply = json_pack("{s:O}", seg[1], json_object_get(s, seg[1]));
	} else if (strcmp(seg[1], "endpoints") == 0) {
		if (!(v = find_in(json_object_get(s, "endpoints"), "target",
		                  seg[2]))) {
			status = 404;
			*reply = error("no such endpoint");
		} else {
			*reply = json_incref(v);
		}
	} else {
		if (cfg_canon_match(seg[2], canon, err, sizeof err) < 0) {
			status = 400;
			*reply = error(err);
		} else if (!(v = find_in(json_object_get(s, "rules"), "match",
		                         canon))) {
			status = 404;
			*reply = error("no such rule");
		} else {
			*reply = json_incref(v);
		}
	}
	json_decref(doc);
	return status;
}

/* The rule's targets as a list of strings (or -EINVAL). */
static int targets_of(const json_t *body, const char **t, size_t *n,
                      char *err, size_t errlen)
{
	const json_t *arr = json_object_get(body, "targets"), *v;
	const char *k;
	size_t i;

	json_object_foreach((json_t *)body, k, v)
		if (strcmp(k, "targets") != 0) {
			snprintf(err, errlen, "rule: unknown key '%s' (valid: "
			         "'targets')", k);
			return -EINVAL;
		}
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > 64) {
		snprintf(err, errlen, "rule: 'targets' must be a list of 1..64 "
		         "endpoint targets");
		return -EINVAL;
	}
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "rule: targets[%zu] must be a "
			         "string", i);
			return -EINVAL;
		}
		t[i] = json_string_value(v);
	}
	*n = json_array_size(arr);
	return 0;
}

static int write(struct store *db, const char *method, char **seg, int n,
                 const json_t *body, char *err, size_t errlen)
{
	bool del = strcmp(method, "DELETE") == 0;
	bool post = strcmp(method, "POST") == 0;
	int rc;

	if (post != (n == 0))
		return -EOPNOTSUPP;
	if (!del && !json_is_object(body)) {
		snprintf(err, errlen, "body: a JSON object is required");
		return -EINVAL;
	}
	if (n <= 1) {                   /* a service */
		struct cfg_service s = { .name = n ? seg[0] : NULL };

		if (del)
			return cfg_service_rm(db, seg[0], err, errlen);
		if ((rc = cfg_service_parse(body, &s, false, "service", err,
		                            errlen)) < 0)
			return rc;
		if (n && strcmp(s.name, seg[0]) != 0 &&
		    json_object_get(body, "name")) {
			char a[256], b[256];

			if (cfg_canon_name(s.name, a, err, errlen) < 0 ||
			    cfg_canon_name(seg[0], b, err, errlen) < 0)
				return -EINVAL;
			if (strcmp(a, b) != 0) {
				snprintf(err, errlen, "service: 'name' %s is not "
				         "the %s of the path", a, b);
				return -EINVAL;
			}
		}
		if (post || !s.policy)
			return post ? cfg_service_add(db, &s, err, errlen) :
			       cfg_service_set(db, &s, err, errlen);
		rc = cfg_service_set(db, &s, err, errlen);
		return rc == -ENOENT ? cfg_service_add(db, &s, err, errlen) : rc;
	}
	if (n == 3 && strcmp(seg[1], "endpoints") == 0) {
		struct cfg_endpoint e = { .target = seg[2] };

		if (del)
			return cfg_endpoint_rm(db, seg[0], seg[2], err, errlen);
		if ((rc = cfg_endpoint_parse(body, &e, "endpoint", err,
		                             errlen)) < 0)
			return rc;
		if (strcmp(e.target, seg[2]) != 0) {
			snprintf(err, errlen, "endpoint: 'target' %s is not the "
			         "%s of the path", e.target, seg[2]);
			return -EINVAL;
		}
		rc = cfg_endpoint_set(db, seg[0], &e, err, errlen);
		if (rc == -ENOENT && strstr(err, "not an endpoint"))
			rc = cfg_endpoint_add(db, seg[0], &e, err, errlen);
		return rc;
	}
	if (n == 3 && strcmp(seg[1], "rules") == 0) {
		const char *t[64];
		size_t nt = 0;

		if (del)
			return cfg_rule_rm(db, seg[0], seg[2], err, errlen);
		if ((rc = targets_of(body, t, &nt, err, errlen)) < 0)
			return rc;
		return cfg_rule_put(db, seg[0], seg[2], t, nt, err, errlen);
	}
	return -EOPNOTSUPP;
}

int apicfg_handle(struct store *db, const char *method, const char *path,
                  const json_t *body, const struct api_caller *who,
                  json_t **reply)
{
	char *copy = strdup(path + strlen(PREFIX)), *raw[4], *seg[4] = { NULL },
	     *save = NULL;
	struct cfg_write w = { .who = who->name, .source = "api",
	                       .force = who->force, .dry_run = who->dry_run,
	                       .log_stderr = true };
	char err[1024] = "";
	int n = 0, status, rc;
	bool bad = false;

	*reply = NULL;
	if (!copy) {
		*reply = error("out of memory");
		return 500;
	}
	for (char *p = strtok_r(copy, "/", &save); p;
	     p = strtok_r(NULL, "/", &save)) {
		if (n == 4) {
			bad = true;
			break;
		}
		raw[n++] = p;
	}
	for (int i = 0; i < n && !bad; i++)
		if (!(seg[i] = evhttp_uridecode(raw[i], 0, NULL)))
			bad = true;
	if (bad || n == 4 || (n >= 2 && strcmp(seg[1], "endpoints") != 0 &&
	                      strcmp(seg[1], "rules") != 0)) {
		status = 404;
		*reply = error("no such resource");
		goto out;
	}
	if (strcmp(method, "GET") == 0) {
		status = get(db, seg, n, reply);
		goto out;
	}
	cfg_write_use(&w);
	rc = write(db, method, seg, n, body, err, sizeof err);
	cfg_write_use(NULL);
	if (rc == -EOPNOTSUPP) {
		status = 405;
		*reply = error("method not allowed here");
	} else if (rc < 0) {
		status = status_of(rc);
		*reply = error(err[0] ? err : strerror(-rc));
	} else {
		status = strcmp(method, "POST") == 0 ? 201 : 200;
		*reply = changes(&w);
	}
	cfg_write_done(&w);
out:
	for (int i = 0; i < 4; i++)
		free(seg[i]);
	free(copy);
	return status;
}
