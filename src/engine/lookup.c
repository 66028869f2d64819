/*-------------------------------------------------------------------------
 *
 * lookup.c
 *	  The dimension row of each source row, for views that join one
 *	  (query/join.c).
 *
 * A view's expressions read the dimension's columns as the executor's
 * inner tuple (LookupInnerVars turns its Vars into INNER_VAR ones); before
 * a row is evaluated, LookupRow finds its match and makes it the inner
 * tuple, or a tuple of nulls for a LEFT JOIN without one.
 *
 * A source brackets each batch with LookupBegin and LookupEnd, inside a
 * transaction: LookupBegin opens the dimension and its index and takes a
 * snapshot; every row of the batch reads the dimension as of that
 * snapshot, through a cache of the rows found per join value, emptied at
 * each batch.  So a row sees the dimension as of the start of the batch
 * it is processed in: a dimension change applies to the rows processed
 * after it, never to the groups before.
 *
 * The cache is bounded (LOOKUP_CACHE_ENTRIES): past that it starts over
 * within the batch, with the same snapshot.  A temporal join first reads
 * only the key's current version, through the history's partial unique
 * index (messages are mostly recent), and every version of the key when
 * the current one does not hold the message's time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/relscan.h"
#include "catalog/pg_class.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "storage/bufmgr.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "engine/ingest.h"
#include "query/query.h"

#define LOOKUP_CACHE_ENTRIES 65536
#define LOOKUP_BUCKETS 4096

/* The dimension rows of one join value. */
typedef struct LookupEntry
{
	struct LookupEntry *next;
	uint32		hash;
	Datum		value;
	bool		complete;		/* every row of the value; else the one of
								 * the probe index, if any */
	int			ntuples;
	HeapTuple  *tuples;
} LookupEntry;

struct Lookup
{
	JoinSpec   *spec;
	ExprState  *value;			/* the join value, over the source row */
	ExprState  *quals;			/* the rest of ON, or NULL */
	int16		typlen;
	bool		typbyval;
	MemoryContext cxt;			/* the view's: the slots */
	TupleTableSlot *match;		/* a dimension row */
	TupleTableSlot *nulls;		/* no dimension row (LEFT JOIN) */
	TupleDesc	table_desc;		/* the relcache's, as last seen */
	FmgrInfo	eq;				/* the key equality, for the scan key */

	/* a view over a table: no batches (see LookupRow) */
	bool		table_source;
	Snapshot	use_snapshot;	/* a backfill's or recompute's, else: */
	Snapshot	decoding_snapshot;	/* the catalog as of the commit decoded */
	bool		cache_ready;	/* the cache holds rows of that snapshot */
	bool		cache_index_known;
	Oid			cache_index;	/* the index it reads them through, found
								 * at its first row; InvalidOid: the table */
	bool		reading;		/* in the scan of the dimension's index: an
								 * error there is not the row's */
	int			forced;			/* LOOKUP_FORCE_*: a given row instead */
	HeapTuple	force_tuple;

	/* during a batch (LookupBegin .. LookupEnd) */
	Relation	rel;
	Relation	index;
	Oid			subtype;		/* the scan key's, as the index's family has
								 * the equality */
	Relation	probe;			/* a temporal join's index of the current
								 * versions, tried first; NULL if none */
	Oid			probe_subtype;
	bool		gone;			/* the dimension was dropped */
	Snapshot	snapshot;
	MemoryContext cache_cxt;
	LookupEntry **buckets;
	int			entries;
};

static Node *
inner_vars_mutator(Node *node, Index *rti)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == *rti && ((Var *) node)->varlevelsup == 0)
	{
		Var		   *var = copyObject((Var *) node);

		var->varno = INNER_VAR;
		return (Node *) var;
	}
	return expression_tree_mutator(node, inner_vars_mutator, rti);
}

/*
 * LookupInnerVars returns a copy of an expression of the view whose
 * columns of the dimension read the inner tuple.
 */
