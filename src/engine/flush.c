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

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "replication/origin.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "fs_catalog/catalog.h"
#include "engine/flush.h"
#include "engine/history.h"
#include "engine/ingest.h"
#include "query/query.h"
#include "state/group.h"
#include "state/state_table.h"

typedef struct ViewFlush
{
	ViewRuntime *vr;
	FlushItem  *items;
	StreamPartition *parts;		/* Kafka: how far, per partition */
	int			nparts;
	int			n;
	int			written;
	uint64		seq;
	bool		truncate;
	bool		opened;
	bool		finish_backfill;
	bool		has_watermark;	/* the event time this flush records */
	int64		max_ts;
	bool		had_watermark;	/* ... and the one the previous flush recorded */
	int64		prev_max_ts;
	bool		has_judged;		/* streams: the event time every worker
								 * judges with, as the flush began */
	int64		judged_ts;
} ViewFlush;

struct FlushJob
{
	MemoryContext cxt;			/* the job and its copies of the groups */
	XLogRecPtr	position;
	int			nflush;
	int			current;		/* the view being written */
	ViewFlush  *flushes;
	HistoryFlush *histories;	/* what the histories write */
};

/*
 * Write side rows (dead letters, late events) of a source, of one view or
 * of none (a message no view could read).  Rows of Kafka messages carry
 * their partition and offset, and a message already recorded (consumed
 * again after a restart) is skipped.
 */
static void
write_rows(Oid source, Oid view, List *rows)
{
	static SPIPlanPtr dead_plan = NULL;
	static SPIPlanPtr late_plan = NULL;
	ListCell   *lc;

	if (dead_plan == NULL)
	{
		Oid			types[8] = {OIDOID, OIDOID, PG_LSNOID, TEXTOID, TEXTOID, TEXTOID,
		INT4OID, INT8OID};
		Oid			ltypes[9] = {OIDOID, PG_LSNOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
		TEXTOID, TEXTOID, TEXTOID, INT4OID, INT8OID};

		dead_plan = SPI_prepare("INSERT INTO flowstate.dead_letters"
								" (source, view, lsn, payload, error, sqlstate, \"partition\", \"offset\")"
								" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
								" ON CONFLICT (source, view, \"partition\", \"offset\")"
								" WHERE \"offset\" IS NOT NULL DO NOTHING", 8, types);
		late_plan = SPI_prepare("INSERT INTO flowstate.late_events"
								" (view, lsn, event_time, watermark, change, payload, reason,"
								" \"partition\", \"offset\")"
								" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
								" ON CONFLICT (view, \"partition\", \"offset\")"
								" WHERE \"offset\" IS NOT NULL DO NOTHING", 9, ltypes);
		if (dead_plan == NULL || late_plan == NULL)
			elog(ERROR, "could not prepare the dead letter statements");
		SPI_keepplan(dead_plan);
		SPI_keepplan(late_plan);
	}

	foreach(lc, rows)
	{
		PendingRow *row = lfirst(lc);
		char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
		int			ret;

		if (!row->late)
		{
			Datum		args[8];

			args[0] = ObjectIdGetDatum(source);
			args[1] = ObjectIdGetDatum(view);
			nulls[1] = OidIsValid(view) ? ' ' : 'n';
			args[2] = LSNGetDatum(row->lsn);
			nulls[2] = XLogRecPtrIsInvalid(row->lsn) ? 'n' : ' ';
			args[3] = CStringGetTextDatum(row->payload ? row->payload : "");
			nulls[3] = row->payload ? ' ' : 'n';
			args[4] = CStringGetTextDatum(row->error ? row->error : "");
			args[5] = CStringGetTextDatum(row->sqlstate);
			args[6] = Int32GetDatum(row->partition);
			args[7] = Int64GetDatum(row->offset);
			nulls[6] = nulls[7] = row->at_message ? ' ' : 'n';
			ret = SPI_execute_plan(dead_plan, args, nulls, false, 0);
		}
		else
		{
			Datum		args[9];

			args[0] = ObjectIdGetDatum(view);
			args[1] = LSNGetDatum(row->lsn);
			nulls[1] = XLogRecPtrIsInvalid(row->lsn) ? 'n' : ' ';
			args[2] = TimestampTzGetDatum(row->event_time);
			args[3] = TimestampTzGetDatum(row->watermark);
			args[4] = CStringGetTextDatum(row->deleted ? "delete" : "insert");
			args[5] = CStringGetTextDatum(row->payload ? row->payload : "");
			args[6] = CStringGetTextDatum("its window closed longer than the allowed lateness ago");
			args[7] = Int32GetDatum(row->partition);
			args[8] = Int64GetDatum(row->offset);
			nulls[7] = nulls[8] = row->at_message ? ' ' : 'n';
			ret = SPI_execute_plan(late_plan, args, nulls, false, 0);
		}
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "could not record a dead letter: %s", SPI_result_code_string(ret));
	}
}

