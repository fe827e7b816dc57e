/* db/import.h - importing a configuration document as a stream: the
 * document (db/export.h's format) is read piece by piece, one service
 * object at a time, so memory stays bounded whatever its size (the names
 * seen are kept, a few dozen bytes each).
 *
 * Same results as cfg_import_plan (db/export.h): every service is
 * validated as the add commands do, planned against the store by
 * identity (db/diff.h: endpoints that stay keep their row ids), guarded
 * (unless the write context forces), written, and recorded (one new
 * store version, audit and changes rows in plan order; a service the
 * import adds is one audit row, db/audit_sql.h cfg_added_text). A
 * service equal to its stored rows costs three reads, a new one five
 * inserts. Services the
 * document does not name are removed. New rows are numbered in document
 * order (cfg_import_plan numbers them in name order: the same for a
 * document in name order, as cfg_export writes it). Everything is one
 * transaction: on
 * any error the store is unchanged and err names the service, the field
 * and where in the document (line, byte). Load time only. */
#ifndef DB_IMPORT_H
#define DB_IMPORT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

struct store;

/* How far an import is. */
struct cfg_import_progress {
	unsigned long long bytes;       /* of the document read */
	unsigned long long total;       /* its size, 0 when unknown (a pipe) */
	size_t services;                /* services read */
	size_t changes;                 /* changes found */
	double elapsed;                 /* seconds since the start */
	bool done;                      /* the last call */
};

struct cfg_import_out {
	/* Each change of the plan, in plan order (db/diff.h): its text
	 * line and its change object. Called after the writes are
	 * committed (before the rollback of a dry run). May be NULL. */
	void (*change)(void *arg, const char *line, const json_t *change);
	/* Called a few times per second while reading, and once at the
	 * end with done set. May be NULL. */
	void (*progress)(void *arg, const struct cfg_import_progress *p);
	void *arg;
	/* Each service of the document once it is read and valid, by its
	 * canonical name, in document order (before the plan is applied).
	 * May be NULL. */
	void (*service)(void *arg, const char *name);
};

struct cfg_import_result {
	size_t services;                /* in the document */
	size_t changes;                 /* in the plan */
	size_t removed_services;
	long long version;              /* the store's, after the import */
};

/* Imports the document read from in (to its end) into db, replacing the
 * whole configuration. flags: db/export.h's CFG_IMPORT_DRY_RUN (or the
 * write context's dry run) plans, reports and writes nothing. out and
 * res may be NULL. 0, or a negative errno (as cfg_import) with err. */
int cfg_import_stream(struct store *db, FILE *in, unsigned flags,
                      const struct cfg_import_out *out,
                      struct cfg_import_result *res, char *err,
                      size_t errlen);

#endif
