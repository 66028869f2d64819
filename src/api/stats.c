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

#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/numeric.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "workers/manager.h"
#include "workers/registry.h"
#include "state/state_store.h"

#define WORKERS_COLS 10
#define VIEWS_COLS 21
#define SOURCES_COLS 21

extern PGDLLEXPORT Datum flowstate_workers(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_workers);
extern PGDLLEXPORT Datum flowstate_views(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_views);
extern PGDLLEXPORT Datum flowstate_sources(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_sources);

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
		values[0] = CStringGetTextDatum(slot->kind == WORKER_MANAGER ? "manager" :
										slot->kind == WORKER_DECODER ? "decoder" : "kafka");
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

static const char *
view_status_name(int status)
{
	switch ((ViewStatus) status)
	{
		case VIEW_STARTING:
			return "starting";
		case VIEW_BACKFILLING:
			return "backfilling";
		case VIEW_RUNNING:
			return "running";
		case VIEW_FULL:
			return "over memory limit";
	}
	return "unknown";
}

/* WAL bytes between two positions, as pg_wal_lsn_diff gives them. */
static Datum
lag_bytes(XLogRecPtr from, XLogRecPtr to)
{
	if (XLogRecPtrIsInvalid(from) || to <= from)
		return NumericGetDatum(int64_to_numeric(0));
	return NumericGetDatum(int64_to_numeric((int64) (to - from)));
}

/*
 * flowstate_views returns one row per continuous view of the database: its
 * catalog entry and what its writer publishes in shared memory.
 */
