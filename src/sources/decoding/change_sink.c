/*-------------------------------------------------------------------------
 *
 * change_sink.c
 *	  Where the decoding worker's changes go: each change of a table to the
 *	  views over it, each change of a partition to the views over the
 *	  partitioned tables above it (in their row type), a TRUNCATE, and the
 *	  changes deltas cannot follow, which make a view rebuild.
 *
 * The output plugin (output_plugin.c) calls these functions through the
 * DecoderSink while the worker decodes (decoder.c); they run once per
 * change or transaction, so they only route: the work on a row is
 * ingest.c's.  A transaction streamed while in progress routes its rows
 * aside (open_txn.c) until its commit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tupconvert.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "executor/executor.h"
#include "replication/snapbuild.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "engine/backfill.h"
#include "engine/history.h"
#include "engine/ingest.h"
#include "engine/open_txn.h"
#include "fs_catalog/catalog.h"
#include "fs_catalog/partition.h"
#include "sources/decoding/decoding_worker.h"

/*
 * The transaction being streamed while in progress, and the subtransaction
 * of the change at hand: its rows go aside (open_txn.c) until it commits.
 */
static OpenTxn *streaming = NULL;
static TransactionId streaming_xid = InvalidTransactionId;
static TransactionId streaming_subxid = InvalidTransactionId;

/* The transaction decoded at its commit. */
static TransactionId decoded_xid = InvalidTransactionId;

/* A row of a change to a view: into its batch, or aside while streaming. */
static inline void
route_row(ViewRuntime *vr, TupleTableSlot *row, int sign, XLogRecPtr lsn)
{
	/*
	 * A view that joins a table reads it as of each change: not while the
	 * transaction streams, whose commit may come after the table changed.
	 */
	if (streaming != NULL && vr->def->join.present)
		OpenTxnRebuild(streaming, vr);
	else if (streaming != NULL)
		OpenTxnRow(streaming, streaming_subxid, vr, row, sign, lsn);
	else
		IngestRow(vr, row, sign, lsn);
}

/* The slot of a table's current row type. */
static TupleTableSlot *
source_slot(SourceRel *src, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (src->slot == NULL || src->natts != desc->natts)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(MyDecoder->views_cxt);

		if (src->slot)
			ExecDropSingleTupleTableSlot(src->slot);
		if (src->old_slot)
			ExecDropSingleTupleTableSlot(src->old_slot);
		src->old_slot = NULL;
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
	MyDecoder->txn_changed = false;
	decoded_xid = xid;
	IngestTxnBegin(MyDecoder->worker->views, xid, commit_lsn);
	/* views that join a table read it as of this commit (lookup.c) */
	if (MyDecoder->joins)
		LookupDecodingSnapshot(MyDecoder->worker->views,
							   SnapBuildGetOrBuildSnapshot(MyDecoder->ctx->snapshot_builder, xid));
}

/*
 * Store an UPDATE's new row in slot, with the unchanged toasted values it
 * leaves out (the WAL has only their pointers, whose chunks decoding must
 * not read) taken from the old row, which a table with REPLICA IDENTITY
 * FULL logs whole.  The slot then holds a tuple of its own, formed from
 * those values.
 */
static void
store_new_row(TupleTableSlot *slot, HeapTuple newtuple, HeapTuple oldtuple)
{
	TupleDesc	desc = slot->tts_tupleDescriptor;
	bool		unchanged = false;
	Datum	   *values;
	bool	   *nulls;

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
	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(oldtuple, desc, values, nulls);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		/* the new value, unless it is a pointer to the old one */
		if (att->attlen != -1 || slot->tts_isnull[i] ||
			!VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(slot->tts_values[i])))
		{
			values[i] = slot->tts_values[i];
			nulls[i] = slot->tts_isnull[i];
		}
	}

	/*
	 * A virtual row of those values, made a tuple of the slot's own: a
	 * heap tuple slot materialized over the stored tuple would copy that
	 * tuple, pointers and all.
	 */
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * desc->natts);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * desc->natts);
	ExecStoreVirtualTuple(slot);
	ExecMaterializeSlot(slot);
	pfree(values);
	pfree(nulls);
}

