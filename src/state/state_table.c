/*-------------------------------------------------------------------------
 *
 * state_table.c
 *	  The state table of a continuous view: its definition, the writing of
 *	  changed groups at a flush, and the reading of groups back.
 *
 * A state table has one row per group:
 *
 *	gid		bigint PRIMARY KEY	the group's id, assigned at its first flush
 *	k1..kn	the group key values
 *	a1..am	the finalized aggregates: what the view shows
 *	nrows	bigint				rows in the group
 *	state	bytea				the aggregates' state (aggregate.c), read back
 *								after a restart
 *
 * A group's row is inserted at its first flush, updated at each flush that
 * finds it changed, and deleted when the group loses its last row.  Updates
 * change no indexed column and the table keeps half of each page free
 * (fillfactor 50), so they are HOT updates.  The writer prunes each page
 * before it changes a row there, as an index fetch would: the versions
 * older flushes left dead are reclaimed even when nothing reads the table,
 * and steady updates do not grow it.  A unique index on the keys (window
 * last, NULLS NOT DISTINCT) serves lookups by key and reads of one key's
 * windows; an index on the window start serves reads of a time range.
 *
 * Rows are written through the executor's simple-relation routines, as
 * logical replication applies changes, addressed by the version's TID the
 * store keeps: no index lookup per update.  New rows are inserted in
 * batches (table_multi_insert, as COPY does: one WAL record and one buffer
 * lock per page rather than per row; 13% less WAL for new groups), then
 * entered in the indexes one by one.  A state table has no triggers of its
 * own, and none fire for these rows.  A batch waits at most until
 * StateWriterEnd, which the flush calls before it commits; deletes and
 * updates pass it, so the key of a deleted group that a new group takes in
 * the same flush is free when the batch goes in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"

#include "aggregates/aggregate.h"
#include "state/group.h"
#include "state/state_table.h"

#define ATT_GID			1
#define ATT_KEY(i)		(2 + (i))
#define ATT_AGG(l, i)	(2 + (l)->nkeys + (i))
#define ATT_NROWS(l)	(2 + (l)->nkeys + (l)->naggs)
#define ATT_STATE(l)	(3 + (l)->nkeys + (l)->naggs)

/*
 * StateTableName returns the unqualified name of a view's state table.
 */
char *
StateTableName(int32 view_id)
{
	return psprintf("view_%d_state", view_id);
}

/*
 * StateAppendColumn appends a column definition to a CREATE TABLE or a
 * column definition list, after sep.
 */
void
StateAppendColumn(StringInfo buf, const char *sep, const char *name, Oid type, int32 typmod,
				  Oid collation)
{
	appendStringInfo(buf, "%s%s %s", sep, name, format_type_with_typemod(type, typmod));
	if (OidIsValid(collation) && collation != get_typcollation(type))
		appendStringInfo(buf, " COLLATE %s", generate_collation_name(collation));
}

/* The key columns in index order: plain keys first, the window last. */
static int
key_order(const ViewLayout *layout, int *order)
{
	int			n = 0;

	for (int i = 0; i < layout->nkeys; i++)
		if (!layout->keys[i].is_window)
			order[n++] = i;
	for (int i = 0; i < layout->nkeys; i++)
		if (layout->keys[i].is_window)
			order[n++] = i;
	return n;
}

/*
 * StateTableCreate creates a view's state table and its indexes (in an open
 * SPI connection, as its owner).
 */