Node *
LookupInnerVars(ViewDef *def, Node *node)
{
	Index		rti = def->join.rti;

	if (!def->join.present || node == NULL)
		return copyObject(node);
	return inner_vars_mutator(node, &rti);
}

/*
 * The slots of the dimension's rows, in the view's memory, for its row type
 * (made again when a table rewrite changed it: a column the view does not
 * use may change its type).
 */
static void
make_slots(Lookup *lk, TupleDesc current)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(lk->cxt);
	/* with the defaults of columns added since the rows were written */
	TupleDesc	desc = CreateTupleDescCopyConstr(current);

	if (lk->match != NULL)
	{
		ExecDropSingleTupleTableSlot(lk->match);
		ExecDropSingleTupleTableSlot(lk->nulls);
	}
	lk->match = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
	lk->nulls = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	ExecStoreAllNullTuple(lk->nulls);
	MemoryContextSwitchTo(oldcxt);
}

/* The subtype of a scan key of index for the equality opno. */
static Oid
key_subtype(Relation index, Oid opno)
{
	int			strategy;
	Oid			lefttype;
	Oid			righttype;

	get_op_opfamily_properties(opno, index->rd_opfamily[0], false, &strategy, &lefttype, &righttype);
	return righttype;
}

/*
 * LookupCreate compiles the join of vr's view into a Lookup, in the current
 * memory context (the view's), as the view's owner; returns NULL for a
 * view without a join.
 */
Lookup *
LookupCreate(ViewRuntime *vr)
{
	JoinSpec   *spec = &vr->def->join;
	Lookup	   *lk;
	Relation	rel;

	if (!spec->present)
		return NULL;
	if (spec->value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the join of continuous view %s has no key equality", vr->def->view_name),
				 errhint("Drop the view with flowstate.drop_view() and create it again.")));
	lk = palloc0(sizeof(Lookup));
	lk->spec = spec;
	lk->value = ExecInitExpr(expression_planner(copyObject(spec->value)), NULL);
	if (spec->quals != NULL)
		lk->quals = ExecInitQual(make_ands_implicit(expression_planner((Expr *) LookupInnerVars(vr->def, (Node *) spec->quals))),
								 NULL);
	get_typlenbyval(spec->value_type, &lk->typlen, &lk->typbyval);
	fmgr_info(spec->eq_func, &lk->eq);
	lk->cxt = CurrentMemoryContext;
	lk->table_source = !vr->def->stream;
	rel = table_open(spec->relid, AccessShareLock);
	make_slots(lk, RelationGetDescr(rel));
	table_close(rel, AccessShareLock);
	/*
	 * Blocks of at most 64 kB: emptied at every batch or decoded
	 * transaction, larger ones would go back to the system (and fault in
	 * again) each time.
	 */
	lk->cache_cxt = AllocSetContextCreate(CurrentMemoryContext, "flowstate lookup cache",
										  ALLOCSET_DEFAULT_MINSIZE, ALLOCSET_DEFAULT_INITSIZE,
										  64 * 1024);
	return lk;
}

static void
cache_reset(Lookup *lk)
{
	MemoryContextReset(lk->cache_cxt);
	lk->buckets = MemoryContextAllocZero(lk->cache_cxt, sizeof(LookupEntry *) * LOOKUP_BUCKETS);
	lk->entries = 0;
}

/*
 * LookupBegin opens the dimensions of views for a batch and takes the
 * snapshot its rows read them with; inside a transaction.
 */
