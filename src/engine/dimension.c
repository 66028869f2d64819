/*-------------------------------------------------------------------------
 *
 * dimension.c
 *	  The changes of a table that views over another table join: which
 *	  groups they make stale.
 *
 * A view over a table that joins a dimension (query/join.c) reads the
 * dimension as of each change of its source (lookup.c), so its deltas are
 * exact as long as the dimension does not change.  When a row of the
 * dimension changes, the groups of the source rows that join its key, as
 * they were joined before and as they are joined after, are no longer
 * what the deltas say; the settle recomputes them from the source (the
 * join evaluated under its snapshot):
 *
 *	1. DimensionChange, for each change of the dimension the decoder
 *	   hands over: the key's versions (the old row, the new row) are kept,
 *	   per view, until the settle ends;
 *	2. DimensionExpand, under each snapshot the settle takes: the source
 *	   rows with each changed key, read through the index on the join
 *	   column, evaluated with each version of their key (and no row, for a
 *	   LEFT JOIN): their groups are marked stale (IngestMarkStale);
 *	3. DimensionFactRow, for each change of the source decoded until the
 *	   settle ends: a row joining a changed key has its groups under each
 *	   version marked stale too; so a source row that the snapshot no
 *	   longer sees (deleted after the dimension changed) still has the
 *	   group it was in recomputed; the rows a transaction changed before it
 *	   changed the dimension are marked when it does (they were evaluated
 *	   as of its commit: after the change);
 *	4. DimensionSettled forgets the versions.
 *
 * The recompute then replaces those groups by their state under the
 * snapshot, and the decoding up to its end skips for them what it saw
 * (settle.c): the groups are exact, whatever order the changes of the
 * two tables came in.  A change of the dimension that the snapshot did not
 * see (decoded on the way to its end) needs a new snapshot: what it does to
 * the groups is not a delta that can be kept aside (IngestUnseenChange).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/typcache.h"
#include "utils/snapmgr.h"

#include "engine/ingest.h"

#define DIMENSION_BUCKETS 1024

/* The versions of one key of the dimension changed during the settle. */
typedef struct ChangedKey
{
	struct ChangedKey *next;
	uint32		hash;
	Datum		key;
	List	   *versions;		/* HeapTuple of the dimension */
	bool		expanded;		/* its source rows marked under a snapshot */
} ChangedKey;

typedef struct Changes
{
	MemoryContext cxt;
	ChangedKey **buckets;
	int			pending;		/* keys not expanded */
	int16		typlen;
	bool		typbyval;
	Oid			collation;
	FmgrInfo	eq;				/* the join's equality */
	FmgrInfo	hash;			/* the type's hash, if it has one */
	bool		hashable;
	/* the source rows of the transaction being decoded (txn_cxt) */
	MemoryContext txn_cxt;
	List	   *txn_rows;		/* HeapTuple */
} Changes;

static Changes *
changes_of(ViewRuntime *vr, bool create)
{
	Changes    *c = vr->dimension_changes;

	if (c == NULL && create)
	{
		MemoryContext cxt = AllocSetContextCreate(vr->def->cxt, "flowstate dimension changes",
												  ALLOCSET_DEFAULT_SIZES);

		TypeCacheEntry *tce = lookup_type_cache(vr->def->join.value_type, TYPECACHE_HASH_PROC_FINFO);

		c = MemoryContextAllocZero(vr->def->cxt, sizeof(Changes));
		c->cxt = cxt;
		c->txn_cxt = AllocSetContextCreate(vr->def->cxt, "flowstate dimension transaction",
										   ALLOCSET_DEFAULT_SIZES);
		c->buckets = MemoryContextAllocZero(cxt, sizeof(ChangedKey *) * DIMENSION_BUCKETS);
		get_typlenbyval(vr->def->join.value_type, &c->typlen, &c->typbyval);
		c->collation = vr->def->join.collation;
		fmgr_info_cxt(get_opcode(vr->def->join.fact_opno), &c->eq, vr->def->cxt);
		c->hashable = OidIsValid(tce->hash_proc);
		if (c->hashable)
			fmgr_info_cxt(tce->hash_proc, &c->hash, vr->def->cxt);
		vr->dimension_changes = c;
	}
	return c;
}

/*
 * The changed key equal to key, by the join's equality (1.0 and 1.00 are
 * one numeric key), hashed by the type's hash function (or not at all).
 */
