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
 * The loop:
 *	- notices created and dropped views (the catalog generation that
 *	  backends bump at commit) and backfills new ones (backfill.c);
 *	- decodes a batch, up to the end of the flushed WAL or about 50 ms of
 *	  work, each change going to the views over its table (ingest.c);
 *	- settles the batch and merges it into shared memory;
 *	- every flowstate.flush_interval, flushes (flush.c): the state tables
 *	  and the replication origin "flowstate_<database oid>" advance together
 *	  in one transaction, and the slot is confirmed up to that point;
 *	- evicts flushed groups when a view holds more memory than it may.
 *
 * At start the worker resumes from the origin's position, which the slot
 * never passes, so a crash replays exactly what the state tables miss.  A
 * slot that has gone missing (it is dropped with the last view, or by
 * hand) is created again, and every view backfills again from scratch.
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
#include "fs_catalog/catalog.h"
#include "sources/decoding/output_plugin.h"
#include "engine/flush.h"
#include "guc.h"
#include "engine/ingest.h"
#include "fs_catalog/partition.h"
#include "fs_catalog/security.h"
#include "workers/registry.h"
#include "sources/decoding/decoder.h"
#include "workers/manager.h"
#include "state/state_table.h"
#include "state/state_store.h"


/* How long the worker sleeps when it has reached the end of the WAL. */
#define DECODER_IDLE_MS		5

/* Work per batch before its changes are merged. */
#define BATCH_TIME_MS		50
#define BATCH_CHANGES		500000

/* Time between two attempts to bring a view near its memory limit back. */
#define EVICT_RETRY_MS		100

/* A pause for memory longer than this is reported. */
#define PAUSE_REPORT_MS		1000

/* Time a flush writes for between two batches. */
#define FLUSH_SLICE_MS		20

/* A table feeding views, with a slot of its current row type. */
typedef struct SourceRel
{
	Oid			relid;
	List	   *views;			/* ViewRuntime */
	TupleTableSlot *slot;
	int			natts;
} SourceRel;

/* A partitioned table above a leaf that feeds views, as the leaf sees it. */
typedef struct LeafTarget
{
	SourceRel  *src;
	TupleConversionMap *map;	/* the leaf's row type to the source's, or
								 * NULL if they are the same */
	TupleTableSlot *slot;		/* of the source's row type */
} LeafTarget;

/*
 * A partition whose changes feed the views over the partitioned tables
 * above it, found by its relid as of the change decoded.
 */
typedef struct LeafRel
{
	Oid			relid;
	List	   *targets;		/* LeafTarget; NIL if none feeds a view */
	TupleTableSlot *slot;		/* of the leaf's row type */
} LeafRel;

typedef struct Decoder
{
	char		slot_name[NAMEDATALEN];
	RepOriginId origin;
	LogicalDecodingContext *ctx;
	ResourceOwner resowner;
	DecoderSink sink;

	MemoryContext views_cxt;	/* the views and everything about them */
	List	   *views;			/* ViewRuntime */
	HTAB	   *sources;		/* relid -> SourceRel */
	MemoryContext leaves_cxt;	/* the partitions below sources: */
	HTAB	   *leaves;			/* relid -> LeafRel, rebuilt after any relcache
								 * invalidation (an ATTACH, DETACH, column
								 * change) */
	bool		leaves_stale;
	uint64		catalog_generation;
	TimestampTz catalog_read_at;

	XLogRecPtr	position;
	XLogRecPtr	durable;
	TimestampTz paused_since;	/* decoding held back for memory, or 0 */
	bool		blocked;		/* decoding reached a record not flushed yet */
	FlushJob   *flush_job;		/* the flush being written, or NULL */

	/* the transaction being decoded */
	bool		txn_changed;
	uint64		batch_changes;

	/* progress */
	SourceProgress progress;
	TimestampTz last_flush;
} Decoder;

static Decoder *D = NULL;

/*
 * Enter or leave decoding.  CreateDecodingContext marks the process as a
 * decoding one (PROC_IN_LOGICAL_DECODING), which keeps its xmin and its
 * transactions out of other backends' horizons and snapshots: right while
 * decoding, whose catalog needs the slot protects, and wrong for the
 * transactions that read sources and write state tables.  The mark is
 * therefore held only while decoding.  Caches are invalidated at each
 * switch, as logicalfuncs.c does: decoding fills them with entries of the
 * catalog's past.
 */