void
LookupBegin(List *views)
{
	ListCell   *lc;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);
		Lookup	   *lk = vr->lookup;
		Oid			index;
		bool		unique;

		if (lk == NULL || vr->dropped || lk->table_source)
			continue;
		Assert(lk->rel == NULL);
		/* dropped (with the view, whose catalog entry goes next): no row joins */
		lk->rel = try_relation_open(lk->spec->relid, AccessShareLock);
		if (lk->rel == NULL)
		{
			lk->gone = true;
			continue;
		}
		lk->gone = false;
		if (!equalTupleDescs(RelationGetDescr(lk->rel), lk->match->tts_tupleDescriptor))
			make_slots(lk, RelationGetDescr(lk->rel));
		/*
		 * Found again: an index rebuilt (REINDEX CONCURRENTLY) is a new one.
		 * A lookup join needs it unique still.
		 */
		index = JoinKeyIndex(lk->rel, lk->spec->keycol, lk->spec->eq_opno, lk->spec->collation,
							 false, &unique);
		if (!lk->spec->temporal && !unique)
			index = InvalidOid;
		lk->index = OidIsValid(index) ? index_open(index, AccessShareLock) : NULL;
		if (lk->index != NULL)
			lk->subtype = key_subtype(lk->index, lk->spec->eq_opno);
		index = lk->spec->temporal ?
			JoinKeyIndex(lk->rel, lk->spec->keycol, lk->spec->eq_opno, lk->spec->collation,
						 true, &unique) : InvalidOid;
		lk->probe = OidIsValid(index) ? index_open(index, AccessShareLock) : NULL;
		if (lk->probe != NULL)
			lk->probe_subtype = key_subtype(lk->probe, lk->spec->eq_opno);
		lk->snapshot = RegisterSnapshot(GetLatestSnapshot());
		cache_reset(lk);
	}
}

/* LookupEnd closes what LookupBegin opened. */
void
LookupEnd(List *views)
{
	ListCell   *lc;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);
		Lookup	   *lk = vr->lookup;

		if (lk == NULL || lk->rel == NULL)
			continue;
		UnregisterSnapshot(lk->snapshot);
		if (lk->index != NULL)
			index_close(lk->index, AccessShareLock);
		if (lk->probe != NULL)
			index_close(lk->probe, AccessShareLock);
		lk->probe = NULL;
		relation_close(lk->rel, AccessShareLock);
		lk->rel = NULL;
		lk->index = NULL;
		lk->snapshot = NULL;
		cache_reset(lk);
	}
}

/* Append the row in slot to *tuples (*n of them, room for *size), in the cache's memory. */
static void
add_row(Lookup *lk, HeapTuple **tuples, int *n, int *size, TupleTableSlot *slot)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(lk->cache_cxt);

	if (*n == *size)
	{
		*size = *size == 0 ? 1 : *size * 2;
		*tuples = *tuples == NULL ? palloc(sizeof(HeapTuple) * *size) :
			repalloc(*tuples, sizeof(HeapTuple) * *size);
	}
	(*tuples)[(*n)++] = ExecCopySlotHeapTuple(slot);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * The rows of value in rel that index finds as of snapshot, in direction
 * dir, copied into the cache's memory.  The scan and its slot live in the
 * row's memory: an error (the evaluation's timeout) leaves nothing behind
 * the next row would use, and the subtransaction of a row evaluated in one
 * releases what they held.
 */
static HeapTuple *
fetch_rows(Lookup *lk, Relation rel, Relation index, Oid subtype, Snapshot snapshot,
		   ScanDirection dir, Datum value, int *ntuples)
{
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	HeapTuple  *tuples = NULL;
	int			size = 0;

	ScanKeyEntryInitializeWithInfo(&key, 0, 1, BTEqualStrategyNumber, subtype,
								   lk->spec->collation, &lk->eq, value);
	*ntuples = 0;
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, dir, slot))
		add_row(lk, &tuples, ntuples, &size, slot);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return tuples;
}

/*
 * The dimension rows of value, from the cache, else from the index: all
 * of them, or with probe only the one the probe index finds (if it has
 * not looked for all already).  An entry enters the cache only once its
 * rows are all read.
 */