/* Write the dead letters and late events of a view, and forget them. */
static void
write_pending(ViewRuntime *vr)
{
	write_rows(vr->def->source_relid, vr->def->view_relid, vr->pending);
	list_free(vr->pending);
	vr->pending = NIL;
	MemoryContextReset(vr->pending_cxt);
}

/*
 * FlushWritePending writes, in the caller's transaction, the side rows of
 * views and those of a source that no view could read (source_rows, of
 * source), and forgets them.  Kafka workers write theirs before they apply
 * the batch they come from: a row is never lost, and never written twice.
 */
void
FlushWritePending(List *views, Oid source, List *source_rows)
{
	ListCell   *lc;

	SPI_connect();
	write_rows(source, InvalidOid, source_rows);
	foreach(lc, views)
		write_pending(lfirst(lc));
	SPI_finish();
}

/*
 * Lock the sources of a flush's views, in one order, before any state
 * table, and the state tables before any catalog row: DROP TABLE ...
 * CASCADE of a source locks it, then its views' state tables, so a flush
 * that had written one of those before waiting for another would deadlock
 * with it.  A source dropped meanwhile leaves views whose state tables are
 * gone, which the flush skips.
 */
static void
lock_sources(FlushJob *job)
{
	Oid		   *sources = palloc(sizeof(Oid) * Max(job->nflush, 1));
	int			n = 0;

	for (int i = 0; i < job->nflush; i++)
		sources[n++] = job->flushes[i].vr->def->source_relid;
	qsort(sources, n, sizeof(Oid), oid_cmp);
	for (int i = 0; i < n; i++)
		if (i == 0 || sources[i] != sources[i - 1])
			LockRelationOid(sources[i], AccessShareLock);

	/*
	 * Then the state tables, before any catalog row: drop_view locks a
	 * view's relations, then deletes its catalog row.
	 */
	n = 0;
	for (int i = 0; i < job->nflush; i++)
		sources[n++] = job->flushes[i].vr->def->state_relid;
	qsort(sources, n, sizeof(Oid), oid_cmp);
	for (int i = 0; i < n; i++)
		LockRelationOid(sources[i], RowExclusiveLock);
	pfree(sources);
}

/*
 * Whether the view is still declared, its catalog row locked against a
 * concurrent drop until the flush commits (its offsets reference it).
 */
static bool
view_still_declared(ViewRuntime *vr)
{
	Datum		arg = Int32GetDatum(vr->def->view_id);
	Oid			type = INT4OID;

	if (SPI_execute_with_args("SELECT 1 FROM flowstate.view WHERE view_id = $1 FOR KEY SHARE",
							  1, &type, &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the declaration of continuous view %s", vr->def->view_name);
	return SPI_processed == 1;
}

/* Whether flowstate.stream_offsets has max_event_time (0.8.0). */
static bool
offsets_have_event_time(void)
{
	return get_attnum(get_relname_relid("stream_offsets", get_namespace_oid("flowstate", false)),
					  "max_event_time") != InvalidAttrNumber;
}

/*
 * FlushReadOffsets reads back the offsets write_offsets recorded for a
 * view: *offsets[p] is partition p's next offset, -1 where none was
 * recorded, and *max_ts[p] the largest event time of the messages before
 * it, PG_INT64_MIN where none is known; returns the number of partitions.
 * In a transaction.
 */
int
FlushReadOffsets(int32 view_id, int64 **offsets, int64 **max_ts)
{
	Datum		arg = Int32GetDatum(view_id);
	Oid			type = INT4OID;
	int			n = 0;
	bool		has_max = offsets_have_event_time();

	SPI_connect();
	if (SPI_execute_with_args(has_max ?
							  "SELECT \"partition\", next_offset, max_event_time FROM flowstate.stream_offsets"
							  " WHERE view_id = $1 ORDER BY \"partition\" DESC" :
							  "SELECT \"partition\", next_offset, NULL::pg_catalog.timestamptz"
							  "  FROM flowstate.stream_offsets"
							  " WHERE view_id = $1 ORDER BY \"partition\" DESC",
							  1, &type, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.stream_offsets");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		bool		isnull;
		int32		p = DatumGetInt32(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull));
		Datum		ts;

		if (i == 0)
		{
			/* the highest partition comes first */
			n = p + 1;
			*offsets = SPI_palloc(sizeof(int64) * n);
			*max_ts = SPI_palloc(sizeof(int64) * n);
			for (int q = 0; q < n; q++)
			{
				(*offsets)[q] = -1;
				(*max_ts)[q] = PG_INT64_MIN;
			}
		}
		(*offsets)[p] = DatumGetInt64(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull));
		ts = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 3, &isnull);
		if (!isnull)
			(*max_ts)[p] = DatumGetTimestampTz(ts);
	}
	if (n == 0)
	{
		*offsets = SPI_palloc(sizeof(int64));
		*max_ts = SPI_palloc(sizeof(int64));
	}
	SPI_finish();
	return n;
}