static ChangedKey *
find_key(Changes *c, Datum key, bool create)
{
	uint32		hash = c->hashable ?
		DatumGetUInt32(FunctionCall1Coll(&c->hash, c->collation, key)) : 0;
	ChangedKey **bucket = &c->buckets[hash % DIMENSION_BUCKETS];
	ChangedKey *k;

	for (k = *bucket; k != NULL; k = k->next)
		if (k->hash == hash &&
			DatumGetBool(FunctionCall2Coll(&c->eq, c->collation, key, k->key)))
			return k;
	if (!create)
		return NULL;
	k = MemoryContextAllocZero(c->cxt, sizeof(ChangedKey));
	k->hash = hash;
	k->key = datumCopy(key, c->typbyval, c->typlen);
	k->next = *bucket;
	*bucket = k;
	c->pending++;
	return k;
}

static void mark_txn_rows(ViewRuntime *vr);
static void mark_row(ViewRuntime *vr, TupleTableSlot *row, ChangedKey *k);

/* Keep a version of the dimension's row under its key. */
static void
add_version(ViewRuntime *vr, TupleTableSlot *row)
{
	Changes    *c;
	ChangedKey *k;
	bool		isnull;
	Datum		key;
	MemoryContext oldcxt;

	if (row == NULL)
		return;
	key = slot_getattr(row, vr->def->join.keycol, &isnull);
	/* a null key joins nothing */
	if (isnull)
		return;
	c = changes_of(vr, true);
	oldcxt = MemoryContextSwitchTo(c->cxt);
	k = find_key(c, key, true);
	k->versions = lappend(k->versions, ExecCopySlotHeapTuple(row));
	if (k->expanded)
	{
		/* its source rows must be evaluated with this version too */
		k->expanded = false;
		c->pending++;
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * DimensionChange notes a change of the dimension of vr: the row before
 * (NULL for an INSERT) and the row after (NULL for a DELETE).
 */
void
DimensionChange(ViewRuntime *vr, TupleTableSlot *oldrow, TupleTableSlot *newrow)
{
	if (vr->dropped)
		return;
	/* a snapshot that did not see the change cannot recompute its groups */
	IngestUnseenChange();
	add_version(vr, oldrow);
	add_version(vr, newrow);
	mark_txn_rows(vr);
}

/* Mark stale the groups of a source row under each version of its key. */
static void
mark_row(ViewRuntime *vr, TupleTableSlot *row, ChangedKey *k)
{
	Datum		keys[FLOWSTATE_MAX_KEYS];
	bool		keynulls[FLOWSTATE_MAX_KEYS];
	ListCell   *lc;

	foreach(lc, k->versions)
	{
		LookupForce(vr, LOOKUP_FORCE_ROW, lfirst(lc));
		if (IngestEvaluateKey(vr, row, keys, keynulls))
			IngestMarkStale(vr, keys, keynulls);
	}
	/* and joining none (a version may not satisfy the rest of ON) */
	if (vr->def->join.outer)
	{
		LookupForce(vr, LOOKUP_FORCE_NONE_ROW, NULL);
		if (IngestEvaluateKey(vr, row, keys, keynulls))
			IngestMarkStale(vr, keys, keynulls);
	}
	LookupForce(vr, LOOKUP_FORCE_NONE, NULL);
}

/*
 * The rows of the source the transaction being decoded changed before it
 * changed the dimension: evaluated as of its commit, they left the group
 * of the row as it was before (a row deleted, or updated, earlier in the
 * transaction), which the snapshot of the settle cannot show.
 */
static void
mark_txn_rows(ViewRuntime *vr)
{
	Changes    *c = vr->dimension_changes;
	TupleTableSlot *slot;
	ListCell   *lc;

	if (c == NULL || c->txn_rows == NIL)
		return;
	slot = MakeSingleTupleTableSlot(vr->source_desc, &TTSOpsHeapTuple);
	foreach(lc, c->txn_rows)
	{
		ChangedKey *k;
		bool		isnull;
		Datum		value;

		ExecStoreHeapTuple(lfirst(lc), slot, false);
		value = slot_getattr(slot, vr->def->join.fact_col, &isnull);
		if (!isnull && (k = find_key(c, value, false)) != NULL)
			mark_row(vr, slot, k);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/* DimensionTxnBegin: a transaction is decoded, its rows kept from now on. */
void
DimensionTxnBegin(List *views)
{
	ListCell   *lc;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);
		Changes    *c = vr->dimension_changes;

		if (c != NULL && c->txn_rows != NIL)
		{
			MemoryContextReset(c->txn_cxt);
			c->txn_rows = NIL;
		}
	}
}

/*
 * DimensionFactRow: a change of the source decoded; it is kept until the
 * transaction ends, and a row that joins a changed key has its groups
 * under each version marked.
 */
void
DimensionFactRow(ViewRuntime *vr, TupleTableSlot *row)
{
	Changes    *c = changes_of(vr, true);
	ChangedKey *k;
	bool		isnull;
	Datum		value;
	MemoryContext oldcxt = MemoryContextSwitchTo(c->txn_cxt);

	/* (the decoder's slot of the table's row type, which outlives the rows) */
	vr->source_desc = row->tts_tupleDescriptor;
	c->txn_rows = lappend(c->txn_rows, ExecCopySlotHeapTuple(row));
	MemoryContextSwitchTo(oldcxt);
	value = slot_getattr(row, vr->def->join.fact_col, &isnull);
	if (isnull || (k = find_key(c, value, false)) == NULL)
		return;
	mark_row(vr, row, k);
}

/* DimensionPending: keys changed whose source rows are still to be read. */
int
DimensionPending(List *views)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);

		if (vr->dimension_changes != NULL && !vr->dropped)
			n += ((Changes *) vr->dimension_changes)->pending;
	}
	return n;
}