static LookupEntry *
rows_of(Lookup *lk, Datum value, bool probe)
{
	uint32		hash = datum_image_hash(value, lk->typbyval, lk->typlen);
	LookupEntry **bucket = &lk->buckets[hash % LOOKUP_BUCKETS];
	LookupEntry *e;
	HeapTuple  *tuples;
	int			ntuples;

	for (e = *bucket; e != NULL; e = e->next)
		if (e->hash == hash && datum_image_eq(e->value, value, lk->typbyval, lk->typlen))
			break;
	if (e != NULL && (e->complete || probe))
		return e;

	if (e == NULL && lk->entries >= LOOKUP_CACHE_ENTRIES)
	{
		cache_reset(lk);
		bucket = &lk->buckets[hash % LOOKUP_BUCKETS];
	}
	tuples = probe ?
		fetch_rows(lk, lk->rel, lk->probe, lk->probe_subtype, lk->snapshot, ForwardScanDirection, value, &ntuples) :
		fetch_rows(lk, lk->rel, lk->index, lk->subtype, lk->snapshot, ForwardScanDirection, value, &ntuples);
	if (e == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(lk->cache_cxt);

		e = palloc0(sizeof(LookupEntry));
		e->hash = hash;
		e->value = datumCopy(value, lk->typbyval, lk->typlen);
		MemoryContextSwitchTo(oldcxt);
		e->next = *bucket;
		*bucket = e;
		lk->entries++;
	}
	e->tuples = tuples;
	e->ntuples = ntuples;
	e->complete = !probe;
	return e;
}

/* The first row of e the rest of ON accepts, as the inner tuple. */
static bool
match_in(Lookup *lk, LookupEntry *e, ExprContext *ec)
{
	for (int i = 0; i < e->ntuples; i++)
	{
		ExecStoreHeapTuple(e->tuples[i], lk->match, false);
		ec->ecxt_innertuple = lk->match;
		if (lk->quals == NULL || ExecQual(lk->quals, ec))
			return true;
	}
	return false;
}

/*
 * Whether index can give the rows snapshot sees: valid in the catalog the
 * relation cache holds (while decoding, as of the change), with pages (the
 * file of an index dropped since, by REINDEX, is empty), and, for an MVCC
 * snapshot older than the catalog (a settle's), made valid before it: an
 * index built later has no entries for rows deleted before its build.
 */
static bool
index_usable(Relation index, Snapshot snapshot)
{
	TransactionId xmin = HeapTupleHeaderGetXmin(index->rd_indextuple->t_data);

	if (!index->rd_index->indisvalid || RelationGetNumberOfBlocks(index) == 0)
		return false;
	return snapshot->snapshot_type != SNAPSHOT_MVCC || !TransactionIdIsNormal(xmin) ||
		!XidInMVCCSnapshot(xmin, snapshot);
}

/*
 * The rows of value in the dimension of a view over a table as of
 * snapshot, copied into the cache's memory: through the key's index (a
 * history's versions the latest first: rows are mostly recent), or, when
 * the index cannot give them as of snapshot (a REINDEX since), by a scan
 * of the table.  The scans and their slot live in the row's memory: an
 * error leaves nothing behind that the next row would use.
 */