static void
set_decoding(bool decoding)
{
	Assert(!IsTransactionOrTransactionBlock());
	LWLockAcquire(ProcArrayLock, LW_EXCLUSIVE);
	if (decoding)
		MyProc->statusFlags |= PROC_IN_LOGICAL_DECODING;
	else
		MyProc->statusFlags &= ~PROC_IN_LOGICAL_DECODING;
	ProcGlobal->statusFlags[MyProc->pgxactoff] = MyProc->statusFlags;
	LWLockRelease(ProcArrayLock);
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

/* The slot of a table's current row type. */
static TupleTableSlot *
source_slot(SourceRel *src, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (src->slot == NULL || src->natts != desc->natts)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(D->views_cxt);

		if (src->slot)
			ExecDropSingleTupleTableSlot(src->slot);
		src->slot = MakeSingleTupleTableSlot(CreateTupleDescCopyConstr(desc),
											 &TTSOpsHeapTuple);
		src->natts = desc->natts;
		MemoryContextSwitchTo(oldcxt);
	}
	return src->slot;
}

static void
sink_begin(void *arg, TransactionId xid, XLogRecPtr commit_lsn)
{
	D->txn_changed = false;
	IngestTxnBegin(D->views, xid, commit_lsn);
}

/*
 * Replace the unchanged toasted values an UPDATE's new row leaves out (the
 * WAL has only their pointers) by those of the old row, which a table with
 * REPLICA IDENTITY FULL logs whole.
 */
static void
store_new_row(TupleTableSlot *slot, HeapTuple newtuple, HeapTuple oldtuple)
{
	TupleDesc	desc = slot->tts_tupleDescriptor;
	bool		unchanged = false;
	Datum	   *oldvalues;
	bool	   *oldnulls;

	ExecStoreHeapTuple(newtuple, slot, false);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attlen == -1 && !att->attisdropped)
		{
			bool		isnull;
			Datum		d = slot_getattr(slot, i + 1, &isnull);

			if (!isnull && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(d)))
				unchanged = true;
		}
	}
	if (!unchanged || oldtuple == NULL)
		return;

	slot_getallattrs(slot);
	oldvalues = palloc(sizeof(Datum) * desc->natts);
	oldnulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(oldtuple, desc, oldvalues, oldnulls);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attlen == -1 && !slot->tts_isnull[i] &&
			VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(slot->tts_values[i])))
		{
			slot->tts_values[i] = oldvalues[i];
			slot->tts_isnull[i] = oldnulls[i];
		}
	}
	/* keep the values: the slot becomes a copy */
	ExecMaterializeSlot(slot);
}

/*
 * Ask for a view to be rebuilt from its source: the rows of the source
 * changed in a way its deltas cannot follow.  Until then the view is not
 * waited for (wait_for) and no flush passes this point of the WAL (see
 * flush_start), so a crash decodes the cause again.
 */
static void
request_rebuild(ViewRuntime *vr, const char *why)
{
	/* a backfill that saw this transaction read its rows already */
	if (vr->rebuild || vr->dropped || vr->skip_txn)
		return;
	vr->rebuild = true;
	LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
	vr->shared->status = VIEW_STARTING;
	LWLockRelease(&vr->shared->lock);
	ereport(LOG,
			(errmsg("flowstate rebuilds continuous view \"%s\": %s",
					vr->def->view_name, why)));
}

/* Whether a view waits to be rebuilt. */
static bool
rebuild_pending(void)
{
	ListCell   *lc;

	foreach(lc, D->views)
	{
		if (((ViewRuntime *) lfirst(lc))->rebuild)
			return true;
	}
	return false;
}

/* A relcache invalidation: partitions may have been attached or detached. */
static void
leaves_invalidated(Datum arg, Oid relid)
{
	if (D != NULL)
		D->leaves_stale = true;
}

/*
 * The sources above a partition, as of the change being decoded (the
 * catalog as of that point of the WAL: a partition whose detach has begun
 * no longer feeds the tables above it).
 */