void
StateTableCreate(const ViewLayout *layout, const char *qualified_name, const char *name)
{
	StringInfoData buf;
	int			order[FLOWSTATE_MAX_KEYS];
	int			n;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE TABLE %s (\n    gid bigint PRIMARY KEY", qualified_name);
	for (int i = 0; i < layout->nkeys; i++)
	{
		char		col[16];

		snprintf(col, sizeof(col), "k%d", i + 1);
		StateAppendColumn(&buf, ",\n    ", col, layout->keys[i].type, layout->keys[i].typmod,
					  layout->keys[i].collation);
	}
	for (int i = 0; i < layout->naggs; i++)
	{
		char		col[16];

		snprintf(col, sizeof(col), "a%d", i + 1);
		StateAppendColumn(&buf, ",\n    ", col, layout->aggs[i].restype, layout->aggs[i].restypmod,
					  layout->aggs[i].rescollation);
	}
	appendStringInfoString(&buf, ",\n    nrows bigint NOT NULL,\n    state bytea NOT NULL\n"
						   ") WITH (fillfactor = 50)");
	if (SPI_execute(buf.data, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create state table %s", qualified_name);

	n = key_order(layout, order);
	if (n > 0)
	{
		resetStringInfo(&buf);
		appendStringInfo(&buf, "CREATE UNIQUE INDEX %s ON %s (",
						 quote_identifier(psprintf("%s_key", name)), qualified_name);
		for (int i = 0; i < n; i++)
			appendStringInfo(&buf, "%sk%d", i > 0 ? ", " : "", order[i] + 1);
		appendStringInfoString(&buf, ") NULLS NOT DISTINCT");
		if (SPI_execute(buf.data, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not create the key index of %s", qualified_name);
	}
	for (int i = 0; i < layout->nkeys && n > 1; i++)
	{
		if (!layout->keys[i].is_window)
			continue;
		resetStringInfo(&buf);
		appendStringInfo(&buf, "CREATE INDEX %s ON %s (k%d)",
						 quote_identifier(psprintf("%s_window", name)), qualified_name, i + 1);
		if (SPI_execute(buf.data, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not create the window index of %s", qualified_name);
	}
}

/*
 * Whether the installed extension is older than 0.5.0, whose update
 * converts the states to format 2 (state_format.c): until then states
 * are written in format 1, which a library before 0.5.0 reads too.  Asked
 * with the state table locked, which the conversion locks exclusively, and
 * of a fresh catalog snapshot (pg_extension has no syscache): a flush after
 * the conversion sees its commit.
 */
static bool
writes_image(void)
{
	static const char *const before[] = {"0.1.0", "0.2.0", "0.3.0", "0.4.0"};
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		image = false;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("flowstate"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		version = heap_getattr(tuple, Anum_pg_extension_extversion,
										   RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			char	   *v = TextDatumGetCString(version);

			for (int i = 0; i < lengthof(before); i++)
				image |= strcmp(v, before[i]) == 0;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return image;
}

/*
 * StateWriterBegin prepares to write a state table in the current
 * transaction.  Returns false if the table was dropped meanwhile.
 */
bool
StateWriterBegin(StateWriter *w, Oid relid)
{
	RangeTblEntry *rte;

	memset(w, 0, sizeof(StateWriter));
	w->rel = try_table_open(relid, RowExclusiveLock);
	if (w->rel == NULL)
		return false;

	w->estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = w->rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(w->estate, list_make1(rte));
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
	w->estate->es_opened_result_relations = list_make1(w->rri);
	w->estate->es_output_cid = GetCurrentCommandId(true);
	w->estate->es_snapshot = GetActiveSnapshot();
	ExecOpenIndices(w->rri, false);
	w->slot = table_slot_create(w->rel, &w->estate->es_tupleTable);
	w->search = table_slot_create(w->rel, &w->estate->es_tupleTable);
	w->pruned = InvalidBlockNumber;
	w->image = writes_image();
	return true;
}

/* Insert the new rows waiting, and enter them in the indexes. */
static void
insert_batch(StateWriter *w)
{
	MemoryContext oldcxt;

	if (w->nbatch == 0)
		return;
	table_multi_insert(w->rel, w->batch, w->nbatch, w->estate->es_output_cid, 0, NULL);
	oldcxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(w->estate));
	for (int i = 0; i < w->nbatch; i++)
	{
		if (w->rri->ri_NumIndices > 0)
			list_free(ExecInsertIndexTuples(w->rri, w->batch[i], w->estate, false, false,
											NULL, NIL));
		w->batch_items[i]->tid = w->batch[i]->tts_tid;
		ExecClearTuple(w->batch[i]);
		ResetPerTupleExprContext(w->estate);
	}
	MemoryContextSwitchTo(oldcxt);
	w->inserted += w->nbatch;
	w->nbatch = 0;
}

/*
 * Add a new row to the batch: its values move from the writer's slot to
 * a slot of the batch, materialized (they live in per-tuple memory).
 */
static void
batch_row(StateWriter *w, FlushItem *item)
{
	TupleTableSlot *slot;

	if (w->batch == NULL)
	{
		w->batch = MemoryContextAllocZero(w->estate->es_query_cxt,
										  sizeof(TupleTableSlot *) * STATE_INSERT_BATCH);
		w->batch_items = MemoryContextAlloc(w->estate->es_query_cxt,
											sizeof(FlushItem *) * STATE_INSERT_BATCH);
	}
	if (w->batch[w->nbatch] == NULL)
		w->batch[w->nbatch] = table_slot_create(w->rel, &w->estate->es_tupleTable);
	slot = w->batch[w->nbatch];
	ExecCopySlot(slot, w->slot);
	w->batch_items[w->nbatch++] = item;
	if (w->nbatch == STATE_INSERT_BATCH)
		insert_batch(w);
}

/* Reclaim the dead versions of the page of tid, if it is filling up. */
static void
prune_page(StateWriter *w, ItemPointer tid)
{
	BlockNumber block = ItemPointerGetBlockNumber(tid);
	Buffer		buf;

	if (block == w->pruned)
		return;
	buf = ReadBuffer(w->rel, block);
	heap_page_prune_opt(w->rel, buf);
	ReleaseBuffer(buf);
	w->pruned = block;
}

/*
 * StateWriterPut writes one changed group: insert, update or delete of its
 * row.  item->tid is set to the row's new version (a new row's by StateWriterEnd
 * at the latest).
 */
void
StateWriterPut(StateWriter *w, const ViewLayout *layout, FlushItem *item)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(w->estate));
	TupleTableSlot *slot = w->slot;

	if (!item->live)
	{
		if (ItemPointerIsValid(&item->tid))
		{
			w->search->tts_tid = item->tid;
			ExecSimpleRelationDelete(w->rri, w->estate, NULL, w->search);
			w->deleted++;
		}
		ItemPointerSetInvalid(&item->tid);
	}
	else
	{
		Datum	   *values;
		bool	   *nulls;

		ExecClearTuple(slot);
		values = slot->tts_values;
		nulls = slot->tts_isnull;
		memset(nulls, false, sizeof(bool) * slot->tts_tupleDescriptor->natts);
		Assert(item->gid > 0);
		values[ATT_GID - 1] = Int64GetDatum(item->gid);
		GroupKeyRead(layout, item->key, &values[ATT_KEY(0) - 1], &nulls[ATT_KEY(0) - 1]);
		for (int i = 0; i < layout->naggs; i++)
		{
			bool		overflow = false;

			AggFinalize(layout, i, item->block, &values[ATT_AGG(layout, i) - 1],
						&nulls[ATT_AGG(layout, i) - 1], &overflow);
			if (overflow)
				w->overflows++;
		}
		values[ATT_NROWS(layout) - 1] = Int64GetDatum(BLOCK_NROWS(item->block));
		values[ATT_STATE(layout) - 1] = PointerGetDatum(w->image ?
														AggSerializeImage(layout, item->block) :
														AggSerialize(layout, item->block));
		ExecStoreVirtualTuple(slot);

		if (ItemPointerIsValid(&item->tid))
		{
			prune_page(w, &item->tid);
			w->search->tts_tid = item->tid;
			ExecSimpleRelationUpdate(w->rri, w->estate, NULL, w->search, slot);
			w->updated++;
		}
		else
		{
			/* its TID once the batch is in */
			if (w->rel->rd_att->constr)
				ExecConstraints(w->rri, slot, w->estate);
			MemoryContextSwitchTo(oldcxt);
			batch_row(w, item);
			ResetPerTupleExprContext(w->estate);
			return;
		}
		item->tid = slot->tts_tid;
	}

	MemoryContextSwitchTo(oldcxt);
	ResetPerTupleExprContext(w->estate);
}

/*
 * StateWriterEnd inserts the new rows still waiting, and releases what
 * StateWriterBegin took; the lock stays until the transaction ends.
 */
void
StateWriterEnd(StateWriter *w)
{
	if (w->rel == NULL)
		return;
	insert_batch(w);
	ExecCloseIndices(w->rri);
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
	w->rel = NULL;
}

/* Open a view's state table and a slot for a scan; false if it was dropped. */
static bool
scan_open(StateScan *s, Oid state_relid, const ViewLayout *layout)
{
	int			order[FLOWSTATE_MAX_KEYS];
	int			n = key_order(layout, order);

	memset(s, 0, sizeof(StateScan));
	s->layout = layout;
	s->rel = try_table_open(state_relid, AccessShareLock);
	if (s->rel == NULL)
		return false;
	s->slot = table_slot_create(s->rel, NULL);
	for (int i = 0; i < n; i++)
		s->keycol[order[i]] = i + 1;
	return true;
}

/*
 * StateScanBegin opens a view's state table to read every row or, with
 * by_key, to look rows up by key, under the active snapshot.  Returns false
 * if the table was dropped.
 */
bool
StateScanBegin(StateScan *s, Oid state_relid, const ViewLayout *layout, bool by_key)
{
	if (!scan_open(s, state_relid, layout))
		return false;
	if (by_key && layout->nkeys > 0)
	{
		char	   *name = psprintf("%s_key", RelationGetRelationName(s->rel));
		Oid			indexoid = get_relname_relid(name, RelationGetNamespace(s->rel));

		if (!OidIsValid(indexoid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("index \"%s\" of a continuous view's state is missing", name),
					 errhint("Drop the continuous view and create it again.")));
		s->index = index_open(indexoid, AccessShareLock);
		s->iscan = index_beginscan(s->rel, s->index, GetActiveSnapshot(), layout->nkeys, 0);
	}
	else
		s->scan = table_beginscan(s->rel, GetActiveSnapshot(), 0, NULL);
	return true;
}

/*
 * StateScanBlocks opens a view's state table to read the rows of blocks
 * start to start + nblocks - 1, under the active snapshot: a full scan in
 * slices.  Returns false if the table was dropped.
 */
bool
StateScanBlocks(StateScan *s, Oid state_relid, const ViewLayout *layout,
				BlockNumber start, BlockNumber nblocks)
{
	if (!scan_open(s, state_relid, layout))
		return false;
	/* no synchronized scan: it would start elsewhere than at start */
	s->scan = table_beginscan_strat(s->rel, GetActiveSnapshot(), 0, NULL, true, false);
	heap_setscanlimits(s->scan, start, nblocks);
	return true;
}

/*
 * StateTableCount counts the rows of a view's state table under the active
 * snapshot without reading them into memory: how many, the largest row id,
 * the table's blocks and, with overflow, how many hold a state out of
 * range (AggOverflowed), which takes decoding each state.  A state that
 * cannot be decoded ends the count with count->problem set.  Returns false
 * if the table was dropped.
 */
bool
StateTableCount(Oid state_relid, const ViewLayout *layout, bool overflow, StateCount *count)
{
	Relation	rel = try_table_open(state_relid, AccessShareLock);
	TableScanDesc scan;
	TupleTableSlot *slot;
	MemoryContext rowcxt;
	MemoryContext oldcxt;
	char	   *block;

	memset(count, 0, sizeof(StateCount));
	if (rel == NULL)
		return false;
	count->nblocks = RelationGetNumberOfBlocks(rel);
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	block = palloc(layout->block_size);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "flowstate count",
								   ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(rowcxt);
	while (count->problem == NULL &&
		   table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		int64		gid = DatumGetInt64(slot_getattr(slot, ATT_GID, &isnull));

		count->rows++;
		count->max_gid = Max(count->max_gid, gid);
		if (overflow)
		{
			Datum		state = slot_getattr(slot, ATT_STATE(layout), &isnull);
			int			format;

			count->problem = AggDecode(layout, DatumGetByteaPP(state), block, &format);
			if (count->problem == NULL && AggOverflowed(layout, block))
				count->overflowed++;
		}
		if (count->problem == NULL)
			MemoryContextReset(rowcxt);
	}
	MemoryContextSwitchTo(oldcxt);
	if (count->problem)
		count->problem = pstrdup(count->problem);
	MemoryContextDelete(rowcxt);
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
	pfree(block);
	return true;
}

/* Read the row in the scan slot into row, in CurrentMemoryContext. */
static void
read_row(StateScan *s, StateRow *row)
{
	const ViewLayout *layout = s->layout;
	TupleTableSlot *slot = s->slot;

	slot_getallattrs(slot);
	row->gid = DatumGetInt64(slot->tts_values[ATT_GID - 1]);
	row->tid = slot->tts_tid;
	for (int i = 0; i < layout->nkeys; i++)
	{
		row->keynulls[i] = slot->tts_isnull[ATT_KEY(i) - 1];
		row->keys[i] = row->keynulls[i] ? (Datum) 0 :
			datumCopy(slot->tts_values[ATT_KEY(i) - 1], layout->keys[i].typbyval,
					  layout->keys[i].typlen);
	}
	GroupKeyDetoast(layout, row->keys, row->keynulls);
	row->block = palloc(layout->block_size);
	row->problem = AggDecode(layout, DatumGetByteaPP(slot->tts_values[ATT_STATE(layout) - 1]),
							 row->block, &row->format);
}

/*
 * StateScanNext reads the next row of a full scan.  A row whose state
 * cannot be read (AggDecode) is returned with row->problem set.
 */
bool
StateScanNext(StateScan *s, StateRow *row)
{
	if (!table_scan_getnextslot(s->scan, ForwardScanDirection, s->slot))
		return false;
	read_row(s, row);
	return true;
}

/*
 * StateLookup reads the row of one key, if there is one.
 */
bool
StateLookup(StateScan *s, const Datum *keys, const bool *keynulls, StateRow *row)
{
	const ViewLayout *layout = s->layout;
	ScanKeyData sk[FLOWSTATE_MAX_KEYS];

	if (s->iscan == NULL)
	{
		/* no GROUP BY: the table has at most one row */
		if (s->scan == NULL)
			s->scan = table_beginscan(s->rel, GetActiveSnapshot(), 0, NULL);
		else
			table_rescan(s->scan, NULL);
		return StateScanNext(s, row);
	}

	for (int i = 0; i < layout->nkeys; i++)
	{
		int			col = s->keycol[i];
		ScanKey		key = &sk[col - 1];

		if (keynulls[i])
			ScanKeyEntryInitialize(key, SK_ISNULL | SK_SEARCHNULL, col,
								   InvalidStrategy, InvalidOid, InvalidOid,
								   InvalidOid, (Datum) 0);
		else
		{
			Oid			opfamily = s->index->rd_opfamily[col - 1];
			Oid			opcintype = s->index->rd_opcintype[col - 1];
			Oid			eqop = get_opfamily_member(opfamily, opcintype, opcintype,
												   BTEqualStrategyNumber);

			ScanKeyEntryInitialize(key, 0, col, BTEqualStrategyNumber, InvalidOid,
								   s->index->rd_indcollation[col - 1],
								   get_opcode(eqop), keys[i]);
		}
	}
	index_rescan(s->iscan, sk, layout->nkeys, NULL, 0);
	if (!index_getnext_slot(s->iscan, ForwardScanDirection, s->slot))
		return false;
	read_row(s, row);
	return true;
}

/*
 * StateScanEnd closes a scan.
 */
void
StateScanEnd(StateScan *s)
{
	if (s->iscan)
		index_endscan(s->iscan);
	if (s->index)
		index_close(s->index, AccessShareLock);
	if (s->scan)
		table_endscan(s->scan);
	ExecDropSingleTupleTableSlot(s->slot);
	table_close(s->rel, AccessShareLock);
}

/*
 * Delete the rows of a state table but, when keyno >= 0, those of final
 * windows: whose window start (key keyno) is at most cutoff.  Sets
 * *max_gid to the largest row id kept (0 if none).  Keeps the table locked
 * until the transaction ends.  Returns false if it was dropped.
 */
static bool
delete_rows(Oid relid, int keyno, int64 cutoff, int64 *max_gid)
{
	Relation	rel = try_table_open(relid, RowExclusiveLock);
	TableScanDesc scan;
	TupleTableSlot *slot;

	*max_gid = 0;
	if (rel == NULL)
		return false;
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(rel, NULL);

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull = true;
		Datum		start = keyno >= 0 ? slot_getattr(slot, ATT_KEY(keyno), &isnull) : 0;

		if (!isnull && DatumGetInt64(start) <= cutoff)
		{
			*max_gid = Max(*max_gid, DatumGetInt64(slot_getattr(slot, ATT_GID, &isnull)));
			continue;
		}
		simple_table_tuple_delete(rel, &slot->tts_tid, GetActiveSnapshot());
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	return true;
}

/*
 * StateTableKeepFinal deletes the rows of a state table but those of final
 * windows (see delete_rows).
 */
bool
StateTableKeepFinal(Oid relid, int keyno, int64 cutoff, int64 *max_gid)
{
	return delete_rows(relid, keyno, cutoff, max_gid);
}

/*
 * StateTableExpire deletes the rows of the windows (key keyno, of type
 * keytype) that start at or before cutoff, through the index on the window,
 * in the caller's transaction.  Returns how many.
 */
int64
StateTableExpire(Oid relid, int keyno, Oid keytype, int64 cutoff)
{
	char	   *sql = psprintf("DELETE FROM %s WHERE k%d OPERATOR(pg_catalog.<=) $1",
							   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
														  get_rel_name(relid)),
							   keyno + 1);
	Datum		arg = Int64GetDatum(cutoff);
	int64		n;

	SPI_connect();
	if (SPI_execute_with_args(sql, 1, &keytype, &arg, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not expire the windows of state table %u", relid);
	n = (int64) SPI_processed;
	SPI_finish();
	return n;
}

/*
 * StateTableExpireSessions deletes from the state table of the panes of a
 * view of session windows (keys k1, the pane, then k2..k<nkeys>, the
 * sessions' partition; aggregates a<first_col> and a<last_col> the first
 * and last event time of each pane) the panes of the sessions that ended at
 * or before
 * horizon: numbered per partition in pane order, as the view numbers them,
 * a session ending gap after its last event.  Whole sessions go, never a
 * part of one.  Returns the number of rows deleted.  In a transaction.
 */
int64
StateTableExpireSessions(Oid relid, int nkeys, int first_col, int last_col, Oid tstype,
						 int64 gap_us, int64 horizon)
{
	StringInfoData part;
	char	   *sql;
	Interval   *gap = palloc0(sizeof(Interval));
	Datum		args[2];
	Oid			types[2] = {INTERVALOID, tstype};
	int64		n;

	initStringInfo(&part);
	for (int i = 2; i <= nkeys; i++)
		appendStringInfo(&part, "%sk%d", i == 2 ? "PARTITION BY " : ", ", i);
	gap->time = gap_us;
	args[0] = IntervalPGetDatum(gap);
	args[1] = Int64GetDatum(horizon);
	sql = psprintf("DELETE FROM %1$s WHERE gid IN ("
				   " SELECT d.gid FROM ("
				   "  SELECT c.gid, pg_catalog.max(c.last_ts) OVER (%2$s%3$ssession_no) AS session_last"
				   "    FROM (SELECT b.*, pg_catalog.sum(b.starts) OVER (%2$s ORDER BY b.k1) AS session_no"
				   "            FROM (SELECT s.*, a%4$d AS last_ts,"
				   "                         CASE WHEN a%5$d OPERATOR(pg_catalog.-) pg_catalog.lag(a%4$d) OVER (%2$s ORDER BY k1)"
				   "                              OPERATOR(pg_catalog.<) $1 THEN 0 ELSE 1 END AS starts"
				   "                    FROM %1$s s) b) c) d"
				   "  WHERE d.session_last OPERATOR(pg_catalog.+) $1 OPERATOR(pg_catalog.<=) $2)",
				   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
											  get_rel_name(relid)),
				   part.data, nkeys > 1 ? ", " : "PARTITION BY ", last_col, first_col);
	SPI_connect();
	if (SPI_execute_with_args(sql, 2, types, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not expire the sessions of state table %u", relid);
	n = (int64) SPI_processed;
	SPI_finish();
	return n;
}

/*
 * StateTableTruncate deletes every row of a state table (a view whose
 * backfill did not finish starts again, a truncated source) and keeps it
 * locked until the transaction ends.  Returns false if it was dropped.
 */
bool
StateTableTruncate(Oid relid)
{
	int64		max_gid;

	return delete_rows(relid, -1, 0, &max_gid);
}
