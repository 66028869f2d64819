/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *	  Snapshots synchronised with the decoding position.
 *
 * The decoding worker has applied every transaction whose commit record it
 * has decoded.  A snapshot taken now might still miss one of them: its
 * commit record is in the WAL before the backend that wrote it has left
 * the ProcArray.  SyncSnapshotTake therefore takes a snapshot, waits for
 * any decoded transaction it still shows as running, and takes another,
 * until it sees them all.  It may also see transactions that commit later
 * in the WAL than the decoder has reached, but all before the WAL insert
 * position read right after it (lsn): those are the ones the decoder later
 * skips for what was read under the snapshot (SyncSnapshotSees).  No
 * transaction is missed and none is counted twice, and writers are never
 * blocked: only this worker waits, and only for transactions that already
 * committed.
 *
 * Only transactions that touched a table are remembered, and forgotten once
 * older than every running transaction.
 *
 * A leaf of the engine: backfills and recomputes (backfill.c) read under
 * these snapshots, the settle (settle.c) takes them, and the rows of each
 * decoded transaction are checked against them (ingest.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog_internal.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "engine/snapshot.h"

/* Decoded transactions that may not have left the ProcArray yet. */
static TransactionId *noted = NULL;
static int	nnoted = 0;
static int	maxnoted = 0;

static void
prune_noted(void)
{
	TransactionId oldest = GetOldestActiveTransactionId();
	int			kept = 0;

	for (int i = 0; i < nnoted; i++)
		if (TransactionIdFollowsOrEquals(noted[i], oldest))
			noted[kept++] = noted[i];
	nnoted = kept;
}

/*
 * SyncNoteXid remembers a decoded transaction that changed a table.
 */
void
SyncNoteXid(TransactionId xid)
{
	if (nnoted == maxnoted)
	{
		if (maxnoted >= 4096)
			prune_noted();
		if (nnoted == maxnoted)
		{
			maxnoted = Max(256, maxnoted * 2);
			noted = noted == NULL ?
				MemoryContextAlloc(TopMemoryContext, sizeof(TransactionId) * maxnoted) :
				repalloc(noted, sizeof(TransactionId) * maxnoted);
		}
	}
	noted[nnoted++] = xid;
}

static int
xid_cmp(const void *a, const void *b)
{
	TransactionId x = *(const TransactionId *) a;
	TransactionId y = *(const TransactionId *) b;

	return (x > y) - (x < y);
}

/*
 * SyncSnapshotTake returns a snapshot that sees every transaction decoded so
 * far (see the file header), registered in the current transaction; the
 * copy of its xids lives in cxt.
 */
SyncSnapshot *
SyncSnapshotTake(MemoryContext cxt)
{
	SyncSnapshot *s = MemoryContextAllocZero(cxt, sizeof(SyncSnapshot));
	Snapshot	snap;

	for (;;)
	{
		bool		waited = false;

		snap = GetLatestSnapshot();
		for (int i = 0; i < nnoted; i++)
		{
			if (XidInMVCCSnapshot(noted[i], snap))
			{
				XactLockTableWait(noted[i], NULL, NULL, XLTW_None);
				waited = true;
			}
		}
		if (!waited)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	s->snapshot = RegisterSnapshot(snap);
	s->lsn = WalRecordEnd(GetXLogInsertRecPtr());
	nnoted = 0;

	s->xmin = s->snapshot->xmin;
	s->xmax = s->snapshot->xmax;
	s->xcnt = s->snapshot->xcnt;
	s->xip = MemoryContextAlloc(cxt, sizeof(TransactionId) * Max(s->xcnt, 1));
	memcpy(s->xip, s->snapshot->xip, sizeof(TransactionId) * s->xcnt);
	qsort(s->xip, s->xcnt, sizeof(TransactionId), xid_cmp);

	/* the decoder reads only flushed WAL: make sure it can reach lsn */
	XLogFlush(s->lsn);
	return s;
}

/*
 * SyncSnapshotDone unregisters the snapshot; its xids stay usable.
 */
void
SyncSnapshotDone(SyncSnapshot *s)
{
	if (s->snapshot)
		UnregisterSnapshot(s->snapshot);
	s->snapshot = NULL;
}

/*
 * WalRecordEnd maps a WAL position to the end of the records before it.
 * They differ when the position is the first byte after the header of a
 * page that holds no record yet, as GetXLogInsertRecPtr() reports when the
 * last record ended at the end of a page: XLogFlush() refuses that
 * position (the header is not written yet), and a reader that read every
 * record ends before it.
 */
XLogRecPtr
WalRecordEnd(XLogRecPtr lsn)
{
	if (XLogSegmentOffset(lsn, wal_segment_size) == SizeOfXLogLongPHD)
		return lsn - SizeOfXLogLongPHD;
	if (lsn % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		return lsn - SizeOfXLogShortPHD;
	return lsn;
}

/*
 * SyncSnapshotSees tells whether a committed top-level transaction whose
 * commit record is at commit_lsn was seen by the snapshot.
 */
bool
SyncSnapshotSees(const SyncSnapshot *s, TransactionId xid, XLogRecPtr commit_lsn)
{
	if (commit_lsn >= s->lsn)
		return false;
	if (TransactionIdPrecedes(xid, s->xmin))
		return true;
	if (TransactionIdFollowsOrEquals(xid, s->xmax))
		return false;
	return bsearch(&xid, s->xip, s->xcnt, sizeof(TransactionId), xid_cmp) == NULL;
}