/* DecodingRebuildPending tells whether a view waits to be rebuilt. */
bool
DecodingRebuildPending(void)
{
	ListCell   *lc;

	foreach(lc, MyDecoder->worker->views)
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
	if (MyDecoder != NULL)
		MyDecoder->leaves_stale = true;
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

	if (MyDecoder->leaves_stale || MyDecoder->leaves == NULL)
	{
		HASHCTL		hctl;

		MemoryContextReset(MyDecoder->leaves_cxt);
		hctl.keysize = sizeof(Oid);
		hctl.entrysize = sizeof(LeafRel);
		hctl.hcxt = MyDecoder->leaves_cxt;
		MyDecoder->leaves = hash_create("flowstate partitions", 16, &hctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		MyDecoder->leaves_stale = false;
	}
	leaf = hash_search(MyDecoder->leaves, &relid, HASH_ENTER, &found);
	if (found)
		return leaf;
	leaf->targets = NIL;
	leaf->slot = NULL;

	ancestors = get_partition_ancestors(relid);
	oldcxt = MemoryContextSwitchTo(MyDecoder->leaves_cxt);
	foreach(lc, ancestors)
	{
		Oid			parent = lfirst_oid(lc);
		SourceRel  *src = hash_search(MyDecoder->sources, &parent, HASH_FIND, NULL);
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
		{
			if (streaming != NULL)
				OpenTxnRebuild(streaming, lfirst(lc));
			else
				IngestRequestRebuild(lfirst(lc), "a table it reads no longer logs old rows");
		}
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
				route_row(lfirst(lc), row, 1, change->lsn);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			ExecStoreHeapTuple(oldtuple, slot, false);
			row = source_row(slot, map, out);
			foreach(lc, views)
				route_row(lfirst(lc), row, -1, change->lsn);
			store_new_row(slot, newtuple, oldtuple);
			row = source_row(slot, map, out);
			foreach(lc, views)
				route_row(lfirst(lc), row, 1, change->lsn);
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			ExecStoreHeapTuple(oldtuple, slot, false);
			row = source_row(slot, map, out);
			foreach(lc, views)
				route_row(lfirst(lc), row, -1, change->lsn);
			break;
		default:
			break;
	}
	if (out != NULL)
		ExecClearTuple(out);
	ExecClearTuple(slot);
}

/* The transaction and subtransaction of the change at hand. */
static inline TransactionId
change_xid(TransactionId *subxid)
{
	*subxid = streaming != NULL ? streaming_subxid : InvalidTransactionId;
	return streaming != NULL ? streaming_xid : decoded_xid;
}

/*
 * A change of a table with histories: the row it leaves and, for an
 * UPDATE, the row before (an UPDATE of the key ends the old key).  A table
 * that no longer logs whole old rows fails its histories.
 */
static void
history_change(SourceRel *src, Relation rel, ReorderBufferChange *change)
{
	HeapTuple	oldtuple = change->data.tp.oldtuple ? &change->data.tp.oldtuple->tuple : NULL;
	HeapTuple	newtuple = change->data.tp.newtuple ? &change->data.tp.newtuple->tuple : NULL;
	TupleTableSlot *slot = source_slot(src, rel);
	TransactionId subxid;
	TransactionId xid = change_xid(&subxid);
	ListCell   *lc;

	if (change->action != REORDER_BUFFER_CHANGE_INSERT &&
		(oldtuple == NULL || rel->rd_rel->relreplident != REPLICA_IDENTITY_FULL))
	{
		foreach(lc, src->histories)
			HistoryFail(lfirst(lc), psprintf("table %s no longer has REPLICA IDENTITY FULL",
											 RelationGetRelationName(rel)));
		return;
	}
	if (src->old_slot == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(MyDecoder->views_cxt);

		src->old_slot = MakeSingleTupleTableSlot(slot->tts_tupleDescriptor, &TTSOpsHeapTuple);
		MemoryContextSwitchTo(oldcxt);
	}
	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			ExecStoreHeapTuple(newtuple, slot, false);
			foreach(lc, src->histories)
				HistoryChange(lfirst(lc), xid, subxid, HISTORY_UPSERT, NULL, slot);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			ExecStoreHeapTuple(oldtuple, src->old_slot, false);
			store_new_row(slot, newtuple, oldtuple);
			foreach(lc, src->histories)
				HistoryChange(lfirst(lc), xid, subxid, HISTORY_UPSERT, src->old_slot, slot);
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			ExecStoreHeapTuple(oldtuple, src->old_slot, false);
			foreach(lc, src->histories)
				HistoryChange(lfirst(lc), xid, subxid, HISTORY_DELETE, src->old_slot, NULL);
			break;
		default:
			break;
	}
	ExecClearTuple(src->old_slot);
	ExecClearTuple(slot);
}