static LeafRel *
leaf_of(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	LeafRel    *leaf;
	bool		found;
	List	   *ancestors;
	ListCell   *lc;
	MemoryContext oldcxt;

	if (D->leaves_stale || D->leaves == NULL)
	{
		HASHCTL		hctl;

		MemoryContextReset(D->leaves_cxt);
		hctl.keysize = sizeof(Oid);
		hctl.entrysize = sizeof(LeafRel);
		hctl.hcxt = D->leaves_cxt;
		D->leaves = hash_create("flowstate partitions", 16, &hctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		D->leaves_stale = false;
	}
	leaf = hash_search(D->leaves, &relid, HASH_ENTER, &found);
	if (found)
		return leaf;
	leaf->targets = NIL;
	leaf->slot = NULL;

	ancestors = get_partition_ancestors(relid);
	oldcxt = MemoryContextSwitchTo(D->leaves_cxt);
	foreach(lc, ancestors)
	{
		Oid			parent = lfirst_oid(lc);
		SourceRel  *src = hash_search(D->sources, &parent, HASH_FIND, NULL);
		Relation	prel;
		TupleDesc	pdesc;
		LeafTarget *t;

		if (src == NULL || !RelationIsValid(prel = RelationIdGetRelation(parent)))
			continue;
		pdesc = CreateTupleDescCopy(RelationGetDescr(prel));
		RelationClose(prel);
		t = palloc(sizeof(LeafTarget));
		t->src = src;
		t->slot = MakeSingleTupleTableSlot(pdesc, &TTSOpsVirtual);
		t->map = convert_tuples_by_name(RelationGetDescr(rel), pdesc);
		leaf->targets = lappend(leaf->targets, t);
	}
	if (leaf->targets != NIL)
		leaf->slot = MakeSingleTupleTableSlot(CreateTupleDescCopyConstr(RelationGetDescr(rel)),
											  &TTSOpsHeapTuple);
	MemoryContextSwitchTo(oldcxt);
	return leaf;
}

/* A row of slot in the row type of a source: converted into out by map. */
static TupleTableSlot *
source_row(TupleTableSlot *slot, TupleConversionMap *map, TupleTableSlot *out)
{
	if (map == NULL)
		return slot;
	return execute_attr_map_slot(map->attrMap, slot, out);
}

/*
 * Apply a change of relation rel to views, its rows read in slot (of rel's
 * row type) and converted by map into out, the row type of their source.
 */
static void
apply_change(List *views, Relation rel, ReorderBufferChange *change,
			 TupleTableSlot *slot, TupleConversionMap *map, TupleTableSlot *out)
{
	HeapTuple	oldtuple = change->data.tp.oldtuple ? &change->data.tp.oldtuple->tuple : NULL;
	HeapTuple	newtuple = change->data.tp.newtuple ? &change->data.tp.newtuple->tuple : NULL;
	TupleTableSlot *row;
	ListCell   *lc;

	if (change->action != REORDER_BUFFER_CHANGE_INSERT && oldtuple == NULL)
	{
		/* the old row is needed: REPLICA IDENTITY FULL was removed */
		foreach(lc, views)
			request_rebuild(lfirst(lc), "a table it reads no longer logs old rows");
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" no longer logs old rows; its continuous views are rebuilt",
						RelationGetRelationName(rel)),
				 errhint("Keep REPLICA IDENTITY FULL on the tables of continuous views.")));
		return;
	}

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			ExecStoreHeapTuple(newtuple, slot, false);
			row = source_row(slot, map, out);
			foreach(lc, views)
				IngestRow(lfirst(lc), row, 1, change->lsn);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			ExecStoreHeapTuple(oldtuple, slot, false);
			row = source_row(slot, map, out);
			foreach(lc, views)
				IngestRow(lfirst(lc), row, -1, change->lsn);
			store_new_row(slot, newtuple, oldtuple);
			row = source_row(slot, map, out);
			foreach(lc, views)
				IngestRow(lfirst(lc), row, 1, change->lsn);
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			ExecStoreHeapTuple(oldtuple, slot, false);
			row = source_row(slot, map, out);
			foreach(lc, views)
				IngestRow(lfirst(lc), row, -1, change->lsn);
			break;
		default:
			break;
	}
	if (out != NULL)
		ExecClearTuple(out);
	ExecClearTuple(slot);
}

/*
 * A change of a table goes to the views over it and, for a partition, to
 * the views over the partitioned tables above it.
 */
