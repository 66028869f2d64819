/*-------------------------------------------------------------------------
 *
 * decoder.c
 *	  The decoding worker: one per database with continuous views.  It reads
 *	  the database's WAL through one logical replication slot with
 *	  flowstate's own output plugin (output_plugin.c), decoding inside the worker
 *	  as a walsender would, and feeds every view of the database.
 *
 * Wording: the worker's *position* is the WAL position up to which every
 * committed transaction is applied to the views in shared memory; the
 * *durable* position, the one up to which they are in the state tables.
 *
 * It is a source of the worker loop (workers/source_worker.c), which
 * reads the catalog, flushes, keeps memory and reports; this file:
 *	- starts created views and stops dropped ones, and backfills new ones
 *	  (backfill.c) between batches;
 *	- decodes a batch, up to the end of the flushed WAL or about 50 ms of
 *	  work, each change going to the views over its table (change_sink.c,
 *	  ingest.c);
 *	- settles the batch and merges it into shared memory;
 *	- gives each flush its position: the state tables and the replication
 *	  origin "flowstate_<database oid>" advance together in one
 *	  transaction (flush.c), and the slot is confirmed up to that point.
 *
 * At start the worker resumes from the origin's position, which the slot
 * never passes, so a crash replays exactly what the state tables miss.  A
 * slot that has gone missing (it is dropped with the last view, or by
 * hand) is created again, and every view backfills again from scratch.
 *
 * The worker's own flushes (its origin) are not decoded, unless a view
 * reads or joins a history table, which they write: then they are, and
 * their changes of other tables (state tables) go unread.
 *
 * The worker runs outside any transaction while it decodes (decoding runs
 * its own), and in short transactions to settle, flush and read the
 * catalog; the relation and catalog caches are invalidated at each switch,
 * as logicalfuncs.c does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tupconvert.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogutils.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/origin.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/sinval.h"
#include "storage/standby.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "engine/backfill.h"
#include "engine/history.h"
#include "fs_catalog/catalog.h"
#include "sources/decoding/output_plugin.h"
#include "engine/flush.h"
#include "guc.h"
#include "engine/ingest.h"
#include "engine/open_txn.h"
#include "fs_catalog/partition.h"
#include "fs_catalog/security.h"
#include "workers/registry.h"
#include "sources/decoding/decoder.h"
#include "sources/decoding/decoding_worker.h"
#include "workers/manager.h"
#include "workers/source.h"
#include "state/state_table.h"
#include "state/state_store.h"


/* How long the worker sleeps when it has reached the end of the WAL. */
#define DECODER_IDLE_MS		5

/*
 * The shortest round that read something (source.h): under a stream of
 * small transactions, about 2 ms of them are read at once.
 */
#define DECODER_MIN_ROUND_MS	2

/* Work per batch before its changes are merged. */
#define BATCH_TIME_MS		50
#define BATCH_CHANGES		500000

/* The decoding worker of this process. */
DecodingWorker *MyDecoder = NULL;

/*
 * Enter or leave decoding.  CreateDecodingContext marks the process as a
 * decoding one (PROC_IN_LOGICAL_DECODING), which keeps its xmin and its
 * transactions out of other backends' horizons and snapshots: right while
 * decoding, whose catalog needs the slot protects, and wrong for the
 * transactions that read sources and write state tables.  The mark is
 * therefore held only while decoding.
 *
 * Decoding fills the caches with entries of the catalog as of the WAL it
 * reads; the rest of the worker needs today's.  The two differ only while
 * the decoding has not passed a catalog change that has committed: the
 * caches are invalidated at a switch (as logicalfuncs.c does at every
 * one) while the WAL read is behind the point where the worker last
 * learnt of a catalog change (an invalidation message received: its
 * commit is before the WAL insert position of that moment).  Once past it,
 * the decoding itself applied the change's invalidations where it read
 * its commit, and both catalogs are the same: invalidating at every
 * switch rebuilt the source tables' entries several hundred times a
 * second under a load of small transactions.  always forces it (the
 * decoding context was just made).
 */
