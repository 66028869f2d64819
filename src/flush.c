/*-------------------------------------------------------------------------
 *
 * flush.c
 *	  Makes the state of a source's continuous views durable: in one
 *	  transaction, the groups each view changed since its last flush, the
 *	  dead letters and late events, the views that finished their backfill,
 *	  and the source position (the session's replication origin, set by the
 *	  worker, advances with the commit).  After a crash the state tables and
 *	  the origin agree, and the worker resumes from there: exactly once.
 *
 * Readers keep seeing a group's newest state from shared memory until
 * their snapshot sees the flush that wrote it (state_store.c): the flush
 * records its transaction id with each view before it commits.
 *
 * A flush is written in slices (FlushStep) between which the worker goes
 * on decoding, inside the flush's open transaction: a large flush does not
 * hold back what readers see.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "replication/origin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "flush.h"
#include "ingest.h"
#include "state_table.h"

typedef struct ViewFlush
{
	ViewRuntime *vr;
	FlushItem  *items;
	int			n;
	int			written;
	uint64		seq;
	bool		truncate;
	bool		opened;
	bool		finish_backfill;
} ViewFlush;

struct FlushJob
{
	MemoryContext cxt;			/* the job and its copies of the groups */
	XLogRecPtr	position;
	int			nflush;
	int			current;		/* the view being written */
	ViewFlush  *flushes;
};

/* Write the dead letters and late events of a view. */
static void
write_pending(ViewRuntime *vr)
{
	static SPIPlanPtr dead_plan = NULL;
	static SPIPlanPtr late_plan = NULL;
	ListCell   *lc;

	if (dead_plan == NULL)
	{
		Oid			types[6] = {OIDOID, OIDOID, PG_LSNOID, TEXTOID, TEXTOID, TEXTOID};
		Oid			ltypes[7] = {OIDOID, PG_LSNOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
		TEXTOID, TEXTOID, TEXTOID};

		dead_plan = SPI_prepare("INSERT INTO flowstate.dead_letters"
								" (source, view, lsn, payload, error, sqlstate)"
								" VALUES ($1, $2, $3, $4, $5, $6)", 6, types);
		late_plan = SPI_prepare("INSERT INTO flowstate.late_events"
								" (view, lsn, event_time, watermark, change, payload, reason)"
								" VALUES ($1, $2, $3, $4, $5, $6, $7)", 7, ltypes);
		if (dead_plan == NULL || late_plan == NULL)
			elog(ERROR, "could not prepare the dead letter statements");
		SPI_keepplan(dead_plan);
		SPI_keepplan(late_plan);
	}

	foreach(lc, vr->pending)
	{
		PendingRow *row = lfirst(lc);
		char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
		int			ret;

		if (!row->late)
		{
			Datum		args[6];

			args[0] = ObjectIdGetDatum(vr->def->source_relid);
			args[1] = ObjectIdGetDatum(vr->def->view_relid);
			args[2] = LSNGetDatum(row->lsn);
			nulls[2] = XLogRecPtrIsInvalid(row->lsn) ? 'n' : ' ';
			args[3] = CStringGetTextDatum(row->payload ? row->payload : "");
			args[4] = CStringGetTextDatum(row->error ? row->error : "");
			args[5] = CStringGetTextDatum(row->sqlstate);
			ret = SPI_execute_plan(dead_plan, args, nulls, false, 0);
		}
		else
		{
			Datum		args[7];

			args[0] = ObjectIdGetDatum(vr->def->view_relid);
			args[1] = LSNGetDatum(row->lsn);
			nulls[1] = XLogRecPtrIsInvalid(row->lsn) ? 'n' : ' ';
			args[2] = TimestampTzGetDatum(row->event_time);
			args[3] = TimestampTzGetDatum(row->watermark);
			args[4] = CStringGetTextDatum(row->deleted ? "delete" : "insert");
			args[5] = CStringGetTextDatum(row->payload ? row->payload : "");
			args[6] = CStringGetTextDatum("its window closed longer than the allowed lateness ago");
			ret = SPI_execute_plan(late_plan, args, nulls, false, 0);
		}
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "could not record a dead letter: %s", SPI_result_code_string(ret));
	}
	if (vr->pending_dropped > 0)
		ereport(WARNING,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%lld rows that continuous view \"%s\" could not apply were not recorded",
						(long long) vr->pending_dropped, vr->def->view_name),
				 errhint("See flowstate.views for their counts and the server log for the first of them.")));
}