static void
sink_change(void *arg, Relation rel, ReorderBufferChange *change)
{
	Oid			relid = RelationGetRelid(rel);
	SourceRel  *src;
	LeafRel    *leaf = NULL;
	ListCell   *lc;

	D->txn_changed = true;
	src = hash_search(D->sources, &relid, HASH_FIND, NULL);
	if (rel->rd_rel->relispartition)
	{
		leaf = leaf_of(rel);
		if (leaf->targets == NIL)
			leaf = NULL;
	}
	if (src == NULL && leaf == NULL)
		return;
	D->batch_changes++;

	if (src != NULL)
		apply_change(src->views, rel, change, source_slot(src, rel), NULL, NULL);
	if (leaf != NULL)
	{
		foreach(lc, leaf->targets)
		{
			LeafTarget *t = lfirst(lc);

			apply_change(t->src->views, rel, change, leaf->slot, t->map, t->slot);
		}
	}
}

/*
 * A truncated table empties the views over it; a truncated partition
 * rebuilds those over the partitioned tables above it, which keep the
 * rows of their other partitions.
 */
static void
sink_truncate(void *arg, int nrelations, Relation *relations)
{
	D->txn_changed = true;
	for (int i = 0; i < nrelations; i++)
	{
		Oid			relid = RelationGetRelid(relations[i]);
		SourceRel  *src = hash_search(D->sources, &relid, HASH_FIND, NULL);
		ListCell   *lc;

		if (src != NULL)
		{
			foreach(lc, src->views)
				IngestTruncate(lfirst(lc));
		}
		if (relations[i]->rd_rel->relispartition)
		{
			foreach(lc, leaf_of(relations[i])->targets)
			{
				LeafTarget *t = lfirst(lc);
				ListCell   *lv;

				foreach(lv, t->src->views)
					request_rebuild(lfirst(lv), "one of its partitions was truncated");
			}
		}
	}
}

/*
 * A message of PartitionNoteChange: partitions were attached, detached or
 * dropped, and the rows of the partitioned tables it names changed.
 */
static void
sink_message(void *arg, const char *prefix, Size size, const char *message)
{
	if (strcmp(prefix, PARTITION_MESSAGE_PREFIX) != 0)
		return;
	/* the snapshot of the rebuild must see this transaction */
	D->txn_changed = true;
	for (Size off = 0; off + sizeof(Oid) <= size; off += sizeof(Oid))
	{
		Oid			relid;
		SourceRel  *src;
		ListCell   *lc;

		memcpy(&relid, message + off, sizeof(Oid));
		src = hash_search(D->sources, &relid, HASH_FIND, NULL);
		if (src == NULL)
			continue;
		foreach(lc, src->views)
			request_rebuild(lfirst(lc), "partitions were attached, detached or dropped");
	}
}

static void
sink_commit(void *arg, TransactionId xid)
{
	if (D->txn_changed)
		SyncNoteXid(xid);
	D->progress.transactions++;
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
		D->blocked = true;
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

	foreach(lc, D->views)
	{
		if (list_length(((ViewRuntime *) lfirst(lc))->pending) >= INGEST_PENDING_FLUSH_ROWS)
			return true;
	}
	return false;
}