/*
 * Record how far each partition of a Kafka stream the view's state goes:
 * its next offset, and (catalog column of 0.8.0) the largest event time
 * before it, the partition's share of the watermark after a restart.
 */
static void
write_offsets(ViewRuntime *vr, const StreamPartition *parts, int n)
{
	Datum		args[4];
	Oid			types[4] = {INT4OID, INT4ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum	   *partitions = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *next = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *max_ts = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *ts_nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1];
	int			lbs[1] = {1};
	int			m = 0;
	bool		has_max = offsets_have_event_time();

	for (int p = 0; p < n; p++)
	{
		if (parts[p].next < 0)
			continue;
		partitions[m] = Int32GetDatum(p);
		next[m] = Int64GetDatum(parts[p].next);
		max_ts[m] = TimestampTzGetDatum(parts[p].max_ts);
		ts_nulls[m++] = parts[p].max_ts == PG_INT64_MIN;
	}
	if (m == 0)
		return;
	dims[0] = m;
	args[0] = Int32GetDatum(vr->def->view_id);
	args[1] = PointerGetDatum(construct_array(partitions, m, INT4OID, 4, true, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(next, m, INT8OID, 8, FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
	args[3] = PointerGetDatum(construct_md_array(max_ts, ts_nulls, 1, dims, lbs, TIMESTAMPTZOID, 8,
												 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args(has_max ?
							  "INSERT INTO flowstate.stream_offsets (view_id, \"partition\", next_offset, max_event_time)"
							  " SELECT $1, p, o, t"
							  "   FROM unnest($2::int4[], $3::int8[], $4::timestamptz[]) AS u (p, o, t)"
							  " ON CONFLICT (view_id, \"partition\")"
							  " DO UPDATE SET next_offset = excluded.next_offset,"
							  " max_event_time = excluded.max_event_time" :
							  "INSERT INTO flowstate.stream_offsets (view_id, \"partition\", next_offset)"
							  " SELECT $1, p, o FROM unnest($2::int4[], $3::int8[]) AS u (p, o)"
							  " ON CONFLICT (view_id, \"partition\")"
							  " DO UPDATE SET next_offset = excluded.next_offset",
							  has_max ? 4 : 3, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the offsets of continuous view %s", vr->def->view_name);
}

/*
 * The event time a view over a stream has reached, given how far its
 * flush goes in each partition of the topic: the least of the partitions'
 * largest event times, so that a partition behind the others holds the
 * watermark back.  A partition that is idle (no message within the
 * stream's idle_timeout; none is without one) is left out; one that is
 * not idle and has no event time yet (not consumed yet, or empty) holds
 * the watermark where it is: false.  When every partition is idle, the
 * largest of their event times.
 */
static bool
stream_event_time(ViewRuntime *vr, const StreamPartition *parts, int n, int64 *ts)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		idle_us = vr->def->idle_timeout_us;
	bool		any_active = false;
	int64		least = PG_INT64_MAX;
	int64		most = PG_INT64_MIN;

	for (int p = 0; p < n; p++)
	{
		if (idle_us >= 0 && now - parts[p].active_at >= idle_us)
		{
			most = Max(most, parts[p].max_ts);
			continue;
		}
		if (parts[p].max_ts == PG_INT64_MIN)
			return false;
		any_active = true;
		least = Min(least, parts[p].max_ts);
	}
	if (any_active)
		*ts = least;
	else if (most != PG_INT64_MIN)
		*ts = most;
	else
		return false;
	return true;
}

/*
 * Record how far the view's event time has gone, for its watermark after a
 * restart.  Over a stream, as far as its partitions have all gone in the
 * flush f (stream_event_time): that is what decides lateness, in every
 * worker of the stream, once this flush commits (FlushStep).
 */
static void
write_watermark(ViewRuntime *vr, ViewFlush *f)
{
	Datum		args[2];
	Oid			types[2] = {INT4OID, TIMESTAMPTZOID};

	if (vr->def->stream)
	{
		int64		ts;

		/* never back: a partition that comes back from idle is behind */
		vr->has_watermark = vr->persisted_watermark;
		vr->max_ts = vr->persisted_max_ts;
		if (stream_event_time(vr, f->parts, f->nparts, &ts) &&
			(!vr->has_watermark || ts > vr->max_ts))
		{
			vr->has_watermark = true;
			vr->max_ts = ts;
		}
	}
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

/*
 * Record, for a view over a stream, the event time every worker of the
 * stream judged with when the flush f began (IngestRefreshDurable): the
 * windows final by it are those the flush announces and expires, and they
 * are final in every worker.  It only goes forward; it survives restarts
 * (flowstate.view.final_event_time, 0.8.0), so that a window is announced
 * once.
 */
static void
write_final_event_time(ViewRuntime *vr, ViewFlush *f)
{
	Datum		args[2];
	Oid			types[2] = {INT4OID, TIMESTAMPTZOID};

	if (!f->has_judged || (vr->has_final_ts && f->judged_ts <= vr->final_ts))
		return;
	if (get_attnum(vr->def->def_relid == InvalidOid ? InvalidOid :
				   get_relname_relid("view", get_namespace_oid("flowstate", false)),
				   "final_event_time") == InvalidAttrNumber)
		return;
	args[0] = Int32GetDatum(vr->def->view_id);
	args[1] = TimestampTzGetDatum(f->judged_ts);
	if (SPI_execute_with_args("UPDATE flowstate.view SET final_event_time = $2 WHERE view_id = $1",
							  2, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update flowstate.view");
	vr->has_final_ts = true;
	vr->final_ts = f->judged_ts;
}

static void
set_status(ViewRuntime *vr, const char *status)
{
	Datum		args[2];
	Oid			types[2] = {INT4OID, TEXTOID};

	args[0] = Int32GetDatum(vr->def->view_id);
	args[1] = CStringGetTextDatum(status);
	if (SPI_execute_with_args("UPDATE flowstate.view SET status = $2 WHERE view_id = $1",
							  2, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update flowstate.view");
}

/*
 * FlushStart begins a flush of the views at position, where their state in
 * shared memory is exact: it opens the transaction, takes the groups each
 * view changed since its last flush, and writes the dead letters, late
 * events and ends of backfill.  FlushStep then writes the groups, a slice
 * at a time, and commits.  Between two steps the worker goes on decoding
 * inside the open transaction; what it changes meanwhile waits for the
 * next flush.  A view still decoding up to where its backfill's snapshot
 * stops is written but stays backfilling in the catalog: after a crash it
 * starts its backfill again.  Returns NULL when there is nothing to write.
 */
FlushJob *
FlushStart(List *views, List *histories, XLogRecPtr position)
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
		if (vr->dropped ||
			(vr->shared->status != VIEW_RUNNING && vr->shared->status != VIEW_FULL))
			continue;
		f->vr = vr;
		if (vr->def->stream)
		{
			/*
			 * A row merged from now on was judged with this event time or a
			 * later one: none goes to a window final by it, whose groups are
			 * all in this flush or before it.
			 */
			LWLockAcquire(&vr->shared->lock, LW_SHARED);
			f->has_judged = vr->shared->has_watermark;
			f->judged_ts = vr->shared->watermark + vr->def->watermark_delay_us;
			LWLockRelease(&vr->shared->lock);
		}
		f->n = StoreFlushBegin(vr->shared, &f->seq, &f->items, &f->truncate, &vr->next_gid,
							   &f->parts, &f->nparts);
		f->opened = f->n > 0 || f->truncate;
		/* a backfill ends once decoding reached where its snapshot stops */
		f->finish_backfill = vr->def->backfilling && vr->backfill_snap == NULL;
		any |= f->opened || f->finish_backfill || vr->pending != NIL || f->nparts > 0;
		job->nflush++;
	}
	job->histories = HistoryFlushBegin(histories, cxt);
	any |= job->histories != NULL;
	MemoryContextSwitchTo(oldcxt);
	if (!any)
	{
		MemoryContextDelete(cxt);
		return NULL;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();

	/*
	 * DROP EXTENSION locks the extension before the catalog and the state
	 * tables: locked first here too, it waits for this flush, or the flush
	 * finds it gone and writes nothing (the worker leaves next).
	 */
	if (!CatalogExtensionPresent())
	{
		CommitTransactionCommand();
		MemoryContextSwitchTo(oldcxt);
		for (int i = 0; i < job->nflush; i++)
			job->flushes[i].vr->dropped = true;
		MemoryContextDelete(cxt);
		return NULL;
	}
	lock_sources(job);
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

		/* a view over a stream dropped meanwhile: nothing to record */
		if (f->nparts > 0 && !view_still_declared(vr))
		{
			vr->dropped = true;
			f->n = 0;
			continue;
		}
		if (f->truncate && !StateTableTruncate(vr->def->state_relid))
		{
			vr->dropped = true;
			f->n = 0;
		}
		if (f->truncate)
			for (int j = 0; j < f->n; j++)
				ItemPointerSetInvalid(&f->items[j].tid);
		if (f->finish_backfill)
			set_status(vr, "running");
		f->had_watermark = vr->persisted_watermark;
		f->prev_max_ts = vr->persisted_max_ts;
		write_watermark(vr, f);
		f->has_watermark = vr->has_watermark;
		f->max_ts = vr->max_ts;
		if (vr->def->stream)
		{
			/* a stream's windows are final by what every worker judges with */
			f->had_watermark = vr->has_final_ts;
			f->prev_max_ts = vr->final_ts;
			write_final_event_time(vr, f);
			f->has_watermark = vr->has_final_ts;
			f->max_ts = vr->final_ts;
		}
		if (f->nparts > 0)
			write_offsets(vr, f->parts, f->nparts);
		/* a failed flush ends the worker: these rows come again after it */
		vr->sides_in_flight |= (vr->pending != NIL);
		write_pending(vr);
		LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
		vr->shared->sides_wanted = false;
		LWLockRelease(&vr->shared->lock);
	}
	SPI_finish();
	CommandCounterIncrement();
	PopActiveSnapshot();
	return job;
}

/*
 * Whether this flush knows which windows of a view are final: a view with
 * allowed_lateness over a window of fixed size, whose watermark this flush
 * records (over a stream, the one every worker judges with: see
 * write_final_event_time).
 */
static bool
knows_final_windows(ViewRuntime *vr, bool has_watermark)
{
	ViewDef    *def = vr->def;

	return def->allowed_lateness_us >= 0 && def->window.size_us > 0 &&
		has_watermark && !vr->dropped;
}

/*
 * Run sql, the insert of a view's final rows into its changelog (two
 * arguments, of types types, the values args), in a subtransaction: a
 * changelog its owner altered or dropped fails alone, with a warning, and
 * the flush goes on.  Within SPI.
 */
static void
write_changelog(ViewDef *def, const char *sql, Oid *types, Datum *args)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		if (SPI_execute_with_args(sql, 2, types, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write the changelog of continuous view %s", def->view_name);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("flowstate could not write the changelog of continuous view %s: %s",
						def->view_name, edata->message),
				 errhint("Give the changelog table back the view's columns, or create the view again.")));
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/*
 * Announce, for the panes of a view of hopping, cumulating or session
 * windows, the windows of that view this flush makes final: those whose
 * end (for a session, the end of the pane after its last event's) is,
 * plus allowed_lateness, behind the watermark it records and not behind
 * the one the previous flush recorded.  The panes' final function
 * (flowstate.view.final_function, made with the view) gives their rows,
 * as the view shows them, with their bounds: a NOTIFY per window on the
 * view's channel and its rows into the view's changelog table, as for a
 * view of tumbling windows.  The panes of those windows are all final,
 * and in the state table or this flush.
 */
static void
announce_final_windows(ViewFlush *f, int64 shift)
{
	ViewDef    *def = f->vr->def;
	Oid			type = def->layout.keys[def->window.keyno].type;
	Oid			types[3] = {type, type, TEXTOID};
	Datum		args[3];
	char	   *fn = quote_qualified_identifier(get_namespace_name(get_func_namespace(def->final_function)),
												get_func_name(def->final_function));

	if (get_func_name(def->final_function) == NULL)
		return;
	args[0] = Int64GetDatum(f->had_watermark ? f->prev_max_ts - shift : DT_NOBEGIN);
	args[1] = Int64GetDatum(f->max_ts - shift);
	if (DatumGetInt64(args[1]) <= DatumGetInt64(args[0]))
		return;
	args[2] = CStringGetTextDatum(def->channel);
	SPI_connect();
	if (def->notify &&
		SPI_execute_with_args(psprintf("SELECT pg_catalog.pg_notify($3, pg_catalog.json_build_object("
									   "'view', $3, 'window_start', f.window_start, 'window_end', f.window_end,"
									   " 'groups', pg_catalog.count(*))::text)"
									   "  FROM %s($1, $2) f GROUP BY f.window_start, f.window_end"
									   " ORDER BY f.window_start, f.window_end", fn),
							  3, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not announce the final windows of continuous view %s", def->view_name);
	if (OidIsValid(def->changelog_relid) && get_rel_name(def->changelog_relid) != NULL)
		write_changelog(def, psprintf("INSERT INTO %s SELECT (f.r).* FROM %s($1, $2) f",
									  quote_qualified_identifier(get_namespace_name(get_rel_namespace(def->changelog_relid)),
																 get_rel_name(def->changelog_relid)),
									  fn),
						types, args);
	SPI_finish();
}

/*
 * Announce the windows of a view that this flush makes final: those final
 * as of the watermark it records but not as of the one the previous flush
 * recorded (all of them, for a view's first flush).  Their groups are all
 * in the state table by now (a final window's last change is at the latest
 * in this flush).  Per window, a NOTIFY on the view's channel (payload: the
 * view, the window's bounds and its number of groups, as JSON), delivered
 * when the flush commits; its rows, in the view's columns, into the view's
 * changelog table.  Both in the flush's transaction, with the source
 * position: a window is announced once, a crash replays nothing twice.
 * Over a stream, by the event time every worker judges with (no worker
 * may still apply a row to such a window).
 */
static void
announce_final(ViewFlush *f)
{
	ViewRuntime *vr = f->vr;
	ViewDef    *def = vr->def;
	const ViewLayout *layout = &def->layout;
	int			keyno = def->window.keyno;
	int64		shift;
	char	   *state_table;
	Datum		args[4];
	Oid			types[4];
	Interval   *size;

	if ((!def->notify && !OidIsValid(def->changelog_relid)) ||
		!knows_final_windows(vr, f->has_watermark))
		return;
	shift = def->watermark_delay_us + def->allowed_lateness_us;
	if (OidIsValid(def->final_function))
	{
		announce_final_windows(f, shift);
		return;
	}
	/* windows that start after args[0] and at or before args[1] */
	types[0] = types[1] = layout->keys[keyno].type;
	args[0] = Int64GetDatum(f->had_watermark ? ViewFinalCutoff(def, f->prev_max_ts - shift) :
							DT_NOBEGIN);
	args[1] = Int64GetDatum(ViewFinalCutoff(def, f->max_ts - shift));
	if (DatumGetInt64(args[1]) <= DatumGetInt64(args[0]))
		return;
	state_table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(def->state_relid)),
											 get_rel_name(def->state_relid));
	SPI_connect();
	if (def->notify)
	{
		char	   *sql;

		/* the window's length in time, not in days of some time zone */
		size = palloc0(sizeof(Interval));
		size->time = def->window.size_us;
		types[2] = TEXTOID;
		types[3] = INTERVALOID;
		args[2] = CStringGetTextDatum(def->channel);
		args[3] = IntervalPGetDatum(size);
		sql = psprintf("SELECT pg_catalog.pg_notify($3, pg_catalog.json_build_object("
					   "'view', $3, 'window_start', s.k%d, 'window_end', s.k%d OPERATOR(pg_catalog.+) $4,"
					   " 'groups', pg_catalog.count(*))::text)"
					   "  FROM %s s WHERE s.k%d OPERATOR(pg_catalog.>) $1 AND s.k%d OPERATOR(pg_catalog.<=) $2"
					   " GROUP BY s.k%d ORDER BY s.k%d",
					   keyno + 1, keyno + 1, state_table, keyno + 1, keyno + 1, keyno + 1, keyno + 1);
		if (SPI_execute_with_args(sql, 4, types, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not announce the final windows of continuous view %s", def->view_name);
	}
	if (OidIsValid(def->changelog_relid) && get_rel_name(def->changelog_relid) != NULL)
		write_changelog(def, psprintf("INSERT INTO %s SELECT * FROM (%s) f",
									  quote_qualified_identifier(get_namespace_name(get_rel_namespace(def->changelog_relid)),
																 get_rel_name(def->changelog_relid)),
									  QueryFinalSql(def, state_table)),
						types, args);
	SPI_finish();
}

/*
 * The state table column (1-based, a<n>) of the panes of a view of session
 * windows that holds min or max (name) of their event time, without
 * FILTER: their first or last event.
 */
static int
event_time_column(ViewDef *def, const char *name)
{
	ListCell   *lc;

	foreach(lc, def->aggrefs)
	{
		Aggref	   *aggref = lfirst(lc);

		if (aggref->aggfilter == NULL && list_length(aggref->args) == 1 &&
			strcmp(get_func_name(aggref->aggfnoid), name) == 0 &&
			equal(((TargetEntry *) linitial(aggref->args))->expr, def->window.ts_expr))
			return foreach_current_index(lc) + 1;
	}
	elog(ERROR, "continuous view %s keeps no %s of its event time", def->view_name, name);
	return 0;
}

/*
 * Expire the windows of a view that ended longer ago than its retention,
 * behind the watermark this flush records: delete their rows from the state
 * table, in the flush's transaction, after its groups are written.  They
 * are final (retention is at least the window's size plus allowed_lateness),
 * so no group of theirs changes again.  Once a window more has passed the
 * retention since the last time, or when this flush wrote groups of such
 * windows (a backfill's, which reads the source whole).
 */
static void
expire_windows(ViewFlush *f)
{
	ViewRuntime *vr = f->vr;
	ViewDef    *def = vr->def;
	const ViewLayout *layout = &def->layout;
	int			keyno = def->window.keyno;
	bool		wrote_expired = false;
	int64		cutoff;
	int64		n;

	if (def->retention_us < 0 || !knows_final_windows(vr, f->has_watermark))
		return;
	cutoff = ViewExpireCutoff(def, f->max_ts - def->watermark_delay_us - def->retention_us);
	for (int i = 0; i < f->n && !wrote_expired; i++)
	{
		Datum		values[FLOWSTATE_MAX_KEYS];
		bool		isnull[FLOWSTATE_MAX_KEYS];

		GroupKeyRead(layout, f->items[i].key, values, isnull);
		wrote_expired = !isnull[keyno] && DatumGetInt64(values[keyno]) <= cutoff;
	}
	if (!wrote_expired && vr->expired_once && cutoff < vr->expired_cutoff + def->window.size_us)
		return;
	if (def->window.panes_of == 's')
	{
		/* the panes of a view of sessions go by whole sessions */
		n = StateTableExpireSessions(def->state_relid, layout->nkeys,
									 event_time_column(def, "min"), event_time_column(def, "max"),
									 layout->keys[keyno].type, def->window.panes_of_size_us,
									 f->max_ts - def->watermark_delay_us - def->retention_us);
	}
	else
		n = StateTableExpire(def->state_relid, keyno, layout->keys[keyno].type, cutoff);
	vr->expired_cutoff = cutoff;
	vr->expired_once = true;
	if (n > 0)
	{
		LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
		vr->shared->groups -= n;
		LWLockRelease(&vr->shared->lock);
	}
}

/*
 * FlushEvictFinal drops from shared memory the groups of a view's final
 * windows (those whose end plus allowed_lateness is behind the watermark)
 * once their flush is visible to every snapshot: StoreEvictFinal.  Over
 * a stream, by the event time every worker judged with as the last flush
 * began (write_final_event_time): a row of such a window is late in every
 * worker, and costs no lookup of its group.  The groups are walked when
 * the watermark has moved a window further since the last walk, or, a
 * second after it, when groups of final windows
 * were left, flushed too recently (vr->final_left: the memory policy calls
 * it again between flushes).  Never while a flush is under way.
 */
void
FlushEvictFinal(ViewRuntime *vr)
{
	ViewDef    *def = vr->def;
	int64		cutoff;

	if (!knows_final_windows(vr, def->stream ? vr->has_final_ts : vr->has_watermark))
		return;
	cutoff = ViewFinalCutoff(def, (def->stream ? vr->final_ts : vr->max_ts) -
							 def->watermark_delay_us - def->allowed_lateness_us);
	if (vr->final_walked && cutoff < vr->final_cutoff_walked + def->window.size_us &&
		(!vr->final_left ||
		 !TimestampDifferenceExceeds(vr->final_walked_at, GetCurrentTimestamp(), 1000)))
		return;
	vr->final_left = StoreEvictFinal(vr->shared, def->window.keyno, cutoff,
									 StoreHorizon(MyDatabaseId)) > 0;
	vr->final_cutoff_walked = cutoff;
	vr->final_walked = true;
	vr->final_walked_at = GetCurrentTimestamp();
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
	/* the histories' versions, in slices too */
	if (!HistoryFlushWrite(job->histories, start, budget_ms))
	{
		PopActiveSnapshot();
		return false;
	}
	for (int i = 0; i < job->nflush; i++)
	{
		ViewFlush  *f = &job->flushes[i];

		/* over a stream, windows become final without changes too */
		if (!f->opened &&
			!(f->vr->def->stream && f->vr->has_final_ts &&
			  (!f->had_watermark || f->max_ts > f->prev_max_ts)))
			continue;
		announce_final(f);
		expire_windows(f);
	}
	PopActiveSnapshot();

	/* decoding: the position advances the session's replication origin */
	if (!XLogRecPtrIsInvalid(job->position))
	{
		replorigin_session_origin_lsn = job->position;
		replorigin_session_origin_timestamp = GetCurrentTimestamp();
	}
	CommitTransactionCommand();
	replorigin_session_origin_lsn = InvalidXLogRecPtr;
	HistoryFlushEnd(job->histories);

	for (int i = 0; i < job->nflush; i++)
	{
		ViewFlush  *f = &job->flushes[i];

		if (f->opened)
			StoreFlushEnd(f->vr->shared, f->seq, f->items, f->n, true);
		if (f->finish_backfill)
			f->vr->def->backfilling = false;
		if (f->opened && !f->vr->def->backfilling)
			FlushEvictFinal(f->vr);
		if (f->vr->def->stream && f->vr->persisted_watermark)
		{
			/* lateness goes by what is durable now, in every worker */
			SharedView *sv = f->vr->shared;

			LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
			if (!sv->has_durable_max_ts || f->vr->persisted_max_ts > sv->durable_max_ts)
			{
				sv->has_durable_max_ts = true;
				sv->durable_max_ts = f->vr->persisted_max_ts;
			}
			LWLockRelease(&sv->lock);
			/* the flusher, worker 0: its batch under way judged with the last */
			IngestRefreshDurable(f->vr, sv, 0, false);
		}
		if (f->vr->sides_in_flight)
		{
			/* the side rows up to the position are readable now */
			SharedView *sv = f->vr->shared;

			f->vr->sides_in_flight = false;
			LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
			sv->sides_lsn = Max(sv->sides_lsn,
								f->vr->pending == NIL ? sv->applied_lsn : job->position);
			LWLockRelease(&sv->lock);
		}
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

/*
 * FlushOffsets gives, for a flush of views over a Kafka stream, the least
 * next offset of each partition over the views it wrote (-1 where one of
 * them has none yet), in the caller's memory; returns the number of
 * partitions.  Once the flush committed, they are durable.
 */
int
FlushOffsets(FlushJob *job, int64 **least)
{
	int			n = 0;

	for (int i = 0; i < job->nflush; i++)
		if (!job->flushes[i].vr->dropped)
			n = Max(n, job->flushes[i].nparts);
	*least = palloc(sizeof(int64) * Max(n, 1));
	for (int p = 0; p < n; p++)
	{
		(*least)[p] = -2;
		for (int i = 0; i < job->nflush; i++)
		{
			ViewFlush  *f = &job->flushes[i];
			int64		next = p < f->nparts ? f->parts[p].next : -1;

			if (f->vr->dropped)
				continue;
			if (next < 0 || (*least)[p] == -1)
				(*least)[p] = -1;
			else if ((*least)[p] == -2 || next < (*least)[p])
				(*least)[p] = next;
		}
		if ((*least)[p] == -2)
			(*least)[p] = -1;
	}
	return n;
}

/*
 * FlushEvict drops a view's flushed groups from shared memory down to
 * target bytes, as far as the snapshots of the database's backends allow
 * (StoreHorizon; no flush may be under way); returns the bytes the view
 * holds then.
 */
int64
FlushEvict(ViewRuntime *vr, int64 target)
{
	return StoreEvict(vr->shared, target, StoreHorizon(MyDatabaseId));
}
