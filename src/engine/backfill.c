/*-------------------------------------------------------------------------
 *
 * backfill.c
 *	  Reading source tables under a snapshot synchronised with the decoding
 *	  position (snapshot.c): the backfill of a new view from the rows its
 *	  source already holds, and the recompute of groups whose new state
 *	  their delta cannot tell (a deleted minimum, the last input of the
 *	  largest numeric scale, a float sum out of range losing rows).  Both
 *	  hand the rows they read to the views as the decoder does (ingest.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "engine/backfill.h"
#include "engine/ingest.h"
#include "fs_catalog/catalog.h"
#include "fs_catalog/partition.h"
#include "fs_catalog/security.h"
#include "state/state_table.h"

/*
 * Stale groups are recomputed with one query each when an index serves it,
 * up to one group per RECOMPUTE_ROWS_PER_QUERY rows of the source (and at
 * least RECOMPUTE_MIN_QUERIES); beyond, or without an index, with one scan.
 */
#define RECOMPUTE_ROWS_PER_QUERY 500
#define RECOMPUTE_MIN_QUERIES 64

/* Rows of a backfill between two merges into shared memory. */
#define BACKFILL_CHUNK 65536

/*
 * Rows a table holds, as the planner estimates them (for progress only);
 * those of its leaves for a partitioned table.
 */
static int64
estimate_rows(Relation rel)
{
	BlockNumber pages;
	double		tuples;
	double		allvisfrac;

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		int64		rows = 0;
		ListCell   *lc;

		foreach(lc, PartitionLeaves(RelationGetRelid(rel)))
		{
			Relation	leaf = table_open(lfirst_oid(lc), AccessShareLock);

			if (leaf->rd_tableam != NULL)
				rows += estimate_rows(leaf);
			table_close(leaf, AccessShareLock);
		}
		return rows;
	}
	table_relation_estimate_size(rel, NULL, &pages, &tuples, &allvisfrac);
	return (int64) Max(tuples, 0);
}

/*
 * Write the groups the backfill changed since it last wrote them to the
 * state table, in the backfill's transaction (flush spill_seq), and let
 * them leave shared memory down to target bytes.
 */
static void
spill(ViewRuntime *vr, uint64 spill_seq, int64 target)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "flowstate spill",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	FlushItem  *items;
	int			n = StoreSpillBegin(vr->shared, &items, &vr->next_gid);
	StateWriter w;

	PushActiveSnapshot(GetLatestSnapshot());
	if (!StateWriterBegin(&w, vr->def->state_relid))
		vr->dropped = true;		/* and the view with it */
	else
	{
		for (int i = 0; i < n; i++)
			StateWriterPut(&w, &vr->def->layout, &items[i]);
		StateWriterEnd(&w);
	}
	CommandCounterIncrement();
	PopActiveSnapshot();
	MemoryContextSwitchTo(oldcxt);
	StoreSpillEnd(vr->shared, items, n, spill_seq);
	(void) StoreEvictSpilled(vr->shared, target, spill_seq);
	MemoryContextDelete(cxt);
}

/*
 * Merge the backfill's batch into shared memory, then keep the view within
 * its memory: past three quarters of its limit, its groups go to the state
 * table and leave down to half of it.  When shared memory cannot take the
 * batch at all, every group goes, and the batch is merged again.
 */
static void
merge_chunk(ViewRuntime *vr, uint64 spill_seq, int64 limit)
{
	if (!IngestMergeInserts(vr, InvalidXLogRecPtr))
	{
		spill(vr, spill_seq, 0);
		IngestUnresolve(vr);
		if (!IngestMergeInserts(vr, InvalidXLogRecPtr))
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("flowstate shared memory is full"),
					 errdetail("The backfill of continuous view \"%s\" could not store its groups.",
							   vr->def->view_name),
					 errhint("Increase flowstate.memory_limit.")));
	}
	if (!vr->dropped && vr->shared->bytes > limit / 4 * 3)
		spill(vr, spill_seq, limit / 2);
}

/*
 * BackfillScan feeds every row of a view's source visible to the snapshot
 * into the view, merging into shared memory chunk by chunk so that the
 * progress shows in flowstate.views.  The view's memory_limit holds: the
 * groups beyond it are written to the state table and read back when they
 * change, all in the backfill's transaction (StoreBackfillBegin), which
 * readers see whole or not at all.
 */
