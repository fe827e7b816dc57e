/* dnsd/control.h - dnsd's control thread: loads the zone files, GeoIP and
 * the store; builds and publishes snapshots (dnsd/snap.h) when something
 * changes - SIGHUP reloads, commits to the store (PRAGMA data_version,
 * polled), a replaced GeoIP file, new health views; and serves the HTTP
 * API (dnsd/api.h). Load time only: the answering threads are net.c's.
 * A reload or poll that fails keeps the data in force serving. */
#ifndef DNSD_CONTROL_H
#define DNSD_CONTROL_H

#include "dnsd/config.h"

struct control;
struct rrl_conf;

/* Loads everything conf names: zone files, GeoIP, the store (created with
 * the current schema if missing, read-only with conf->check), and the
 * answer settings (default location parsed here, once). conf is copied;
 * the strings it points to are borrowed and must outlive the control.
 * *problems gets the number of problems, each logged. Never NULL. */
struct control *control_new(const struct config *conf, unsigned *problems);
/* --check: loads the services from the store against the zones, as
 * serving would (skipped rows are logged, not counted). Returns the number
 * of problems (a store that cannot be read). */
unsigned control_check(struct control *c);
/* Publishes the first snapshot, starts the health service, opens the
 * sockets (workers not started yet), installs the signal handlers and the
 * store poll, and starts the API. Exits with a logged reason on failure.
 * Call before dropping privileges. */
void control_start(struct control *c, const struct rrl_conf *rrl);
/* Starts the workers and runs the control loop until SIGTERM or SIGINT. */
void control_run(struct control *c);
/* Stops and frees everything (the store is closed, health persisted).
 * NULL is fine. */
void control_free(struct control *c);

#endif