/*
 * A change of a table that views over other tables join: the rows before
 * and after, for the groups they make stale (dimension.c).  A view of a
 * transaction streamed while in progress rebuilds after its commit.
 */
static void
dimension_change(SourceRel *src, Relation rel, ReorderBufferChange *change)
{
	HeapTuple	oldtuple = change->data.tp.oldtuple ? &change->data.tp.oldtuple->tuple : NULL;
	HeapTuple	newtuple = change->data.tp.newtuple ? &change->data.tp.newtuple->tuple : NULL;
	TupleTableSlot *slot = source_slot(src, rel);
	ListCell   *lc;

	if (streaming != NULL || (change->action != REORDER_BUFFER_CHANGE_INSERT && oldtuple == NULL))
	{
		foreach(lc, src->joined_by)
		{
			if (streaming != NULL)
				OpenTxnRebuild(streaming, lfirst(lc));
			else
				IngestRequestRebuild(lfirst(lc), "a table it joins no longer logs old rows");
		}
		return;
	}
	if (src->old_slot == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(MyDecoder->views_cxt);

		src->old_slot = MakeSingleTupleTableSlot(slot->tts_tupleDescriptor, &TTSOpsHeapTuple);
		MemoryContextSwitchTo(oldcxt);
	}
	if (oldtuple != NULL)
		ExecStoreHeapTuple(oldtuple, src->old_slot, false);
	if (newtuple != NULL)
		store_new_row(slot, newtuple, oldtuple);
	foreach(lc, src->joined_by)
		DimensionChange(lfirst(lc), oldtuple ? src->old_slot : NULL, newtuple ? slot : NULL);
	ExecClearTuple(src->old_slot);
	ExecClearTuple(slot);
}

/* A TRUNCATE of tables: their histories. */
static void
history_truncate(int nrelations, Relation *relations)
{
	TransactionId subxid;
	TransactionId xid = change_xid(&subxid);

	for (int i = 0; i < nrelations; i++)
	{
		Oid			relid = RelationGetRelid(relations[i]);
		SourceRel  *src = hash_search(MyDecoder->sources, &relid, HASH_FIND, NULL);
		ListCell   *lc;

		if (src == NULL)
			continue;
		foreach(lc, src->histories)
			HistoryChange(lfirst(lc), xid, subxid, HISTORY_TRUNCATE, NULL, NULL);
	}
}

/*
 * A change of a table goes to the views over it and, for a partition, to
 * the views over the partitioned tables above it, and to its histories.
 */