void
BackfillScan(ViewRuntime *vr, SyncSnapshot *snap)
{
	Relation	rel = try_table_open(vr->def->source_relid, AccessShareLock);
	TupleTableSlot *slot;
	SourceScan *scan;
	int64		total;
	int64		rows = 0;
	int64		limit = CatalogMemoryLimit(vr->def);
	uint32		max_groups = IngestBatchGroups(vr, limit);
	uint64		spill_seq;

	if (rel == NULL)
	{
		vr->dropped = true;		/* and the view with it */
		return;
	}
	spill_seq = StoreBackfillBegin(vr->shared);
	scan = SourceScanBegin(rel, snap->snapshot);
	/* a join reads its dimension as of the same snapshot */
	LookupUseSnapshot(vr, snap->snapshot);
	total = estimate_rows(rel);

	LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
	vr->shared->status = VIEW_BACKFILLING;
	vr->shared->backfill_rows = 0;
	vr->shared->backfill_total = total;
	LWLockRelease(&vr->shared->lock);

	while ((slot = SourceScanNext(scan)) != NULL)
	{
		IngestBackfillRow(vr, slot);
		if (++rows % BACKFILL_CHUNK == 0 || vr->ngroups >= max_groups)
		{
			CHECK_FOR_INTERRUPTS();
			merge_chunk(vr, spill_seq, limit);
			LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
			vr->shared->backfill_rows = rows;
			vr->shared->backfill_total = Max(total, rows);
			LWLockRelease(&vr->shared->lock);
		}
	}
	SourceScanEnd(scan);
	LookupUseSnapshot(vr, NULL);
	table_close(rel, AccessShareLock);
	IngestEnsureScalarGroup(vr);
	merge_chunk(vr, spill_seq, limit);

	/*
	 * Readers see the backfill once this transaction commits.  Its id is
	 * taken only now, after the rows were evaluated (unless a spill or the
	 * removal of the view's previous state took it): a view's expressions
	 * find no transaction id to read.
	 */
	StoreFlushXid(vr->shared, spill_seq, GetTopTransactionId());

	LWLockAcquire(&vr->shared->lock, LW_EXCLUSIVE);
	vr->shared->backfill_rows = rows;
	vr->shared->backfill_total = rows;
	LWLockRelease(&vr->shared->lock);
}

/* The recompute query of a view for one pattern of NULL keys. */
typedef struct RecomputePlan
{
	uint32		nullmask;
	SPIPlanPtr	plan;
	bool		indexed;		/* its generic plan reads an index */
} RecomputePlan;

static bool
reads_index(Plan *plan)
{
	if (plan == NULL)
		return false;
	switch (nodeTag(plan))
	{
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapHeapScan:
			return true;
		default:
			return reads_index(plan->lefttree) || reads_index(plan->righttree);
	}
}

/* Whether the generic plan of a prepared query reads an index. */
static bool
plan_reads_index(SPIPlanPtr plan)
{
	CachedPlan *cplan = SPI_plan_get_cached_plan(plan);
	bool		indexed = false;
	ListCell   *lc;

	if (cplan == NULL)
		return false;
	foreach(lc, cplan->stmt_list)
	{
		PlannedStmt *stmt = lfirst_node(PlannedStmt, lc);

		indexed |= reads_index(stmt->planTree);
	}
	ReleaseCachedPlan(cplan, CurrentResourceOwner);
	return indexed;
}