/* Whether a flowstate.wait_for() waits for the side rows of a view. */
static bool
sides_wanted(void)
{
	ListCell   *lc;

	foreach(lc, D->views)
	{
		if (((ViewRuntime *) lfirst(lc))->shared->sides_wanted)
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

	foreach(lc, D->views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (vr->ngroups >= IngestBatchGroups(vr, CatalogMemoryLimit(vr->def)))
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
	LogicalDecodingContext *ctx = D->ctx;
	TimestampTz start = GetCurrentTimestamp();
	ResourceOwner old = CurrentResourceOwner;
	MemoryContext oldcxt;
	uint64		records = 0;
	bool		in_xact;

	D->blocked = false;
	if (ctx->reader->EndRecPtr >= target)
		return D->position;

	/*
	 * Outside a transaction, decode as a walsender does.  Inside one (a
	 * settle's catch-up, under its recompute snapshot) the transaction's
	 * xmin must keep protecting the rows that snapshot reads, and the
	 * reorder buffer replays each transaction in a subtransaction.
	 */
	in_xact = IsTransactionState();
	if (!in_xact)
	{
		set_decoding(true);
		CurrentResourceOwner = D->resowner;
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
			if (D->blocked)
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
			(D->batch_changes >= BATCH_CHANGES || pending_full() || batch_full() ||
			 TimestampDifferenceExceeds(start, GetCurrentTimestamp(), BATCH_TIME_MS)))
			break;
	}
	MemoryContextSwitchTo(oldcxt);
	/* transaction management while replaying may have changed it */
	CurrentResourceOwner = old;
	if (!in_xact)
		set_decoding(false);
	else
		InvalidateSystemCaches();

	/* every commit before EndRecPtr has been applied, and all up to target */
	D->position = Max(D->position, ctx->reader->EndRecPtr);
	if (reached(ctx->reader->EndRecPtr, target))
		D->position = Max(D->position, target);
	return D->position;
}

/* The settle loop's catch-up: decode exactly up to lsn. */
static XLogRecPtr
catch_up(XLogRecPtr lsn)
{
	/* all of it can then be read without waiting */
	XLogFlush(lsn);
	while (!reached(D->ctx->reader->EndRecPtr, lsn))
	{
		(void) decode_until(lsn, false);
		CHECK_FOR_INTERRUPTS();
	}
	return D->position;
}

/* Create the database's slot if it is missing; returns true if created. */
static bool
ensure_slot(void)
{
	LogicalDecodingContext *ctx;

	if (SearchNamedReplicationSlot(D->slot_name, true) != NULL)
		return false;

	CheckLogicalDecodingRequirements();
	ReplicationSlotCreate(D->slot_name, true, RS_EPHEMERAL, false);
	ctx = CreateInitDecodingContext(FLOWSTATE_PLUGIN, NIL, false, InvalidXLogRecPtr,
									XL_ROUTINE(.page_read = read_flushed_page,
											   .segment_open = wal_segment_open,
											   .segment_close = wal_segment_close),
									NULL, NULL, NULL);
	DecodingContextFindStartpoint(ctx);
	FreeDecodingContext(ctx);
	ReplicationSlotPersist();
	ReplicationSlotRelease();
	set_decoding(false);
	ereport(LOG,
			(errmsg("flowstate created replication slot \"%s\"", D->slot_name)));
	return true;
}

/* Set up the replication origin of this session; returns its position. */
static XLogRecPtr
setup_origin(void)
{
	XLogRecPtr	lsn;

	start_transaction();
	D->origin = replorigin_by_name(D->slot_name, true);
	if (D->origin == InvalidRepOriginId)
		D->origin = replorigin_create(D->slot_name);
	commit_transaction();

	replorigin_session_setup(D->origin);
	replorigin_session_origin = D->origin;
	lsn = replorigin_session_get_progress(false);
	D->sink.skip_origin = D->origin;
	return lsn;
}

/* Rebuild the map from tables to their views. */
static void
index_sources(void)
{
	HASHCTL		hctl;
	ListCell   *lc;

	if (D->sources)
		hash_destroy(D->sources);
	hctl.keysize = sizeof(Oid);
	hctl.entrysize = sizeof(SourceRel);
	hctl.hcxt = D->views_cxt;
	D->sources = hash_create("flowstate sources", 16, &hctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	D->leaves_stale = true;		/* they point to the sources */
	foreach(lc, D->views)
	{
		ViewRuntime *vr = lfirst(lc);
		bool		found;
		SourceRel  *src = hash_search(D->sources, &vr->def->source_relid, HASH_ENTER, &found);
		MemoryContext oldcxt;

		if (!found)
		{
			src->views = NIL;
			src->slot = NULL;
			src->natts = 0;
		}
		oldcxt = MemoryContextSwitchTo(D->views_cxt);
		src->views = lappend(src->views, vr);
		MemoryContextSwitchTo(oldcxt);
	}
}

static bool
known_view(int32 view_id, Oid state_relid)
{
	ListCell   *lc;

	foreach(lc, D->views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (vr->def->view_id == view_id && vr->def->state_relid == state_relid)
			return true;
	}
	return false;
}

static ViewRuntime *
find_view(List *views, ViewDef *def)
{
	ListCell   *lc;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (vr->def->view_id == def->view_id && vr->def->state_relid == def->state_relid)
			return vr;
	}
	return NULL;
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
								   CatalogMemoryLimit(def));
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

	D->catalog_generation = SlotCatalogGeneration();
	D->catalog_read_at = GetCurrentTimestamp();

	start_transaction();
	present = CatalogExtensionPresent();
	defs = present ? CatalogLoadViews(D->views_cxt, known_view, InvalidOid) : NIL;
	foreach(lc, defs)
	{
		ViewDef    *def = lfirst(lc);
		ViewRuntime *vr = find_view(D->views, def);
		MemoryContext oldcxt;

		if (vr == NULL)
			vr = start_view(def);
		else
			vr->def->owner = def->owner;	/* ALTER ... OWNER TO */
		oldcxt = MemoryContextSwitchTo(D->views_cxt);
		keep = lappend(keep, vr);
		MemoryContextSwitchTo(oldcxt);
	}
	commit_transaction();
	if (!present)
		return false;

	foreach(lc, D->views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (!list_member_ptr(keep, vr))
			stop_view(vr);
	}
	list_free(D->views);
	D->views = keep;
	index_sources();
	return true;
}