static void
set_decoding(bool decoding, bool always)
{
	static uint64 seen_messages = 0;
	static XLogRecPtr catalog_changed_at = InvalidXLogRecPtr;

	Assert(!IsTransactionOrTransactionBlock());
	LWLockAcquire(ProcArrayLock, LW_EXCLUSIVE);
	if (decoding)
		MyProc->statusFlags |= PROC_IN_LOGICAL_DECODING;
	else
		MyProc->statusFlags &= ~PROC_IN_LOGICAL_DECODING;
	ProcGlobal->statusFlags[MyProc->pgxactoff] = MyProc->statusFlags;
	LWLockRelease(ProcArrayLock);

	AcceptInvalidationMessages();
	if (SharedInvalidMessageCounter != seen_messages)
	{
		seen_messages = SharedInvalidMessageCounter;
		catalog_changed_at = GetXLogInsertRecPtr();
	}
	if (always || MyDecoder->ctx == NULL ||
		MyDecoder->ctx->reader->EndRecPtr < catalog_changed_at)
		InvalidateSystemCaches();
}

static void
start_transaction(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
commit_transaction(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * The WAL reader's page callback: read_local_xlog_page, except that in
 * nonblocking mode WAL not flushed yet is not waited for.  The flush
 * position can fall inside a record (the WAL writer flushes whole pages):
 * waiting for that record's end would hold back the changes already
 * decoded until the writing transaction flushes again.
 */
static int
read_flushed_page(XLogReaderState *state, XLogRecPtr targetPagePtr, int reqLen,
				  XLogRecPtr targetRecPtr, char *cur_page)
{
	if (state->nonblocking && targetPagePtr + reqLen > GetFlushRecPtr(NULL))
	{
		MyDecoder->blocked = true;
		return XLREAD_WOULDBLOCK;
	}
	return read_local_xlog_page(state, targetPagePtr, reqLen, targetRecPtr, cur_page);
}

/*
 * Whether decoding up to end covers everything before target: target is
 * end, or (an insert position) just after the header of the page end
 * starts.
 */
static bool
reached(XLogRecPtr end, XLogRecPtr target)
{
	if (end >= target)
		return true;
	if (end % XLOG_BLCKSZ != 0)
		return false;
	return target <= end + (XLogSegmentOffset(end, wal_segment_size) == 0 ?
							SizeOfXLogLongPHD : SizeOfXLogShortPHD);
}

/* Whether a view holds so many side rows that they should be flushed now. */
static bool
pending_full(void)
{
	ListCell   *lc;

	foreach(lc, MyDecoder->worker->views)
	{
		if (list_length(((ViewRuntime *) lfirst(lc))->pending) >= INGEST_PENDING_FLUSH_ROWS)
			return true;
	}
	return false;
}

/*
 * Whether a view's batch gathered groups enough to take a quarter of its
 * memory once merged: the batch ends at the next transaction's end, so that
 * the view can flush and evict before it goes on.
 */
static bool
batch_full(void)
{
	ListCell   *lc;

	foreach(lc, MyDecoder->worker->views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (vr->ngroups >= MyDecoder->worker->batch_groups)
			return true;
	}
	return false;
}

/*
 * Decode WAL up to target, or until the batch has done enough work (or
 * gathered enough side rows) when budgeted.  Returns the position reached.
 */
static XLogRecPtr
decode_until(XLogRecPtr target, bool budgeted)
{
	LogicalDecodingContext *ctx = MyDecoder->ctx;
	TimestampTz start = GetCurrentTimestamp();
	ResourceOwner old = CurrentResourceOwner;
	MemoryContext oldcxt;
	uint64		records = 0;
	bool		in_xact;

	MyDecoder->blocked = false;
	if (ctx->reader->EndRecPtr >= target)
		return MyDecoder->position;

	/*
	 * Outside a transaction, decode as a walsender does.  Inside one (a
	 * settle's catch-up, under its recompute snapshot) the transaction's
	 * xmin must keep protecting the rows that snapshot reads, and the
	 * reorder buffer replays each transaction in a subtransaction.
	 */
	in_xact = IsTransactionState();
	if (!in_xact)
	{
		set_decoding(true, false);
		CurrentResourceOwner = MyDecoder->resowner;
	}

	/* the WAL reader allocates its buffers in the current context on first use */
	oldcxt = MemoryContextSwitchTo(ctx->context);
	while (ctx->reader->EndRecPtr < target)
	{
		char	   *errm = NULL;
		DecodedXLogRecord *record;

		/*
		 * Stop at a record not entirely flushed yet.  The nonblocking read
		 * also fails on a record too large for the reader's decode buffer:
		 * that one is read in blocking mode.
		 */
		XLogReleasePreviousRecord(ctx->reader);
		if (!XLogReaderHasQueuedRecordOrError(ctx->reader) &&
			XLogReadAhead(ctx->reader, true) == NULL &&
			!XLogReaderHasQueuedRecordOrError(ctx->reader))
		{
			if (MyDecoder->blocked)
				break;
			(void) XLogReadAhead(ctx->reader, false);
		}
		record = XLogNextRecord(ctx->reader, &errm);
		if (errm)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not read WAL for logical decoding: %s", errm)));
		if (record == NULL)
			break;
		LogicalDecodingProcessRecord(ctx, ctx->reader);
		CHECK_FOR_INTERRUPTS();

		if (budgeted && (++records % 256) == 0 &&
			(MyDecoder->batch_changes >= BATCH_CHANGES || pending_full() || batch_full() ||
			 TimestampDifferenceExceeds(start, GetCurrentTimestamp(), BATCH_TIME_MS)))
			break;
	}
	MemoryContextSwitchTo(oldcxt);
	/* transaction management while replaying may have changed it */
	CurrentResourceOwner = old;
	if (!in_xact)
		set_decoding(false, false);
	else
		InvalidateSystemCaches();

	/* every commit before EndRecPtr has been applied, and all up to target */
	MyDecoder->position = Max(MyDecoder->position, ctx->reader->EndRecPtr);
	if (reached(ctx->reader->EndRecPtr, target))
		MyDecoder->position = Max(MyDecoder->position, target);
	return MyDecoder->position;
}

/* The settle loop's catch-up: decode exactly up to lsn. */
static XLogRecPtr
catch_up(XLogRecPtr lsn)
{
	/* all of it can then be read without waiting */
	XLogFlush(lsn);
	while (!reached(MyDecoder->ctx->reader->EndRecPtr, lsn))
	{
		(void) decode_until(lsn, false);
		CHECK_FOR_INTERRUPTS();
	}
	return MyDecoder->position;
}

/* Create the database's slot if it is missing; returns true if created. */
static bool
ensure_slot(void)
{
	LogicalDecodingContext *ctx;

	if (SearchNamedReplicationSlot(MyDecoder->slot_name, true) != NULL)
		return false;

	CheckLogicalDecodingRequirements();
	ReplicationSlotCreate(MyDecoder->slot_name, true, RS_EPHEMERAL, false);
	ctx = CreateInitDecodingContext(FLOWSTATE_PLUGIN, NIL, false, InvalidXLogRecPtr,
									XL_ROUTINE(.page_read = read_flushed_page,
											   .segment_open = wal_segment_open,
											   .segment_close = wal_segment_close),
									NULL, NULL, NULL);
	DecodingContextFindStartpoint(ctx);
	FreeDecodingContext(ctx);
	ReplicationSlotPersist();
	ReplicationSlotRelease();
	set_decoding(false, true);
	ereport(LOG,
			(errmsg("flowstate created replication slot \"%s\"", MyDecoder->slot_name)));
	return true;
}

/* Set up the replication origin of this session; returns its position. */
static XLogRecPtr
setup_origin(void)
{
	XLogRecPtr	lsn;

	start_transaction();
	MyDecoder->origin = replorigin_by_name(MyDecoder->slot_name, true);
	if (MyDecoder->origin == InvalidRepOriginId)
		MyDecoder->origin = replorigin_create(MyDecoder->slot_name);
	commit_transaction();

	replorigin_session_setup(MyDecoder->origin);
	replorigin_session_origin = MyDecoder->origin;
	lsn = replorigin_session_get_progress(false);
	MyDecoder->sink.skip_origin = MyDecoder->origin;
	return lsn;
}

/* The entry of a table in the map, new or not. */
static SourceRel *
source_rel(Oid relid)
{
	bool		found;
	SourceRel  *src = hash_search(MyDecoder->sources, &relid, HASH_ENTER, &found);

	if (!found)
	{
		src->views = NIL;
		src->histories = NIL;
		src->joined_by = NIL;
		src->slot = NULL;
		src->old_slot = NULL;
		src->natts = 0;
	}
	return src;
}

/* Rebuild the map from tables to their views and histories. */
static void
index_sources(void)
{
	HASHCTL		hctl;
	ListCell   *lc;

	if (MyDecoder->sources)
		hash_destroy(MyDecoder->sources);
	hctl.keysize = sizeof(Oid);
	hctl.entrysize = sizeof(SourceRel);
	hctl.hcxt = MyDecoder->views_cxt;
	MyDecoder->sources = hash_create("flowstate sources", 16, &hctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	MyDecoder->leaves_stale = true;		/* they point to the sources */
	MyDecoder->joins = false;
	foreach(lc, MyDecoder->worker->views)
	{
		ViewRuntime *vr = lfirst(lc);
		SourceRel  *src = source_rel(vr->def->source_relid);
		MemoryContext oldcxt;

		oldcxt = MemoryContextSwitchTo(MyDecoder->views_cxt);
		src->views = lappend(src->views, vr);
		MemoryContextSwitchTo(oldcxt);
		/* the table it joins: its changes make groups stale (dimension.c) */
		if (vr->def->join.present)
		{
			SourceRel  *dim = source_rel(vr->def->join.relid);

			MyDecoder->joins = true;

			oldcxt = MemoryContextSwitchTo(MyDecoder->views_cxt);
			dim->joined_by = lappend(dim->joined_by, vr);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	MyDecoder->sink.decode_own = false;
	foreach(lc, MyDecoder->worker->histories)
	{
		HistoryRuntime *h = lfirst(lc);
		SourceRel  *src = source_rel(HistorySource(h));
		SourceRel  *reader;
		Oid			table;
		MemoryContext oldcxt;

		oldcxt = MemoryContextSwitchTo(MyDecoder->views_cxt);
		src->histories = lappend(src->histories, h);
		MemoryContextSwitchTo(oldcxt);
		/*
		 * A view over the history, or joining it: the flushes that write it
		 * are decoded too
		 */
		table = HistoryTable(h);
		reader = hash_search(MyDecoder->sources, &table, HASH_FIND, NULL);
		if (reader != NULL && (reader->views != NIL || reader->joined_by != NIL))
			MyDecoder->sink.decode_own = true;
	}
}

/*
 * Register a view in shared memory and start it: load its state or queue a
 * backfill.  Runs in a transaction.
 */
static ViewRuntime *
start_view(ViewDef *def)
{
	ViewRuntime *vr = IngestViewCreate(def, def->cxt);
	StoreKey	key;

	key.dboid = MyDatabaseId;
	key.relid = def->state_relid;
	vr->shared = StoreRegisterView(key, def->view_id, def->view_relid, def->def_relid, &def->layout,
								   CatalogMemoryLimit(def), false);
	if (!def->backfilling)
	{
		IngestLoadState(vr);
		LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
		vr->shared->status = VIEW_RUNNING;
		LWLockRelease(&vr->shared->lock);
	}
	return vr;
}

static void
stop_view(ViewRuntime *vr)
{
	StoreUnregisterView(vr->shared);
	IngestViewDestroy(vr);
	MemoryContextDelete(vr->def->cxt);
}

/*
 * Compare the catalog with the running views: start new ones, stop dropped
 * ones.  Returns false if the extension is gone.
 */
static bool
read_catalog(void)
{
	List	   *defs;
	List	   *keep = NIL;
	ListCell   *lc;
	bool		present;

	start_transaction();
	present = CatalogExtensionPresent();
	defs = present ? CatalogLoadViews(MyDecoder->views_cxt, SourceKnownView, InvalidOid) : NIL;
	foreach(lc, defs)
	{
		ViewDef    *def = lfirst(lc);
		ViewRuntime *vr = SourceFindView(MyDecoder->worker->views, def->view_id,
										  def->state_relid);
		MemoryContext oldcxt;

		if (vr == NULL)
			vr = start_view(def);
		else
			vr->def->owner = def->owner;	/* ALTER ... OWNER TO */
		oldcxt = MemoryContextSwitchTo(MyDecoder->views_cxt);
		keep = lappend(keep, vr);
		MemoryContextSwitchTo(oldcxt);
	}
	if (present)
	{
		List	   *old = MyDecoder->worker->histories;

		MyDecoder->worker->histories = HistoryReadCatalog(old, MyDecoder->views_cxt, InvalidOid);
		list_free(old);
	}
	commit_transaction();
	if (!present)
		return false;

	foreach(lc, MyDecoder->worker->views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (!list_member_ptr(keep, vr))
			stop_view(vr);
	}
	list_free(MyDecoder->worker->views);
	MyDecoder->worker->views = keep;
	index_sources();
	OpenTxnViewsChanged(keep);
	return true;
}

/*
 * Decode up to lsn, where a backfill's snapshot stops, in batches that keep
 * every view within its memory: a new view too is flushed and evicted
 * meanwhile, though it stays backfilling in the catalog (a crash starts its
 * backfill again).
 */
static void
decode_up_to(XLogRecPtr lsn)
{
	XLogFlush(lsn);
	for (;;)
	{
		bool		done = reached(MyDecoder->ctx->reader->EndRecPtr, lsn);

		/* (a view to rebuild holds back flushes: no waiting for memory then) */
		if (SourceEnforceMemory(MyDecoder->worker) && !done && !DecodingRebuildPending())
		{
			SourceReportPause(MyDecoder->worker, true);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 DECODER_IDLE_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		SourceReportPause(MyDecoder->worker, false);
		if (!done)
			(void) decode_until(lsn, true);
		MyDecoder->position = IngestSettle(MyDecoder->worker->views, MyDecoder->position, catch_up);
		if (done)
			break;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Backfill a new view: read its source under a snapshot synchronised with
 * the position, decode up to where the snapshot stops, skipping for this
 * view what it saw, and settle.  Runs between two batches.
 */
static void
backfill(ViewRuntime *vr)
{
	int64		kept_gid = 0;
	MemoryContext oldcxt;
	SyncSnapshot *snap;
	StoreKey	key;

	ereport(LOG,
			(errmsg("flowstate backfilling continuous view \"%s\"",
					vr->def->view_name)));
	pgstat_report_activity(STATE_RUNNING, "backfilling a continuous view");

	/* start from nothing, in shared memory and in the state table */
	IngestLoadCancel(vr);
	key.dboid = MyDatabaseId;
	key.relid = vr->def->state_relid;
	vr->shared = StoreRegisterView(key, vr->def->view_id, vr->def->view_relid, vr->def->def_relid,
								   &vr->def->layout, CatalogMemoryLimit(vr->def), false);
	/*
	 * A rebuild of a view whose windows become final keeps the state of the
	 * windows that were final as of its last flush, and its watermark: the
	 * rows of those windows were in that flush or refused as late when they
	 * came, and a backfill must not apply the refused ones now.  A new view
	 * starts from nothing.
	 */
	vr->keep_final = vr->def->allowed_lateness_us >= 0 && vr->def->window.size_us > 0 &&
		vr->persisted_watermark && vr->has_watermark;
	if (vr->keep_final)
		vr->final_cutoff = ViewFinalCutoff(vr->def, vr->persisted_max_ts - vr->def->watermark_delay_us -
										   vr->def->allowed_lateness_us);
	start_transaction();
	if (vr->keep_final ?
		!StateTableKeepFinal(vr->def->state_relid, vr->def->window.keyno,
							 vr->final_cutoff, &kept_gid) :
		!StateTableTruncate(vr->def->state_relid))
	{
		/* dropped meanwhile: the next look at the catalog forgets it */
		commit_transaction();
		vr->dropped = true;
		vr->def->backfilling = false;
		return;
	}
	LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
	vr->shared->complete = true;
	LWLockRelease(&vr->shared->lock);
	if (!vr->keep_final)
		vr->has_watermark = vr->persisted_watermark = false;
	vr->next_gid = kept_gid + 1;
	oldcxt = MemoryContextSwitchTo(MyDecoder->views_cxt);
	snap = SyncSnapshotTake(MyDecoder->views_cxt);
	MemoryContextSwitchTo(oldcxt);
	BackfillScan(vr, snap);
	SyncSnapshotDone(snap);
	commit_transaction();

	/* decode up to where the snapshot stops, the view skipping what it saw */
	LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
	vr->shared->status = VIEW_RUNNING;
	LWLockRelease(&vr->shared->lock);
	vr->backfill_snap = snap;
	decode_up_to(snap->lsn);
	vr->backfill_snap = NULL;
	vr->keep_final = false;

	ereport(LOG,
			(errmsg("flowstate finished backfilling continuous view \"%s\"",
					vr->def->view_name)));
}

/*
 * Backfill a new history: version 1 of each row its source holds under a
 * snapshot synchronised with the position, then decode up to where the
 * snapshot stops, the history skipping what it saw.  Until a flush records
 * it running, a crash starts it over.
 */
static void
history_backfill(HistoryRuntime *h)
{
	MemoryContext oldcxt;
	SyncSnapshot *snap;

	pgstat_report_activity(STATE_RUNNING, "backfilling a history");
	start_transaction();
	oldcxt = MemoryContextSwitchTo(MyDecoder->views_cxt);
	snap = SyncSnapshotTake(MyDecoder->views_cxt);
	MemoryContextSwitchTo(oldcxt);
	HistoryBackfill(h, snap);
	SyncSnapshotDone(snap);
	commit_transaction();
	decode_up_to(snap->lsn);
	HistoryBackfillCaughtUp(h);
}

/*
 * Record in the catalog that a view starts over, before its state table is
 * emptied: after a crash it backfills again, whatever the durable position.
 * Its first flush records the end of the backfill.
 */
static void
persist_rebuild(ViewRuntime *vr)
{
	Datum		arg = Int32GetDatum(vr->def->view_id);
	Oid			type = INT4OID;

	start_transaction();
	SPI_connect();
	if (SPI_execute_with_args("UPDATE flowstate.view SET status = 'backfilling' WHERE view_id = $1",
							  1, &type, &arg, NULL, false, 0) < 0)
		elog(ERROR, "could not update flowstate.view");
	SPI_finish();
	commit_transaction();
}

/*
 * The flush committed: let the slot go up to the durable position.
 *
 * The slot's restart point moves only at a record of running transactions
 * decoded after the position it moves to, which the server logs every 15 s
 * or so; a restart decodes again all the WAL after that point, transactions
 * long durable included.  So one is logged at once when the durable
 * position is a WAL segment past the restart point (and past the record
 * logged last), or a transaction decoded while in progress has become
 * durable: a restart then reads again about one flush interval of WAL, not
 * all of a load.
 */
static void
decoding_flushed(SourceWorker *w, FlushJob *job, XLogRecPtr durable)
{
	bool		streamed_durable;
	bool		restart_behind;

	MyDecoder->durable = Max(MyDecoder->durable, durable);
	if (MyDecoder->durable > MyReplicationSlot->data.confirmed_flush)
		LogicalConfirmReceivedLocation(MyDecoder->durable);

	streamed_durable = MyDecoder->streamed_commit_lsn > MyDecoder->snapshot_logged_for &&
		MyDecoder->durable >= MyDecoder->streamed_commit_lsn;
	restart_behind = MyDecoder->durable > MyDecoder->snapshot_logged_at &&
		MyDecoder->durable - MyReplicationSlot->data.restart_lsn >= (uint64) wal_segment_size;
	if (streamed_durable || restart_behind)
	{
		MyDecoder->snapshot_logged_at = LogStandbySnapshot();
		MyDecoder->snapshot_logged_for = Min(MyDecoder->streamed_commit_lsn, MyDecoder->durable);
	}
}

/*
 * A flush makes the position durable, but never past the cause of a
 * rebuild: a crash must decode it again.
 */
static bool
decoding_flush_position(SourceWorker *w, XLogRecPtr *position)
{
	if (DecodingRebuildPending())
		return false;
	*position = MyDecoder->position;
	return true;
}

/* Between batches, when no flush is under way: rebuilds and backfills. */
static bool
decoding_prepare(SourceWorker *w)
{
	ListCell   *lc;

	if (w->flush_job != NULL)
		return true;
	foreach(lc, w->views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (vr->dropped)
			continue;
		if (vr->rebuild)
		{
			/* its rows changed in a way deltas cannot follow: start it over */
			persist_rebuild(vr);
			vr->rebuild = false;
			vr->def->backfilling = true;
			backfill(vr);
		}
		else if (vr->def->backfilling && vr->shared->status == VIEW_STARTING)
			backfill(vr);
	}
	foreach(lc, w->histories)
	{
		if (HistoryWantsBackfill(lfirst(lc)))
			history_backfill(lfirst(lc));
	}
	return true;
}

/*
 * Decode a batch up to the end of the flushed WAL (or its budget), settle
 * it and merge it; the loop goes on at once while there is more WAL.
 */
static bool
decoding_read_batch(SourceWorker *w)
{
	XLogRecPtr	end_of_wal = GetFlushRecPtr(NULL);

	MyDecoder->batch_changes = 0;
	(void) decode_until(end_of_wal, true);
	w->progress.changes += MyDecoder->batch_changes;
	MyDecoder->position = IngestSettle(w->views, MyDecoder->position, catch_up);
	return MyDecoder->ctx->reader->EndRecPtr < end_of_wal && !MyDecoder->blocked;
}

static void
decoding_describe(SourceWorker *w, char *buf, size_t len)
{
	OpenTxnStats open;

	OpenTxnGetStats(&open);
	w->progress.applied_lsn = MyDecoder->position;
	w->progress.durable_lsn = MyDecoder->durable;
	w->progress.open_txns = open.open;
	w->progress.open_txn_bytes = open.bytes;
	w->progress.open_txn_peak_bytes = open.peak_bytes;
	w->progress.open_txn_spilled_bytes = open.spilled_bytes;
	w->progress.streamed_txns = open.committed;
	snprintf(buf, len, "decoding %d views at %X/%X",
			 list_length(w->views), LSN_FORMAT_ARGS(MyDecoder->position));
}

/*
 * Close decoding as the worker leaves (its views flushed): with no view
 * left, neither slot nor origin may hold back WAL.
 */
static void
decoding_close(SourceWorker *w, WorkerExit how)
{
	bool		any_views;

	if (MyDecoder->ctx != NULL)
	{
		FreeDecodingContext(MyDecoder->ctx);
		MyDecoder->ctx = NULL;
	}
	OpenTxnForgetAll();
	HistoryForgetOpen();
	if (MyReplicationSlot != NULL)
		ReplicationSlotRelease();

	start_transaction();
	any_views = CatalogExtensionPresent() &&
		(CatalogLoadViews(CurrentMemoryContext, SourceKnownView, InvalidOid) != NIL ||
		 HistoryAny());
	commit_transaction();
	if (!any_views)
	{
		if (replorigin_session_origin != InvalidRepOriginId)
		{
			replorigin_session_reset();
			replorigin_session_origin = InvalidRepOriginId;
		}
		start_transaction();
		ManagerDropDecoderSlot(MyDatabaseId);
		commit_transaction();
	}
	StoreForgetDatabase(MyDatabaseId);
}

static bool
decoding_read_catalog(SourceWorker *w)
{
	return read_catalog();
}

/*
 * Set decoding up: the origin and its position, the slot (created again if
 * missing, every view then rebuilt), the views, the decoding context.
 */
static void
decoding_open(SourceWorker *w)
{
	XLogRecPtr	origin_lsn;
	bool		created;

	MyDecoder->worker = w;
	MyDecoder->views_cxt = AllocSetContextCreate(w->worker_cxt, "flowstate decoder views",
												 ALLOCSET_DEFAULT_SIZES);
	MyDecoder->leaves_cxt = AllocSetContextCreate(w->worker_cxt, "flowstate decoder partitions",
												  ALLOCSET_DEFAULT_SIZES);
	MyDecoder->resowner = ResourceOwnerCreate(NULL, "flowstate decoder");
	ManagerDecoderSlotName(MyDatabaseId, MyDecoder->slot_name);
	DecodingSinkInit(&MyDecoder->sink);

	/*
	 * Minor releases from 15.19 on load only the output plugins named in
	 * output_plugin_libraries, a superuser setting.  This worker runs as the
	 * bootstrap superuser and allows its own plugin for its own session;
	 * other sessions keep the server's list.
	 */
	if (GetConfigOption("output_plugin_libraries", true, false) != NULL)
		SetConfigOption("output_plugin_libraries", FLOWSTATE_PLUGIN,
						PGC_SUSET, PGC_S_SESSION);

	/* groups a failed predecessor left are replayed from the durable position */
	StoreForgetDatabase(MyDatabaseId);

	origin_lsn = setup_origin();
	created = ensure_slot();
	SourceReadCatalog(w);
	if (created)
	{
		ListCell   *lc;

		/* the WAL since the durable position is gone: rebuild every view */
		foreach(lc, w->views)
		{
			ViewRuntime *vr = lfirst(lc);

			if (!vr->def->backfilling)
				ereport(WARNING,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("continuous view \"%s\" is rebuilt: replication slot \"%s\" was missing",
								vr->def->view_name, MyDecoder->slot_name)));
			vr->def->backfilling = true;
			LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
			vr->shared->status = VIEW_STARTING;
			LWLockRelease(&vr->shared->lock);
		}
		/* a history cannot be rebuilt: its past is not in its source */
		foreach(lc, w->histories)
		{
			if (!HistoryWantsBackfill(lfirst(lc)))
				HistoryFail(lfirst(lc), psprintf("replication slot \"%s\" was missing: changes were lost",
												 MyDecoder->slot_name));
		}
		origin_lsn = InvalidXLogRecPtr;
	}

	ReplicationSlotAcquire(MyDecoder->slot_name, true);
	MyDecoder->ctx = CreateDecodingContext(origin_lsn, NIL, false,
										   XL_ROUTINE(.page_read = read_flushed_page,
													  .segment_open = wal_segment_open,
													  .segment_close = wal_segment_close),
										   NULL, NULL, NULL);
	MyDecoder->ctx->output_writer_private = &MyDecoder->sink;
	set_decoding(false, true);
	XLogBeginRead(MyDecoder->ctx->reader, MyReplicationSlot->data.restart_lsn);
	MyDecoder->position = Max(MyReplicationSlot->data.confirmed_flush, origin_lsn);
	MyDecoder->durable = MyDecoder->position;
	/* from here on, the loop flushes the views at the position */
	w->flushes = true;
}

static const SourceCallbacks decoding_source = {
	.verb = "decoding",
	.idle_ms = DECODER_IDLE_MS,
	.min_round_ms = DECODER_MIN_ROUND_MS,
	.open = decoding_open,
	.read_catalog = decoding_read_catalog,
	.prepare = decoding_prepare,
	.read_batch = decoding_read_batch,
	.paused = NULL,
	.flush_position = decoding_flush_position,
	.flushed = decoding_flushed,
	.describe = decoding_describe,
	.close = decoding_close,
};

/*
 * flowstate_decoder_main is the entry point of the decoding worker.  Its argument is
 * the slot number; bgw_extra holds the slot's generation.
 */
void
flowstate_decoder_main(Datum main_arg)
{
	MyDecoder = MemoryContextAllocZero(TopMemoryContext, sizeof(DecodingWorker));
	SourceWorkerRun(main_arg, &decoding_source, MyDecoder);
}