static RecomputePlan *
recompute_plan(ViewRuntime *vr, uint32 nullmask)
{
	ViewDef    *def = vr->def;
	const ViewLayout *layout = &def->layout;
	ListCell   *lc;
	StringInfoData sql;
	Oid			argtypes[FLOWSTATE_MAX_KEYS];
	int			nargs = 0;
	RecomputePlan *rp;
	SPIPlanPtr	plan;
	MemoryContext oldcxt;

	foreach(lc, vr->recompute_plans)
	{
		rp = lfirst(lc);
		if (rp->nullmask == nullmask)
			return rp;
	}

	initStringInfo(&sql);
	/* a partitioned table's rows are its partitions' */
	appendStringInfo(&sql, "SELECT t FROM %s%s t WHERE true",
					 get_rel_relkind(def->source_relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(def->source_relid)),
												get_rel_name(def->source_relid)));
	for (int i = 0; i < layout->nkeys; i++)
	{
		char	   *expr = QueryKeySql(def, i, "t");

		if (nullmask & (1U << i))
		{
			appendStringInfo(&sql, " AND (%s) IS NULL", expr);
			continue;
		}
		argtypes[nargs++] = layout->keys[i].type;
		appendStringInfo(&sql, " AND (%s) = $%d", expr, nargs);

		/* a range of the event time lets an index on it serve */
		if (layout->keys[i].is_window && def->window.range_ok)
		{
			char	   *ts = QueryTsSql(def, "t");
			char	   *size = DatumGetCString(DirectFunctionCall1(interval_out,
																   IntervalPGetDatum(def->window.size)));

			appendStringInfo(&sql, " AND (%s) >= $%d AND (%s) < $%d + %s::interval",
							 ts, nargs, ts, nargs, quote_literal_cstr(size));
		}
	}

	plan = SPI_prepare(sql.data, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare the recompute query of a continuous view: %s",
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);

	/* SPI calls leave SPI's own context current: keep the list with the view */
	oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(vr));
	rp = palloc(sizeof(RecomputePlan));
	rp->nullmask = nullmask;
	rp->plan = plan;
	rp->indexed = plan_reads_index(plan);
	vr->recompute_plans = lappend(vr->recompute_plans, rp);
	MemoryContextSwitchTo(oldcxt);
	return rp;
}

/* Store a whole-row value of the source in a slot of its descriptor. */
static void
store_row(TupleTableSlot *slot, Datum row, Oid relid)
{
	HeapTupleHeader td = DatumGetHeapTupleHeader(row);
	HeapTupleData tuple;

	tuple.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = relid;
	tuple.t_data = td;
	ExecForceStoreHeapTuple(&tuple, slot, false);
}

/* Recompute groups with one query each, served by the source's indexes. */
static void
recompute_by_query(ViewRuntime *vr, LocalGroup **groups, int n, SyncSnapshot *snap,
				   TupleTableSlot *slot)
{
	const ViewLayout *layout = &vr->def->layout;

	for (int g = 0; g < n; g++)
	{
		LocalGroup *lg = groups[g];
		uint32		nullmask = 0;
		Datum		args[FLOWSTATE_MAX_KEYS];
		char		nulls[FLOWSTATE_MAX_KEYS];
		int			nargs = 0;
		SPIPlanPtr	plan;
		int			ret;
		SecuritySave save;

		for (int i = 0; i < layout->nkeys; i++)
		{
			if (lg->isnull[i])
				nullmask |= 1U << i;
			else
			{
				args[nargs] = lg->values[i];
				nulls[nargs++] = ' ';
			}
		}
		/*
		 * The query runs the view's expressions: as its owner, in limited
		 * time (security.c); an error ends every query of this recompute.
		 */
		SecurityEnter(vr->def->owner, vr->zone, &save);
		SecurityTimerStart();
		plan = recompute_plan(vr, nullmask)->plan;
		ret = SPI_execute_snapshot(plan, args, nulls, snap->snapshot, InvalidSnapshot,
								   true, false, 0);
		(void) SecurityTimerStop();
		SecurityLeave(&save);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "recompute query of a continuous view failed: %s",
				 SPI_result_code_string(ret));
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			Datum		row = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull);
			Datum		keys[FLOWSTATE_MAX_KEYS];
			bool		keynulls[FLOWSTATE_MAX_KEYS];

			if (isnull)
				continue;
			store_row(slot, row, vr->def->source_relid);
			if (IngestEvaluateKey(vr, slot, keys, keynulls) &&
				GroupKeyEqual(vr->gk, keys, keynulls, lg->values, lg->isnull))
				IngestAccumulate(vr, slot, lg->base);
		}
		SPI_freetuptable(SPI_tuptable);
	}
}