/*
 * Backfill a new view: read its source under a snapshot synchronised with
 * the position, decode up to where the snapshot stops, skipping for this
 * view what it saw, and settle.  Runs between two batches.
 */
static bool enforce_memory(void);
static void report_pause(bool paused);

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
	key.dboid = MyDatabaseId;
	key.relid = vr->def->state_relid;
	vr->shared = StoreRegisterView(key, vr->def->view_id, vr->def->view_relid, vr->def->def_relid,
								   &vr->def->layout, CatalogMemoryLimit(vr->def));
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
		vr->final_cutoff = vr->persisted_max_ts - vr->def->watermark_delay_us -
			vr->def->window.size_us - vr->def->allowed_lateness_us;
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
	oldcxt = MemoryContextSwitchTo(D->views_cxt);
	snap = SyncSnapshotTake(D->views_cxt);
	MemoryContextSwitchTo(oldcxt);
	BackfillScan(vr, snap);
	SyncSnapshotDone(snap);
	commit_transaction();

	/*
	 * Decode up to where the snapshot stops, the view skipping what the
	 * snapshot saw, in batches that keep every view within its memory: the
	 * new view too is flushed and evicted meanwhile, though it stays
	 * backfilling in the catalog (a crash starts its backfill again).
	 */
	LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
	vr->shared->status = VIEW_RUNNING;
	LWLockRelease(&vr->shared->lock);
	vr->backfill_snap = snap;
	XLogFlush(snap->lsn);
	for (;;)
	{
		bool		done = reached(D->ctx->reader->EndRecPtr, snap->lsn);

		/* (a view to rebuild holds back flushes: no waiting for memory then) */
		if (enforce_memory() && !done && !rebuild_pending())
		{
			report_pause(true);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 DECODER_IDLE_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		report_pause(false);
		if (!done)
			(void) decode_until(snap->lsn, true);
		D->position = IngestSettle(D->views, D->position, catch_up);
		if (done)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	vr->backfill_snap = NULL;
	vr->keep_final = false;

	ereport(LOG,
			(errmsg("flowstate finished backfilling continuous view \"%s\"",
					vr->def->view_name)));
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

/* A flush committed: let the slot go up to the durable position. */
static void
flush_done(XLogRecPtr durable)
{
	/* table statistics, which autovacuum goes by, as a backend reports them */
	pgstat_report_stat(false);
	D->durable = Max(D->durable, durable);
	if (D->durable > MyReplicationSlot->data.confirmed_flush)
		LogicalConfirmReceivedLocation(D->durable);
}

/* Start a flush at the current position; true if there is one under way. */
static bool
flush_start(void)
{
	/* the position may not become durable past the cause of a rebuild */
	if (rebuild_pending())
		return false;
	D->last_flush = GetCurrentTimestamp();
	D->flush_job = FlushStart(D->views, D->position);
	if (D->flush_job == NULL)
	{
		flush_done(D->position);
		return false;
	}
	return true;
}

/* Write a slice of the flush under way (all of it if budget_ms < 0). */
static void
flush_step(int budget_ms)
{
	FlushJob   *job = D->flush_job;

	if (job == NULL || !FlushStep(job, budget_ms))
		return;
	D->flush_job = NULL;
	D->progress.last_flush_at = GetCurrentTimestamp();
	flush_done(FlushPosition(job));
	FlushFree(job);
}

/* Flush everything now: the flush under way, then the views as they are. */
static void
flush(void)
{
	flush_step(-1);
	if (flush_start())
		flush_step(-1);
}

/*
 * Keep every view within its memory_limit: past three quarters of it, its
 * flushed groups leave, least recently changed first, down to half of it,
 * after a flush if need be.  Flushed groups can leave only once no snapshot
 * predates their flush: a view that cannot get back within its limit
 * (status VIEW_FULL) holds decoding back until it can, so that a view never
 * holds much more than its limit.  Returns true then.
 */
static bool
enforce_memory(void)
{
	ListCell   *lc;
	bool		over = false;
	bool		flushed = false;

	foreach(lc, D->views)
	{
		ViewRuntime *vr = lfirst(lc);
		int64		limit = CatalogMemoryLimit(vr->def);
		int64		bytes = vr->shared->bytes;
		ViewStatus	status = vr->shared->status;

		/* a view no longer fed (its state cannot be read) holds nothing back */
		if (vr->dropped || (status != VIEW_RUNNING && status != VIEW_FULL))
			continue;
		/* within the limit but past three quarters: now and then */
		if (bytes > limit ||
			(bytes > limit / 4 * 3 &&
			 TimestampDifferenceExceeds(vr->evicted_at, GetCurrentTimestamp(), EVICT_RETRY_MS)))
		{
			vr->evicted_at = GetCurrentTimestamp();
			flush_step(-1);		/* the flush under way, if any */
			bytes = FlushEvict(vr, limit / 2);
			if (bytes > limit / 4 * 3 && !flushed)
			{
				flush();
				flushed = true;
				bytes = FlushEvict(vr, limit / 2);
			}
		}
		if ((bytes > limit) != (status == VIEW_FULL))
		{
			LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
			vr->shared->status = bytes > limit ? VIEW_FULL : VIEW_RUNNING;
			LWLockRelease(&vr->shared->lock);
		}
		over |= bytes > limit;
	}
	return over;
}

/*
 * Decoding held back for memory: briefly, it waits for the transactions
 * running at the last flush to end; when it lasts, it is said, in
 * flowstate.sources (state, last_error) and once in the log.
 */
static void
report_pause(bool paused)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!paused)
	{
		if (D->progress.degraded)
			ereport(LOG,
					(errmsg("flowstate decoding resumed: continuous views are back within their memory")));
		D->paused_since = 0;
		D->progress.degraded = false;
		return;
	}
	if (D->paused_since == 0)
		D->paused_since = now;
	if (!D->progress.degraded &&
		TimestampDifferenceExceeds(D->paused_since, now, PAUSE_REPORT_MS))
	{
		char		message[FLOWSTATE_TEXT_LEN];

		D->progress.degraded = true;
		snprintf(message, sizeof(message),
				 "decoding paused: continuous views over their memory_limit keep flushed groups that snapshots older than the flush may read (shared memory of all views: %lld kB)",
				 (long long) (StoreTotalBytes() / 1024));
		SlotSetError(message);
		ereport(WARNING,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("flowstate %s", message),
				 errhint("End long-running transactions, or raise the memory_limit of the views.")));
	}
}