static LookupEntry *
fetch_table_rows(ViewRuntime *vr, Lookup *lk, Datum value, uint32 hash, Snapshot snapshot)
{
	Relation	rel;
	LookupEntry *e;
	MemoryContext oldcxt;

	rel = try_relation_open(lk->spec->relid, AccessShareLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the table continuous view %s joins was dropped", vr->def->view_name)));
	/* a rewrite may have changed the row type (a column it does not use) */
	if (RelationGetDescr(rel) != lk->table_desc)
	{
		if (!equalTupleDescs(RelationGetDescr(rel), lk->match->tts_tupleDescriptor))
		{
			make_slots(lk, RelationGetDescr(rel));
			cache_reset(lk);	/* rows of the former type */
		}
		lk->table_desc = RelationGetDescr(rel);
	}
	/*
	 * The index of the key in the catalog of now (while decoding, of then),
	 * found once for the rows of the snapshot
	 */
	if (!lk->cache_index_known)
	{
		bool		unique;
		Oid			indexid = JoinKeyIndex(rel, lk->spec->keycol, lk->spec->eq_opno,
										   lk->spec->collation, false, &unique);

		if (!OidIsValid(indexid) || (!unique && !lk->spec->temporal))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table \"%s\" has no index on column \"%s\" that continuous view %s can join on any more",
							RelationGetRelationName(rel),
							get_attname(lk->spec->relid, lk->spec->keycol, false), vr->def->view_name),
					 errhint("Create the unique index again, then rebuild the view: drop it with flowstate.drop_view() and create it again.")));
		lk->reading = true;
		{
			Relation	index = index_open(indexid, AccessShareLock);

			lk->cache_index = index_usable(index, snapshot) ? indexid : InvalidOid;
			index_close(index, AccessShareLock);
		}
		lk->reading = false;
		lk->cache_index_known = true;
	}
	if (lk->entries >= LOOKUP_CACHE_ENTRIES)
		cache_reset(lk);

	oldcxt = MemoryContextSwitchTo(lk->cache_cxt);
	e = palloc0(sizeof(LookupEntry));
	e->hash = hash;
	e->value = datumCopy(value, lk->typbyval, lk->typlen);
	e->complete = true;
	MemoryContextSwitchTo(oldcxt);

	lk->reading = true;
	if (OidIsValid(lk->cache_index))
	{
		Relation	index = index_open(lk->cache_index, AccessShareLock);

		e->tuples = fetch_rows(lk, rel, index, key_subtype(index, lk->spec->eq_opno), snapshot,
							   lk->spec->temporal ? BackwardScanDirection : ForwardScanDirection,
							   value, &e->ntuples);
		index_close(index, AccessShareLock);
	}
	else
	{
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
		TupleTableSlot *slot = table_slot_create(rel, NULL);
		int			size = 0;

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			Datum		key = slot_getattr(slot, lk->spec->keycol, &isnull);

			if (!isnull && DatumGetBool(FunctionCall2Coll(&lk->eq, lk->spec->collation, key, value)))
				add_row(lk, &e->tuples, &e->ntuples, &size, slot);
		}
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
	}
	lk->reading = false;
	relation_close(rel, AccessShareLock);

	/* into the cache once complete */
	e->next = lk->buckets[hash % LOOKUP_BUCKETS];
	lk->buckets[hash % LOOKUP_BUCKETS] = e;
	lk->entries++;
	return e;
}

/*
 * The row of a view over a table: read through the index, as of the
 * commit being decoded (a historic snapshot of logical decoding, which
 * sees a user catalog table as it was then: LookupDecodingSnapshot), or as
 * of the snapshot of the backfill or recompute reading the source
 * (LookupUseSnapshot).  The rows found are cached per join value for as
 * long as that snapshot is the one: the rows of one decoded transaction,
 * or of one scan of the source, read each key of the dimension once.  A
 * history's versions are read the latest first (a temporal join: the rest
 * of ON holds the range).
 */
static bool
lookup_table(ViewRuntime *vr, Lookup *lk, ExprContext *ec)
{
	bool		isnull;
	Datum		value = ExecEvalExpr(lk->value, ec, &isnull);

	if (!isnull)
	{
		Snapshot	snapshot = lk->use_snapshot != NULL ? lk->use_snapshot : lk->decoding_snapshot;
		uint32		hash = datum_image_hash(value, lk->typbyval, lk->typlen);
		LookupEntry *e = NULL;
		bool		matched;

		/* the cache holds rows of the snapshot it was filled under */
		if (!lk->cache_ready || snapshot == NULL)
		{
			if (lk->buckets == NULL || lk->entries > 0)
				cache_reset(lk);
			lk->cache_ready = snapshot != NULL;
			lk->cache_index_known = false;
		}
		for (e = lk->buckets[hash % LOOKUP_BUCKETS]; e != NULL; e = e->next)
			if (e->hash == hash && datum_image_eq(e->value, value, lk->typbyval, lk->typlen))
				break;
		if (e == NULL)
			e = fetch_table_rows(vr, lk, value, hash,
								 snapshot != NULL ? snapshot : GetCatalogSnapshot(lk->spec->relid));
		matched = match_in(lk, e, ec);
		if (snapshot == NULL)
			lk->cache_ready = false;
		if (matched)
			return true;
	}
	ec->ecxt_innertuple = lk->nulls;
	return lk->spec->outer;
}

