/*-------------------------------------------------------------------------
 *
 * history.h
 *	  SCD type-2 histories of tables and streams: the changes of a table's
 *	  keys, kept per committed transaction, or the messages of a stream,
 *	  written as versions by the flush.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_HISTORY_H
#define FLOWSTATE_HISTORY_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "executor/tuptable.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

#include "engine/snapshot.h"

typedef struct HistoryRuntime HistoryRuntime;
typedef struct HistoryFlush HistoryFlush;

/* what a change of the source does to a key */
typedef enum HistoryChangeKind
{
	HISTORY_UPSERT,				/* the key's row as the change leaves it */
	HISTORY_DELETE,				/* the key's row is gone */
	HISTORY_TRUNCATE			/* every row is gone */
} HistoryChangeKind;

/* the catalog: the histories of the database, kept or started */
extern List *HistoryReadCatalog(List *running, MemoryContext cxt, Oid stream);
extern char *HistorySignature(Oid stream);
extern int32 HistoryId(HistoryRuntime *h);
extern Oid	HistorySource(HistoryRuntime *h);
extern Oid	HistoryTable(HistoryRuntime *h);
extern bool HistoryWantsBackfill(HistoryRuntime *h);
extern bool HistoryActive(HistoryRuntime *h);
extern bool HistoryAny(void);
extern bool HistoryCatalogReady(void);

/* backfill: version 1 of every row the snapshot sees */
extern void HistoryBackfill(HistoryRuntime *h, SyncSnapshot *snap);
extern void HistoryBackfillCaughtUp(HistoryRuntime *h);

/* the changes decoded, per transaction (xid), and their commit or abort */
extern void HistoryChange(HistoryRuntime *h, TransactionId xid, TransactionId subxid,
						  HistoryChangeKind kind, TupleTableSlot *before,
						  TupleTableSlot *after);
extern void HistoryCommit(List *histories, TransactionId xid, XLogRecPtr commit_lsn,
						  TimestampTz commit_time);
extern void HistoryAbort(TransactionId xid, TransactionId subxid);
extern void HistoryForgetOpen(void);
extern void HistoryFail(HistoryRuntime *h, const char *why);

/* a stream's messages (history_stream.c) */
extern bool HistoryStreamWants(HistoryRuntime *h, int32 partition, int64 offset);
extern int64 HistoryStreamStart(HistoryRuntime *h, int32 partition, int64 start);
extern bool HistoryStreamMessage(HistoryRuntime *h, TupleTableSlot *row, bool no_value,
								 TimestampTz message_time, int32 partition, int64 offset,
								 char **error);
extern bool HistoryStreamUnflushed(List *histories);

/* the flush: what is committed up to its position, in its transaction */
extern HistoryFlush *HistoryFlushBegin(List *histories, MemoryContext cxt);
extern bool HistoryFlushWrite(HistoryFlush *f, TimestampTz start, int budget_ms);
extern void HistoryFlushEnd(HistoryFlush *f);

#endif							/* FLOWSTATE_HISTORY_H */
