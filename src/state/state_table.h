/*-------------------------------------------------------------------------
 *
 * state_table.h
 *	  The WAL-logged table that holds a continuous view's groups.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_STATE_TABLE_H
#define FLOWSTATE_STATE_TABLE_H

#include "access/genam.h"
#include "access/relscan.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"

#include "state/state_store.h"

/* A row of a state table, read back. */
typedef struct StateRow
{
	int64		gid;
	ItemPointerData tid;
	Datum		keys[FLOWSTATE_MAX_KEYS];
	bool		keynulls[FLOWSTATE_MAX_KEYS];
	char	   *block;			/* local form */
	const char *problem;		/* why its state cannot be read, or NULL
								 * (its block is then zeroed) */
	int			format;			/* the format its state was written in */
} StateRow;

/* New rows a writer inserts together */
#define STATE_INSERT_BATCH 256

typedef struct StateWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	TupleTableSlot *search;
	BlockNumber pruned;			/* last page pruned before a write */
	int			nbatch;			/* new rows waiting */
	TupleTableSlot **batch;		/* their slots (made as needed) */
	FlushItem **batch_items;	/* and groups */
	int64		inserted;
	int64		updated;
	int64		deleted;
	int64		overflows;
	bool		image;			/* writes states in format 1: the extension
								 * is older than 0.5.0 */
} StateWriter;

typedef struct StateScan
{
	Relation	rel;
	Relation	index;
	TableScanDesc scan;
	IndexScanDesc iscan;
	TupleTableSlot *slot;
	const ViewLayout *layout;
	int			keycol[FLOWSTATE_MAX_KEYS];	/* index column of each key */
} StateScan;

/* what StateTableCount found */
typedef struct StateCount
{
	int64		rows;
	int64		overflowed;		/* rows whose state is out of range */
	int64		max_gid;		/* 0 if no row */
	BlockNumber nblocks;		/* the table's size as counted */
	const char *problem;		/* a state that cannot be read, or NULL */
} StateCount;

extern char *StateTableName(int32 view_id);
extern void StateAppendColumn(StringInfo buf, const char *sep, const char *name, Oid type,
							  int32 typmod, Oid collation);
extern void StateTableCreate(const ViewLayout *layout, const char *qualified_name,
							 const char *name);

extern bool StateWriterBegin(StateWriter *w, Oid relid);
extern void StateWriterPut(StateWriter *w, const ViewLayout *layout, FlushItem *item);
extern void StateWriterEnd(StateWriter *w);

extern bool StateScanBegin(StateScan *s, Oid state_relid, const ViewLayout *layout,
						   bool by_key);
extern bool StateScanBlocks(StateScan *s, Oid state_relid, const ViewLayout *layout,
							BlockNumber start, BlockNumber nblocks);
extern bool StateScanNext(StateScan *s, StateRow *row);
extern bool StateTableCount(Oid state_relid, const ViewLayout *layout, bool overflow,
							StateCount *count);
extern bool StateLookup(StateScan *s, const Datum *keys, const bool *keynulls, StateRow *row);
extern void StateScanEnd(StateScan *s);
extern bool StateTableTruncate(Oid relid);
extern int64 StateTableExpire(Oid relid, int keyno, Oid keytype, int64 cutoff);
extern int64 StateTableExpireSessions(Oid relid, int nkeys, int first_col, int last_col,
									  Oid tstype, int64 gap_us, int64 horizon);
extern bool StateTableKeepFinal(Oid relid, int keyno, int64 cutoff, int64 *max_gid);

#endif							/* FLOWSTATE_STATE_TABLE_H */