static void
publish_progress(void)
{
	char		activity[FLOWSTATE_TEXT_LEN];

	D->progress.applied_lsn = D->position;
	D->progress.durable_lsn = D->durable;
	SlotSetProgress(&D->progress);

	snprintf(activity, sizeof(activity), "decoding %d views at %X/%X",
			 list_length(D->views), LSN_FORMAT_ARGS(D->position));
	SlotSetActivity(activity);
	pgstat_report_activity(STATE_IDLE, activity);
}

static void
leave(WorkerExit how)
{
	bool		any_views;

	if (D->ctx != NULL)
	{
		flush();
		FreeDecodingContext(D->ctx);
		D->ctx = NULL;
	}
	if (MyReplicationSlot != NULL)
		ReplicationSlotRelease();

	/* with no view left, neither slot nor origin may hold back WAL */
	start_transaction();
	any_views = CatalogExtensionPresent() && CatalogLoadViews(CurrentMemoryContext, known_view, InvalidOid) != NIL;
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
	SlotDeclareExit(how);
	proc_exit(0);
}

static void
decoder_loop(MemoryContext LoopContext)
{
	for (;;)
	{
		TimestampTz now;
		XLogRecPtr	end_of_wal;
		bool		full;
		ListCell   *lc;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			dsa_set_size_limit(StoreArea(), (size_t) flowstate_memory_limit * 1024 +
							   4 * 1024 * 1024);
		}
		if (SlotStopRequested())
			leave(WORKER_STOPPED);

		MemoryContextSwitchTo(LoopContext);
		now = GetCurrentTimestamp();

		/* the catalog and new views wait for the flush under way */
		if (D->flush_job == NULL &&
			(SlotCatalogGeneration() != D->catalog_generation ||
			 TimestampDifferenceExceeds(D->catalog_read_at, now, flowstate_naptime)))
		{
			if (!read_catalog())
				leave(WORKER_ABSENT);
		}

		foreach(lc, D->views)
		{
			ViewRuntime *vr = lfirst(lc);

			if (vr->dropped || D->flush_job != NULL)
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

		full = enforce_memory();
		report_pause(full);
		end_of_wal = GetFlushRecPtr(NULL);
		D->batch_changes = 0;
		if (!full)
		{
			(void) decode_until(end_of_wal, true);
			D->progress.changes += D->batch_changes;
			D->position = IngestSettle(D->views, D->position, catch_up);
		}

		if (D->flush_job != NULL)
			flush_step(FLUSH_SLICE_MS);
		else if ((TimestampDifferenceExceeds(D->last_flush, GetCurrentTimestamp(),
											 flowstate_flush_interval) || pending_full() ||
				  sides_wanted()) &&
				 flush_start())
			flush_step(FLUSH_SLICE_MS);
		publish_progress();

		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(LoopContext);

		if ((D->ctx->reader->EndRecPtr >= end_of_wal || D->blocked || full) &&
			D->flush_job == NULL)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 DECODER_IDLE_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}

/*
 * flowstate_decoder_main is the entry point of the decoding worker.  Its argument is
 * the slot number; bgw_extra holds the slot's generation.
 */
void
flowstate_decoder_main(Datum main_arg)
{
	uint64		generation;
	WorkerSlot *slot;
	MemoryContext LoopContext;
	XLogRecPtr	origin_lsn;
	bool		created;

	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(generation));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	slot = SlotAttach(DatumGetInt32(main_arg), generation);
	if (SlotStopRequested())
	{
		SlotDeclareExit(WORKER_STOPPED);
		proc_exit(0);
	}
	BackgroundWorkerInitializeConnectionByOid(slot->dboid, InvalidOid, 0);
	SecurityWorkerInit();

	D = MemoryContextAllocZero(TopMemoryContext, sizeof(Decoder));
	D->views_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate decoder views",
										 ALLOCSET_DEFAULT_SIZES);
	LoopContext = AllocSetContextCreate(TopMemoryContext, "flowstate decoder loop",
										ALLOCSET_DEFAULT_SIZES);
	D->resowner = ResourceOwnerCreate(NULL, "flowstate decoder");
	ManagerDecoderSlotName(MyDatabaseId, D->slot_name);
	D->sink.begin = sink_begin;
	D->sink.change = sink_change;
	D->sink.truncate = sink_truncate;
	D->sink.commit = sink_commit;
	D->sink.message = sink_message;
	D->leaves_cxt = AllocSetContextCreate(TopMemoryContext, "flowstate decoder partitions",
										  ALLOCSET_DEFAULT_SIZES);
	CacheRegisterRelcacheCallback(leaves_invalidated, (Datum) 0);
	dsa_set_size_limit(StoreArea(), (size_t) flowstate_memory_limit * 1024 + 4 * 1024 * 1024);

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
	if (!read_catalog())
		leave(WORKER_ABSENT);
	if (created)
	{
		ListCell   *lc;

		/* the WAL since the durable position is gone: rebuild every view */
		foreach(lc, D->views)
		{
			ViewRuntime *vr = lfirst(lc);

			if (!vr->def->backfilling)
				ereport(WARNING,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("continuous view \"%s\" is rebuilt: replication slot \"%s\" was missing",
								vr->def->view_name, D->slot_name)));
			vr->def->backfilling = true;
			LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
			vr->shared->status = VIEW_STARTING;
			LWLockRelease(&vr->shared->lock);
		}
		origin_lsn = InvalidXLogRecPtr;
	}

	ReplicationSlotAcquire(D->slot_name, true);
	D->ctx = CreateDecodingContext(origin_lsn, NIL, false,
								   XL_ROUTINE(.page_read = read_flushed_page,
											  .segment_open = wal_segment_open,
											  .segment_close = wal_segment_close),
								   NULL, NULL, NULL);
	D->ctx->output_writer_private = &D->sink;
	set_decoding(false);
	XLogBeginRead(D->ctx->reader, MyReplicationSlot->data.restart_lsn);
	D->position = Max(MyReplicationSlot->data.confirmed_flush, origin_lsn);
	D->durable = D->position;
	D->last_flush = GetCurrentTimestamp();
	SlotSetConfirmed();

	decoder_loop(LoopContext);
}