Datum
flowstate_views(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	XLogRecPtr	end_of_wal = GetFlushRecPtr(NULL);
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	if (SPI_execute("SELECT view::oid, source::oid, state_table::oid, window_kind, memory_limit,"
					"       status FROM flowstate.view ORDER BY view_id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	n = SPI_processed;

	for (int i = 0; i < n; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tdesc = SPI_tuptable->tupdesc;
		Datum		values[VIEWS_COLS];
		bool		nulls[VIEWS_COLS];
		bool		isnull;
		StoreKey	key;
		SharedView *sv;
		char	   *catalog_status = SPI_getvalue(tuple, tdesc, 6);
		int			status;
		Datum		memory_limit = SPI_getbinval(tuple, tdesc, 5, &isnull);

		memset(nulls, true, sizeof(nulls));
		values[0] = SPI_getbinval(tuple, tdesc, 1, &nulls[0]);
		values[1] = SPI_getbinval(tuple, tdesc, 2, &nulls[1]);
		values[3] = CStringGetTextDatum(SPI_getvalue(tuple, tdesc, 4));
		nulls[3] = false;
		values[7] = isnull ? Int64GetDatum((int64) flowstate_memory_limit * 1024) : memory_limit;
		nulls[7] = false;

		key.dboid = MyDatabaseId;
		key.relid = DatumGetObjectId(SPI_getbinval(tuple, tdesc, 3, &isnull));
		sv = StoreFindView(key);
		if (sv == NULL)
		{
			values[2] = CStringGetTextDatum(strcmp(catalog_status, "backfilling") == 0 ?
											"waiting for backfill" : "waiting for its worker");
			nulls[2] = false;
		}
		else
		{
			LWLockAcquire(&sv->lock, LW_SHARED);
			status = sv->status;
			/* over its limit or not as of these bytes, not of the worker's last look */
			if (status == VIEW_RUNNING || status == VIEW_FULL)
				status = sv->bytes > DatumGetInt64(values[7]) ? VIEW_FULL : VIEW_RUNNING;
			/* reads fail while groups are out of range: that first */
			values[2] = CStringGetTextDatum(sv->broken ? "error" :
											sv->overflowed > 0 && status != VIEW_STARTING &&
											status != VIEW_BACKFILLING ?
											"out of range" :
											status == VIEW_RUNNING && sv->paused ?
											"paused for memory" : view_status_name(status));
			values[4] = Int64GetDatum(sv->groups);
			values[5] = Int64GetDatum(sv->nentries);
			values[6] = Int64GetDatum(sv->bytes);
			values[8] = Int64GetDatum((int64) sv->rows_applied);
			values[9] = Float8GetDatum(sv->rows_per_second);
			values[10] = Int64GetDatum((int64) sv->late_rows);
			values[11] = Int64GetDatum((int64) sv->failed_rows);
			values[12] = Int64GetDatum((int64) sv->recomputed);
			for (int c = 2; c <= 12; c++)
				if (c != 3 && c != 7)
					nulls[c] = false;
			if (!XLogRecPtrIsInvalid(sv->applied_lsn))
			{
				values[13] = LSNGetDatum(sv->applied_lsn);
				values[14] = lag_bytes(sv->applied_lsn, end_of_wal);
				nulls[13] = nulls[14] = false;
			}
			if (sv->has_watermark)
			{
				values[15] = TimestampTzGetDatum(sv->watermark);
				nulls[15] = false;
			}
			if (sv->status == VIEW_BACKFILLING || sv->backfill_total > 0)
			{
				values[16] = Int64GetDatum(sv->backfill_rows);
				values[17] = Int64GetDatum(sv->backfill_total);
				nulls[16] = nulls[17] = false;
			}
			values[18] = Int64GetDatum((int64) sv->flush_count);
			nulls[18] = false;
			if (sv->last_flush_at != 0)
			{
				values[19] = TimestampTzGetDatum(sv->last_flush_at);
				nulls[19] = false;
			}
			if (sv->last_error[0] != '\0')
			{
				values[20] = CStringGetTextDatum(sv->last_error);
				nulls[20] = false;
			}
			else if (sv->overflowed > 0)
			{
				values[20] = CStringGetTextDatum(psprintf("value out of range: overflow in %lld %s",
														  (long long) sv->overflowed,
														  sv->overflowed == 1 ? "group" : "groups"));
				nulls[20] = false;
			}
			LWLockRelease(&sv->lock);
			StoreReleaseView(sv);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * flowstate_sources returns one row per source worker of the database: the
 * decoding worker, with its slot, positions and throughput, and each worker
 * of each Kafka stream, with its partitions, lag and state.
 */
Datum
flowstate_sources(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerSlot *copies;
	int			n = 0;
	XLogRecPtr	end_of_wal = GetFlushRecPtr(NULL);

	InitMaterializedSRF(fcinfo, 0);

	copies = palloc(sizeof(WorkerSlot) * Max(Flowstate->nslots, 1));
	LWLockAcquire(Flowstate->lock, LW_SHARED);
	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state != SLOT_FREE && slot->dboid == MyDatabaseId &&
			(slot->kind == WORKER_DECODER || slot->kind == WORKER_KAFKA))
			memcpy(&copies[n++], slot, sizeof(WorkerSlot));
	}
	LWLockRelease(Flowstate->lock);

	for (int i = 0; i < n; i++)
	{
		WorkerSlot *copy = &copies[i];
		Datum		values[SOURCES_COLS];
		bool		nulls[SOURCES_COLS];

		memset(nulls, false, sizeof(nulls));
		if (copy->kind == WORKER_DECODER)
		{
			char		slot_name[NAMEDATALEN];

			ManagerDecoderSlotName(MyDatabaseId, slot_name);
			values[0] = CStringGetTextDatum("table changes");
			values[1] = CStringGetTextDatum("logical decoding");
			values[2] = CStringGetTextDatum(copy->state == SLOT_RUNNING && copy->paused ?
											"paused for memory" : slot_state_name(copy));
			values[4] = DirectFunctionCall1(namein, CStringGetDatum(slot_name));
			values[5] = LSNGetDatum(copy->applied_lsn);
			nulls[5] = XLogRecPtrIsInvalid(copy->applied_lsn);
			values[6] = LSNGetDatum(copy->durable_lsn);
			nulls[6] = XLogRecPtrIsInvalid(copy->durable_lsn);
			values[7] = lag_bytes(copy->applied_lsn, end_of_wal);
			nulls[7] = XLogRecPtrIsInvalid(copy->applied_lsn);
			values[9] = Int64GetDatum((int64) copy->transactions);
			nulls[14] = nulls[15] = true;
			values[16] = Int32GetDatum(copy->open_txns);
			values[17] = Int64GetDatum(copy->open_txn_bytes);
			values[18] = Int64GetDatum(copy->open_txn_peak_bytes);
			values[19] = Int64GetDatum(copy->open_txn_spilled_bytes);
			values[20] = Int64GetDatum(copy->streamed_txns);
		}
		else
		{
			char	   *name = get_rel_name(copy->relid);

			values[0] = CStringGetTextDatum(name ? psprintf("%s (worker %d)",
															quote_identifier(name), copy->index) :
											"?");
			values[1] = CStringGetTextDatum("kafka");
			values[2] = CStringGetTextDatum(copy->state != SLOT_RUNNING ? slot_state_name(copy) :
											copy->paused ? "paused for memory" :
											copy->degraded ? "waiting for brokers" :
											slot_state_name(copy));
			nulls[4] = nulls[5] = nulls[6] = nulls[7] = nulls[9] = true;
			nulls[16] = nulls[17] = nulls[18] = nulls[19] = nulls[20] = true;
			values[14] = Int32GetDatum(copy->partitions);
			values[15] = Int64GetDatum(copy->lag_messages);
		}
		values[3] = Int32GetDatum((int32) copy->pid);
		nulls[3] = (copy->pid == 0);
		values[8] = Int64GetDatum((int64) copy->changes);
		values[10] = Float8GetDatum(copy->changes_per_second);
		values[11] = TimestampTzGetDatum(copy->last_flush_at);
		nulls[11] = (copy->last_flush_at == 0);
		values[12] = CStringGetTextDatum(copy->last_error);
		nulls[12] = (copy->last_error[0] == '\0');
		values[13] = TimestampTzGetDatum(copy->last_error_at);
		nulls[13] = (copy->last_error_at == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