/* Read the source rows of key k under snap and mark their groups. */
static void
expand_key(ViewRuntime *vr, Relation rel, Relation index, Oid subtype, FmgrInfo *eq,
		   TupleTableSlot *slot, ChangedKey *k, Snapshot snapshot)
{
	ScanKeyData key;
	IndexScanDesc scan;

	ScanKeyEntryInitializeWithInfo(&key, 0, 1, BTEqualStrategyNumber, subtype,
								   vr->def->join.collation, eq, k->key);
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		mark_row(vr, slot, k);
	}
	ExecClearTuple(slot);
	index_endscan(scan);
}

/*
 * DimensionExpand marks, under the settle's snapshot, the groups of the
 * source rows that join a key changed since the last expansion.
 */
void
DimensionExpand(List *views, SyncSnapshot *snap)
{
	ListCell   *lc;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);
		Changes    *c = vr->dimension_changes;
		JoinSpec   *spec = &vr->def->join;
		Relation	rel;
		Relation	index = NULL;
		Oid			indexid;
		bool		unique;
		TupleTableSlot *slot;
		FmgrInfo	eq;
		Oid			subtype = InvalidOid;
		int			strategy;
		Oid			lefttype;

		if (c == NULL || c->pending == 0 || vr->dropped)
			continue;
		rel = try_table_open(vr->def->source_relid, AccessShareLock);
		if (rel == NULL)
		{
			vr->dropped = true;		/* and the view with it */
			continue;
		}
		indexid = JoinKeyIndex(rel, spec->fact_col, spec->fact_opno, spec->collation, false, &unique);
		if (!OidIsValid(indexid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table \"%s\" has no index on column \"%s\" any more, which continuous view %s needs",
							RelationGetRelationName(rel),
							get_attname(vr->def->source_relid, spec->fact_col, false),
							vr->def->view_name),
					 errhint("Create the index again.")));
		index = index_open(indexid, AccessShareLock);
		get_op_opfamily_properties(spec->fact_opno, index->rd_opfamily[0], false,
								   &strategy, &lefttype, &subtype);
		fmgr_info(get_opcode(spec->fact_opno), &eq);
		slot = table_slot_create(rel, NULL);
		/* the rows evaluate with the versions given, the rest as of snap */
		LookupUseSnapshot(vr, snap->snapshot);
		for (int b = 0; b < DIMENSION_BUCKETS; b++)
		{
			for (ChangedKey *k = c->buckets[b]; k != NULL; k = k->next)
			{
				if (k->expanded)
					continue;
				expand_key(vr, rel, index, subtype, &eq, slot, k, snap->snapshot);
				k->expanded = true;
				c->pending--;
			}
		}
		LookupUseSnapshot(vr, NULL);
		ExecDropSingleTupleTableSlot(slot);
		index_close(index, AccessShareLock);
		table_close(rel, AccessShareLock);
	}
}

/* DimensionSettled forgets the changes once the settle has merged. */
void
DimensionSettled(List *views)
{
	ListCell   *lc;

	foreach(lc, views)
	{
		ViewRuntime *vr = lfirst(lc);
		Changes    *c = vr->dimension_changes;

		if (c == NULL)
			continue;
		MemoryContextReset(c->cxt);
		c->buckets = MemoryContextAllocZero(c->cxt, sizeof(ChangedKey *) * DIMENSION_BUCKETS);
		c->pending = 0;
	}
}