/* Recompute many groups in one scan of the source. */
static void
recompute_by_scan(ViewRuntime *vr, LocalGroup **groups, int n, SyncSnapshot *snap,
				  Relation rel)
{
	uint32		size = 1;
	LocalGroup **table;
	SourceScan *scan;
	TupleTableSlot *slot;

	while (size < (uint32) n * 2)
		size <<= 1;
	table = palloc0(sizeof(LocalGroup *) * size);
	for (int g = 0; g < n; g++)
	{
		uint32		i = groups[g]->hash & (size - 1);

		while (table[i])
			i = (i + 1) & (size - 1);
		table[i] = groups[g];
	}

	scan = SourceScanBegin(rel, snap->snapshot);
	while ((slot = SourceScanNext(scan)) != NULL)
	{
		Datum		keys[FLOWSTATE_MAX_KEYS];
		bool		keynulls[FLOWSTATE_MAX_KEYS];
		uint32		hash;

		if (!IngestEvaluateKey(vr, slot, keys, keynulls))
			continue;
		hash = GroupKeyHash(vr->gk, keys, keynulls);
		for (uint32 i = hash & (size - 1); table[i]; i = (i + 1) & (size - 1))
		{
			if (table[i]->hash == hash &&
				GroupKeyEqual(vr->gk, table[i]->values, table[i]->isnull, keys, keynulls))
			{
				IngestAccumulate(vr, slot, table[i]->base);
				break;
			}
		}
	}
	SourceScanEnd(scan);
	pfree(table);
}

/*
 * Recompute groups by queries, in a subtransaction; returns false if that
 * failed (the owner lost SELECT on the source, an expression failed), the
 * groups' states being then undefined.
 */
static bool
try_recompute_by_query(ViewRuntime *vr, LocalGroup **groups, int n, SyncSnapshot *snap,
					   Relation rel, TupleTableSlot *slot)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool by_scan = false;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		bool		indexed = false;

		if (vr->def->layout.nkeys > 0 && n > 1)
		{
			SecuritySave save;

			SecurityEnter(vr->def->owner, vr->zone, &save);
			SecurityTimerStart();
			indexed = recompute_plan(vr, 0)->indexed;
			(void) SecurityTimerStop();
			SecurityLeave(&save);
		}
		if (vr->def->layout.nkeys == 0 ||
			(n > 1 && (!indexed ||
					   n > Max(RECOMPUTE_MIN_QUERIES, estimate_rows(rel) / RECOMPUTE_ROWS_PER_QUERY))))
			by_scan = true;
		else
			recompute_by_query(vr, groups, n, snap, slot);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		(void) SecurityTimerStop();
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	if (by_scan)
		return false;
	return ok;
}

/*
 * BackfillRecompute replaces the state of groups by their state read from
 * the source under the snapshot; their deltas restart empty, and skip from
 * now on the transactions the snapshot saw (snapno).
 */
void
BackfillRecompute(ViewRuntime *vr, LocalGroup **groups, int n, SyncSnapshot *snap, int snapno)
{
	int32		size = vr->def->layout.block_size;
	Relation	rel = try_table_open(vr->def->source_relid, AccessShareLock);
	TupleTableSlot *slot;
	MemoryContext oldcxt;

	if (rel == NULL)
	{
		vr->dropped = true;		/* and the view with it */
		return;
	}
	slot = table_slot_create(rel, NULL);
	oldcxt = MemoryContextSwitchTo(vr->batch_cxt);
	for (int g = 0; g < n; g++)
	{
		LocalGroup *lg = groups[g];

		lg->base = palloc0(size);
		memset(lg->delta, 0, size);
		lg->skip_snap = snapno;
		lg->merged = NULL;
	}

	/*
	 * When the queries cannot serve, one scan evaluates the rows one by one,
	 * a failing row being a dead letter.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* a join's groups are read by scan, the dimension as of the snapshot */
	LookupUseSnapshot(vr, snap->snapshot);
	if (vr->lookup != NULL || !try_recompute_by_query(vr, groups, n, snap, rel, slot))
	{
		for (int g = 0; g < n; g++)
			memset(groups[g]->base, 0, size);
		recompute_by_scan(vr, groups, n, snap, rel);
	}
	LookupUseSnapshot(vr, NULL);
	SPI_finish();
	MemoryContextSwitchTo(oldcxt);

	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
}
