/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Set-returning functions behind flowstate's monitoring views.
 *
 * Each function copies what it reports out of shared memory under a shared
 * lock and builds its rows after releasing it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "shmem.h"

#define WORKERS_COLS 10

PG_FUNCTION_INFO_V1(flowstate_workers);

static const char *
slot_state_name(const WorkerSlot *slot)
{
	switch (slot->state)
	{
		case SLOT_WANTED:
			return slot->suspended_by != 0 ? "suspended" : "waiting";
		case SLOT_STARTING:
			return "starting";
		case SLOT_RUNNING:
			return slot->confirmed ? "running" : "starting";
		case SLOT_EXITED:
			return "exited";
		case SLOT_BACKOFF:
			return "backoff";
		case SLOT_FREE:
			break;
	}
	return "free";
}

static Datum
nullable_timestamp(TimestampTz ts, bool *isnull)
{
	*isnull = (ts == 0);
	return TimestampTzGetDatum(ts);
}

/*
 * flowstate_workers returns one row for the launcher and one per worker
 * slot in use: what runs where, since when, and how it last failed.  As in
 * pg_stat_activity, the error text of workers in other databases is shown
 * only to members of pg_read_all_stats: it can name their relations.
 */
Datum
flowstate_workers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerSlot *slots;
	int			nslots;
	pid_t		launcher_pid;
	TimestampTz launcher_started_at;
	Datum		values[WORKERS_COLS];
	bool		nulls[WORKERS_COLS];
	bool		see_all = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);

	InitMaterializedSRF(fcinfo, 0);

	nslots = Flowstate->nslots;
	slots = palloc(sizeof(WorkerSlot) * nslots);
	LWLockAcquire(Flowstate->lock, LW_SHARED);
	memcpy(slots, Flowstate->slots, sizeof(WorkerSlot) * nslots);
	launcher_pid = Flowstate->launcher_pid;
	launcher_started_at = Flowstate->launcher_started_at;
	LWLockRelease(Flowstate->lock);

	memset(nulls, true, sizeof(nulls));
	values[0] = CStringGetTextDatum("launcher");
	nulls[0] = false;
	values[2] = Int32GetDatum((int32) launcher_pid);
	nulls[2] = (launcher_pid == 0);
	values[3] = CStringGetTextDatum(launcher_pid != 0 ? "running" : "stopped");
	nulls[3] = false;
	values[4] = nullable_timestamp(launcher_pid != 0 ? launcher_started_at : 0, &nulls[4]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	for (int i = 0; i < nslots; i++)
	{
		WorkerSlot *slot = &slots[i];
		char	   *datname;

		if (slot->state == SLOT_FREE)
			continue;

		memset(nulls, false, sizeof(nulls));
		values[0] = CStringGetTextDatum(slot->kind == WORKER_MANAGER ? "manager" : "unknown");
		datname = get_database_name(slot->dboid);
		values[1] = datname ? DirectFunctionCall1(namein, CStringGetDatum(datname)) : (Datum) 0;
		nulls[1] = (datname == NULL);
		values[2] = Int32GetDatum((int32) slot->pid);
		nulls[2] = (slot->pid == 0);
		values[3] = CStringGetTextDatum(slot_state_name(slot));
		values[4] = nullable_timestamp(slot->started_at, &nulls[4]);
		values[5] = Int32GetDatum(slot->failures);
		if (slot->last_error[0] == '\0')
			nulls[6] = true;
		else if (see_all || slot->dboid == MyDatabaseId)
			values[6] = CStringGetTextDatum(slot->last_error);
		else
			values[6] = CStringGetTextDatum("<insufficient privilege>");
		values[7] = nullable_timestamp(slot->last_error_at, &nulls[7]);
		values[8] = nullable_timestamp(slot->state == SLOT_BACKOFF ? slot->retry_at : 0,
									   &nulls[8]);
		values[9] = CStringGetTextDatum(slot->activity);
		nulls[9] = (slot->activity[0] == '\0');
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}
