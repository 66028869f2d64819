/*-------------------------------------------------------------------------
 *
 * history_internal.h
 *	  What the files of histories share: a history as the decoder keeps it
 *	  (history.c) and writes it (history_writer.c).  Private to engine/.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_HISTORY_INTERNAL_H
#define FLOWSTATE_HISTORY_INTERNAL_H

#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"

#include "engine/history.h"

/* the prepared statements of a history's writes */
typedef enum HistoryPlan
{
	PLAN_REPLACE,				/* overwrite a key's current version */
	PLAN_TRUNCATE,				/* end every current version */
	/* for a batch of keys */
	PLAN_BATCH_CURRENT,			/* their current versions */
	PLAN_BATCH_TYPE1,			/* type-1 columns into every version */
	PLAN_BATCH_CLOSE,			/* end their current versions */
	PLAN_BATCH_INSERT,			/* begin versions */
	/* a stream's, for a batch of keys */
	PLAN_STREAM_LATEST,			/* their latest messages' sequence values */
	PLAN_STREAM_KEEP,			/* keep messages */
	PLAN_STREAM_CUT,			/* where their versions are cut */
	PLAN_STREAM_FORGET,			/* delete their versions from there */
	PLAN_STREAM_REOPEN,			/* the version ending there is current again */
	PLAN_STREAM_READ,			/* their messages from there, in sequence */
	NUM_PLANS
} HistoryPlan;

struct HistoryRuntime
{
	int32		id;
	Oid			source;
	Oid			relid;			/* the history table */
	char	   *name;			/* qualified, for messages and SQL */
	char	   *source_name;
	MemoryContext cxt;			/* all of it */

	/* key, tracked and type-1 columns, in this order */
	int			ncols;
	int			nkey;
	int			ntracked;
	int			ntype1;
	char	  **colnames;
	AttrNumber *attnums;		/* in the source */
	Oid		   *types;
	Oid		   *collations;
	int16	   *typlens;
	bool	   *typbyvals;
	FmgrInfo   *eq;				/* tracked columns: the type's equality, or
								 * fn_oid InvalidOid to compare images */
	FmgrInfo   *out;			/* key columns: output functions */
	Oid		   *arraytypes;		/* the columns' array types, for batches */
	char	   *typaligns;

	char		on_delete;		/* 'c'lose, 't'ombstone, 'i'gnore */
	bool		truncate_closes;

	bool		backfilling;	/* as the catalog says */
	bool		backfill_wanted;	/* ... and the backfill still to read */
	SyncSnapshot *snap;			/* while decoding up to where it stops */
	bool		caught_up;		/* the next flush records it running */
	bool		failed;
	char	   *failure;		/* why the decoder failed it, for the next flush */

	MemoryContext pending_cxt;	/* the committed changes not in a flush */
	List	   *pending;		/* HistoryEntry */

	/* a stream's (history_stream.c) */
	bool		stream;
	AttrNumber	sequence_att;	/* orders the versions; 0: the message's time */
	AttrNumber	delete_att;		/* true deletes; 0: none */
	char	   *changes;		/* the table of its messages, qualified */
	int			nnext;
	int64	   *next;			/* per partition: the next offset, -1 unknown */
	bool		offsets_moved;	/* since the last flush */

	SPIPlanPtr	plans[NUM_PLANS];
};

/* a committed change of a key (or a TRUNCATE), as the history writes it */
typedef struct HistoryEntry
{
	HistoryChangeKind kind;
	TimestampTz ts;
	Datum	   *values;			/* ncols */
	bool	   *nulls;
	char	   *key;			/* the key's text */
	int64		order;			/* a stream's: the message's rank, for ties */
} HistoryEntry;

/* history.c */
extern char *HistoryKeyText(HistoryRuntime *h, Datum *values, bool *nulls);
extern Datum HistoryCopyValue(HistoryRuntime *h, int i, Datum d);

/* history_stream.c */
extern void HistoryStreamReadOffsets(HistoryRuntime *h);
extern void HistoryStreamWriteOffsets(HistoryRuntime *h, int64 *next, int n);
extern int	HistoryWriteStreamBatch(HistoryRuntime *h, List *entries, int from, int to);

/* history_writer.c */
extern char *HistoryColumnList(HistoryRuntime *h);
extern void HistoryAppendKeyJoin(StringInfo s, HistoryRuntime *h, const char *a);
extern void HistoryAppendUnnest(StringInfo s, int first, int n, bool ordinality);
extern SPIPlanPtr HistoryKeepPlan(HistoryRuntime *h, HistoryPlan which, const char *sql,
								  int nargs, Oid *types);
extern Datum HistoryArray(HistoryRuntime *h, int i, Oid type, Datum *values, bool *nulls, int n);
extern void HistoryCheckOwner(HistoryRuntime *h);
extern int	HistoryWriteBatch(HistoryRuntime *h, List *entries, int from, int to);
extern void HistoryWriteTruncate(HistoryRuntime *h, TimestampTz ts);
extern void HistoryFreePlans(HistoryRuntime *h);

#endif							/* FLOWSTATE_HISTORY_INTERNAL_H */
