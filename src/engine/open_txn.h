/*-------------------------------------------------------------------------
 *
 * open_txn.h
 *	  What transactions still in progress change in continuous views,
 *	  gathered while the source streams them and added to the views when
 *	  they commit.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_OPEN_TXN_H
#define FLOWSTATE_OPEN_TXN_H

#include "engine/ingest.h"

typedef struct OpenTxn OpenTxn;

/* What the open transactions of a source hold, for monitoring. */
typedef struct OpenTxnStats
{
	int			open;			/* transactions open */
	int64		bytes;			/* memory their deltas take */
	int64		peak_bytes;		/* most they took at once */
	int64		spilled_bytes;	/* bytes they wrote to temporary files */
	int64		committed;		/* transactions applied at their commit */
} OpenTxnStats;

extern OpenTxn *OpenTxnStart(TransactionId xid, List *views);
extern OpenTxn *OpenTxnFind(TransactionId xid);
extern void OpenTxnTouch(OpenTxn *txn, Oid relid);
extern void OpenTxnRow(OpenTxn *txn, TransactionId subxid, ViewRuntime *vr,
					   TupleTableSlot *slot, int sign, XLogRecPtr lsn);
extern void OpenTxnRebuild(OpenTxn *txn, ViewRuntime *vr);
extern void OpenTxnStop(void);
extern bool OpenTxnCommit(OpenTxn *txn, List *views, XLogRecPtr commit_lsn, List **rebuild,
						  List **missed);
extern void OpenTxnAbort(TransactionId xid, TransactionId subxid);
extern void OpenTxnViewsChanged(List *views);
extern void OpenTxnForgetAll(void);
extern void OpenTxnGetStats(OpenTxnStats *stats);

#endif							/* FLOWSTATE_OPEN_TXN_H */