/*
 * LookupForce makes the lookups that follow take tuple as the dimension's
 * row (LOOKUP_FORCE_ROW), or no row (LOOKUP_FORCE_NONE_ROW), until it is
 * called with LOOKUP_FORCE_NONE.
 */
void
LookupForce(ViewRuntime *vr, int how, HeapTuple tuple)
{
	vr->lookup->forced = how;
	vr->lookup->force_tuple = tuple;
}

/*
 * LookupDecodingSnapshot: the snapshot the lookups of views over tables
 * read with while the changes of a transaction are decoded, NULL after.
 * The decoder passes the catalog as of the transaction's commit: a user
 * catalog table as the commit left it, whatever committed while the
 * transaction ran (its own snapshot, of its first change, would not see
 * that).
 */
void
LookupDecodingSnapshot(List *views, Snapshot snapshot)
{
	ListCell   *lc;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (vr->lookup != NULL && vr->lookup->table_source)
		{
			vr->lookup->decoding_snapshot = snapshot;
			vr->lookup->cache_ready = false;
		}
	}
}

/*
 * LookupReadFailed tells whether the error of the row just evaluated came
 * from the scan of the dimension's index of a view over a table (and
 * forgets it).  Such an error is not the row's: as of an older snapshot
 * than the catalog's, the index read may be one a REINDEX has replaced
 * since, whose file is gone.
 */
bool
LookupReadFailed(ViewRuntime *vr)
{
	bool		failed = vr->lookup != NULL && vr->lookup->reading;

	if (vr->lookup != NULL)
		vr->lookup->reading = false;
	return failed;
}

/* LookupUseSnapshot: the snapshot lookups read with (NULL: decoding's). */
void
LookupUseSnapshot(ViewRuntime *vr, Snapshot snapshot)
{
	if (vr->lookup != NULL)
	{
		vr->lookup->use_snapshot = snapshot;
		vr->lookup->cache_ready = false;
	}
}

/*
 * LookupRow makes the dimension row of the source row in vr->econtext's
 * scan tuple its inner tuple.  Returns false when the row has no match and
 * the join drops it (an inner join).
 */
bool
LookupRow(ViewRuntime *vr)
{
	Lookup	   *lk = vr->lookup;
	ExprContext *ec = vr->econtext;
	bool		isnull;
	Datum		value;

	if (lk->forced != LOOKUP_FORCE_NONE)
	{
		/* a given version of the dimension's row, or none (dimension.c) */
		if (lk->forced == LOOKUP_FORCE_ROW)
		{
			ExecStoreHeapTuple(lk->force_tuple, lk->match, false);
			ec->ecxt_innertuple = lk->match;
			if (lk->quals == NULL || ExecQual(lk->quals, ec))
				return true;
		}
		ec->ecxt_innertuple = lk->nulls;
		return lk->spec->outer;
	}
	if (lk->table_source)
		return lookup_table(vr, lk, ec);
	if (lk->gone)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the table continuous view %s joins was dropped", vr->def->view_name)));
	if (lk->rel == NULL)
		elog(ERROR, "flowstate lookup outside of a batch");
	if (lk->index == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no index on column \"%s\" that continuous view %s can join on any more",
						RelationGetRelationName(lk->rel),
						get_attname(lk->spec->relid, lk->spec->keycol, false), vr->def->view_name),
				 errhint("Create the index again (unique, for a lookup join): the view's messages are dead letters until then.")));
	value = ExecEvalExpr(lk->value, ec, &isnull);
	/*
	 * The key equality is strict: a null value matches nothing.  A temporal
	 * join tries the current version first (most messages are recent), then
	 * every version.
	 */
	if (!isnull)
	{
		LookupEntry *e = rows_of(lk, value, lk->probe != NULL);

		if (match_in(lk, e, ec))
			return true;
		if (!e->complete && match_in(lk, rows_of(lk, value, false), ec))
			return true;
	}
	ec->ecxt_innertuple = lk->nulls;
	return lk->spec->outer;
}