/* Record how far the view's event time has gone, for its watermark after a restart. */
static void
write_watermark(ViewRuntime *vr)
{
	Datum		args[2];
	Oid			types[2] = {INT4OID, TIMESTAMPTZOID};

	if (!vr->has_watermark ||
		(vr->persisted_watermark && vr->persisted_max_ts == vr->max_ts))
		return;
	args[0] = Int32GetDatum(vr->def->view_id);
	args[1] = TimestampTzGetDatum(vr->max_ts);
	if (SPI_execute_with_args("UPDATE flowstate.view SET max_event_time = $2 WHERE view_id = $1",
							  2, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update flowstate.view");
	vr->persisted_watermark = true;
	vr->persisted_max_ts = vr->max_ts;
}

static void
finish_backfill(ViewRuntime *vr)
{
	Datum		arg = Int32GetDatum(vr->def->view_id);
	Oid			type = INT4OID;

	if (SPI_execute_with_args("UPDATE flowstate.view SET status = 'running' WHERE view_id = $1",
							  1, &type, &arg, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update flowstate.view");
}

/*
 * FlushStart begins a flush of the views at position, where their state in
 * shared memory is exact: it opens the transaction, takes the groups each
 * view changed since its last flush, and writes the dead letters, late
 * events and ends of backfill.  FlushStep then writes the groups, a slice
 * at a time, and commits.  Between two steps the worker goes on decoding
 * inside the open transaction; what it changes meanwhile waits for the
 * next flush.  Views still backfilling are not written: after a crash they
 * start their backfill again.  Returns NULL when there is nothing to write.
 */
FlushJob *
FlushStart(List *views, XLogRecPtr position)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "flowstate flush",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	FlushJob   *job = palloc0(sizeof(FlushJob));
	bool		any = false;
	ListCell   *lc;
	TransactionId xid;

	job->cxt = cxt;
	job->position = position;
	job->flushes = palloc0(sizeof(ViewFlush) * Max(list_length(views), 1));
	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);
		ViewFlush  *f = &job->flushes[job->nflush];

		/* a full view too: flushing is how it gets room again */
		if (vr->dropped || vr->backfill_snap != NULL ||
			(vr->shared->status != VIEW_RUNNING && vr->shared->status != VIEW_FULL))
			continue;
		f->vr = vr;
		f->n = StoreFlushBegin(vr->shared, &f->seq, &f->items, &f->truncate, &vr->next_gid);
		f->opened = f->n > 0 || f->truncate;
		f->finish_backfill = vr->def->backfilling;
		any |= f->opened || f->finish_backfill || vr->pending != NIL;
		job->nflush++;
	}
	MemoryContextSwitchTo(oldcxt);
	if (!any)
	{
		MemoryContextDelete(cxt);
		return NULL;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	xid = GetTopTransactionId();
	for (int i = 0; i < job->nflush; i++)
		if (job->flushes[i].opened)
			StoreFlushXid(job->flushes[i].vr->shared, job->flushes[i].seq, xid);

	SPI_connect();
	for (int i = 0; i < job->nflush; i++)
	{
		ViewFlush  *f = &job->flushes[i];
		ViewRuntime *vr = f->vr;

		if (f->truncate && !StateTableTruncate(vr->def->state_relid))
		{
			vr->dropped = true;
			f->n = 0;
		}
		if (f->truncate)
			for (int j = 0; j < f->n; j++)
				ItemPointerSetInvalid(&f->items[j].tid);
		if (f->finish_backfill)
			finish_backfill(vr);
		write_watermark(vr);
		write_pending(vr);

		/* a failed flush ends the worker: these rows come again after it */
		list_free(vr->pending);
		vr->pending = NIL;
		vr->pending_dropped = 0;
		MemoryContextReset(vr->pending_cxt);
	}
	SPI_finish();
	CommandCounterIncrement();
	PopActiveSnapshot();
	return job;
}

/*
 * FlushStep writes groups for about budget_ms milliseconds (all of them
 * when budget_ms is negative); once all are written it commits, with the
 * position as the replication origin's, and returns true.
 */
bool
FlushStep(FlushJob *job, int budget_ms)
{
	TimestampTz start = GetCurrentTimestamp();
	int			rows = 0;

	PushActiveSnapshot(GetLatestSnapshot());
	while (job->current < job->nflush)
	{
		ViewFlush  *f = &job->flushes[job->current];
		ViewRuntime *vr = f->vr;
		StateWriter w;

		if (!f->opened || vr->dropped || f->written == f->n)
		{
			job->current++;
			continue;
		}
		if (!StateWriterBegin(&w, vr->def->state_relid))
		{
			vr->dropped = true;
			continue;
		}
		while (f->written < f->n)
		{
			StateWriterPut(&w, &vr->def->layout, &f->items[f->written++]);
			if (budget_ms >= 0 && (++rows % 64) == 0 &&
				TimestampDifferenceExceeds(start, GetCurrentTimestamp(), budget_ms))
				break;
		}
		StateWriterEnd(&w);
		CommandCounterIncrement();
		if (f->written < f->n)
		{
			PopActiveSnapshot();
			return false;
		}
	}
	PopActiveSnapshot();

	replorigin_session_origin_lsn = job->position;
	replorigin_session_origin_timestamp = GetCurrentTimestamp();
	CommitTransactionCommand();
	replorigin_session_origin_lsn = InvalidXLogRecPtr;

	for (int i = 0; i < job->nflush; i++)
	{
		ViewFlush  *f = &job->flushes[i];

		if (f->opened)
			StoreFlushEnd(f->vr->shared, f->seq, f->items, f->n, true);
		if (f->finish_backfill)
			f->vr->def->backfilling = false;
	}
	return true;
}

/* The position a flush makes durable. */
XLogRecPtr
FlushPosition(FlushJob *job)
{
	return job->position;
}

/* FlushFree releases a committed flush. */
void
FlushFree(FlushJob *job)
{
	MemoryContextDelete(job->cxt);
}