static void
sink_change(void *arg, Relation rel, ReorderBufferChange *change)
{
	Oid			relid = RelationGetRelid(rel);
	SourceRel  *src;
	LeafRel    *leaf = NULL;
	ListCell   *lc;

	MyDecoder->txn_changed = true;
	src = hash_search(MyDecoder->sources, &relid, HASH_FIND, NULL);
	if (rel->rd_rel->relispartition)
	{
		leaf = leaf_of(rel);
		if (leaf->targets == NIL)
			leaf = NULL;
	}
	if (src == NULL && leaf == NULL)
		return;
	MyDecoder->batch_changes++;

	if (src != NULL && src->views != NIL)
		apply_change(src->views, rel, change, source_slot(src, rel), NULL, NULL);
	if (src != NULL && src->histories != NIL)
		history_change(src, rel, change);
	if (src != NULL && src->joined_by != NIL)
		dimension_change(src, rel, change);
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
	MyDecoder->txn_changed = true;
	history_truncate(nrelations, relations);
	for (int i = 0; i < nrelations; i++)
	{
		Oid			relid = RelationGetRelid(relations[i]);
		SourceRel  *src = hash_search(MyDecoder->sources, &relid, HASH_FIND, NULL);
		ListCell   *lc;

		if (src != NULL)
		{
			foreach(lc, src->views)
				IngestTruncate(lfirst(lc));
			/* every row of a joined table gone: the views that join it start over */
			foreach(lc, src->joined_by)
				IngestRequestRebuild(lfirst(lc), "a table it joins was truncated");
		}
		if (relations[i]->rd_rel->relispartition)
		{
			foreach(lc, leaf_of(relations[i])->targets)
			{
				LeafTarget *t = lfirst(lc);
				ListCell   *lv;

				foreach(lv, t->src->views)
					IngestRequestRebuild(lfirst(lv), "one of its partitions was truncated");
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
	bool		partitions = strcmp(prefix, PARTITION_MESSAGE_PREFIX) == 0;

	if (!partitions && strcmp(prefix, DIMENSION_MESSAGE_PREFIX) != 0)
		return;
	/* the snapshot of the rebuild must see this transaction */
	MyDecoder->txn_changed = true;
	for (Size off = 0; off + sizeof(Oid) <= size; off += sizeof(Oid))
	{
		Oid			relid;
		SourceRel  *src;
		ListCell   *lc;

		memcpy(&relid, message + off, sizeof(Oid));
		src = hash_search(MyDecoder->sources, &relid, HASH_FIND, NULL);
		if (src == NULL)
			continue;
		/* a message of ddl.c: the indexes of a table views join were rebuilt */
		foreach(lc, partitions ? src->views : src->joined_by)
			IngestRequestRebuild(lfirst(lc), partitions ?
								 "partitions were attached, detached or dropped" :
								 "the indexes of a table it joins were built again");
	}
}

static void
sink_commit(void *arg, TransactionId xid, XLogRecPtr commit_lsn, TimestampTz commit_time)
{
	if (MyDecoder->txn_changed)
		SyncNoteXid(xid);
	HistoryCommit(MyDecoder->worker->histories, xid, commit_lsn, commit_time);
	if (MyDecoder->joins)
		LookupDecodingSnapshot(MyDecoder->worker->views, NULL);
	decoded_xid = InvalidTransactionId;
	MyDecoder->worker->progress.transactions++;
}

/* A transaction streamed while in progress: a part of its changes begins. */
static void
sink_stream_start(void *arg, TransactionId xid)
{
	streaming = OpenTxnStart(xid, MyDecoder->worker->views);
	streaming_xid = xid;
}

/* ... and ends: what the open transactions hold is kept within bounds. */
static void
sink_stream_stop(void *arg)
{
	streaming = NULL;
	OpenTxnStop();
}

static void
sink_stream_change(void *arg, TransactionId xid, TransactionId subxid, Relation rel,
				   ReorderBufferChange *change)
{
	Assert(streaming != NULL);
	OpenTxnTouch(streaming, RelationGetRelid(rel));
	streaming_subxid = subxid;
	sink_change(arg, rel, change);
}

/* Views whose rows the transaction changes as deltas cannot follow. */
static void
rebuild_after(List *views)
{
	ListCell   *lc;

	foreach(lc, views)
		OpenTxnRebuild(streaming, lfirst(lc));
}

/*
 * A TRUNCATE in a streamed transaction: the views over the tables it
 * empties rebuild once the transaction has committed.
 */
static void
sink_stream_truncate(void *arg, TransactionId xid, int nrelations, Relation *relations)
{
	history_truncate(nrelations, relations);
	for (int i = 0; i < nrelations; i++)
	{
		Oid			relid = RelationGetRelid(relations[i]);
		SourceRel  *src = hash_search(MyDecoder->sources, &relid, HASH_FIND, NULL);
		ListCell   *lc;

		OpenTxnTouch(streaming, relid);
		if (src != NULL)
		{
			rebuild_after(src->views);
			rebuild_after(src->joined_by);
		}
		if (relations[i]->rd_rel->relispartition)
		{
			foreach(lc, leaf_of(relations[i])->targets)
				rebuild_after(((LeafTarget *) lfirst(lc))->src->views);
		}
	}
}

static void
sink_stream_message(void *arg, TransactionId xid, const char *prefix, Size size,
					const char *message)
{
	bool		partitions = strcmp(prefix, PARTITION_MESSAGE_PREFIX) == 0;

	if (!partitions && strcmp(prefix, DIMENSION_MESSAGE_PREFIX) != 0)
		return;
	for (Size off = 0; off + sizeof(Oid) <= size; off += sizeof(Oid))
	{
		Oid			relid;
		SourceRel  *src;

		memcpy(&relid, message + off, sizeof(Oid));
		if (partitions)
			OpenTxnTouch(streaming, relid);
		src = hash_search(MyDecoder->sources, &relid, HASH_FIND, NULL);
		if (src != NULL)
			rebuild_after(partitions ? src->views : src->joined_by);
	}
}

/*
 * A streamed transaction commits: what it gathered aside goes to the
 * batches, as the changes of a transaction decoded at its commit would.
 */
static void
sink_stream_commit(void *arg, TransactionId xid, XLogRecPtr commit_lsn, TimestampTz commit_time)
{
	OpenTxn    *txn = OpenTxnFind(xid);
	List	   *rebuild = NIL;
	List	   *missed = NIL;
	ListCell   *lc;

	ResourceOwner owner = CurrentResourceOwner;
	MemoryContext cxt = CurrentMemoryContext;
	bool		own_xact = !IsTransactionState();
	bool		changed;

	streaming = NULL;
	HistoryCommit(MyDecoder->worker->histories, xid, commit_lsn, commit_time);
	if (txn == NULL)
		return;

	/*
	 * The reorder buffer calls this after the transaction it decodes in,
	 * and its historic snapshot, are over: evaluating rows and comparing
	 * values read today's catalog, in a transaction of our own (or the
	 * settle's, when catching up in one).
	 */
	if (own_xact)
	{
		StartTransactionCommand();
		/* the lists of views to rebuild outlive that transaction */
		MemoryContextSwitchTo(cxt);
	}
	changed = OpenTxnCommit(txn, MyDecoder->worker->views, commit_lsn, &rebuild, &missed);
	if (own_xact)
	{
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	/* what it read of today's catalog must not serve the WAL's past */
	InvalidateSystemCaches();
	if (changed)
		SyncNoteXid(xid);
	foreach(lc, rebuild)
		IngestRequestRebuild(lfirst(lc), "a large transaction changed its rows as deltas cannot follow");
	foreach(lc, missed)
		IngestRequestRebuild(lfirst(lc), "it started while a large transaction was decoded");
	list_free(rebuild);
	list_free(missed);
	MyDecoder->streamed_commit_lsn = Max(MyDecoder->streamed_commit_lsn, commit_lsn);
	MyDecoder->worker->progress.transactions++;
}

static void
sink_stream_abort(void *arg, TransactionId xid, TransactionId subxid)
{
	streaming = NULL;
	OpenTxnAbort(xid, subxid);
	HistoryAbort(xid, subxid);
}

/*
 * DecodingSinkInit sets the sink's callbacks, and follows the relcache
 * invalidations that may attach or detach partitions.
 */
void
DecodingSinkInit(DecoderSink *sink)
{
	sink->begin = sink_begin;
	sink->change = sink_change;
	sink->truncate = sink_truncate;
	sink->commit = sink_commit;
	sink->message = sink_message;
	sink->stream_start = sink_stream_start;
	sink->stream_stop = sink_stream_stop;
	sink->stream_change = sink_stream_change;
	sink->stream_truncate = sink_stream_truncate;
	sink->stream_message = sink_stream_message;
	sink->stream_commit = sink_stream_commit;
	sink->stream_abort = sink_stream_abort;
	CacheRegisterRelcacheCallback(leaves_invalidated, (Datum) 0);
}
