/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *	  Snapshots synchronised with the decoding position.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_SNAPSHOT_H
#define FLOWSTATE_SNAPSHOT_H

#include "access/xlogdefs.h"
#include "utils/snapshot.h"

/*
 * A snapshot that sees every transaction decoded so far.  It may see some
 * that commit later in the WAL, all before lsn; the decoding worker skips
 * their changes where the snapshot's reads already hold them.
 */
typedef struct SyncSnapshot
{
	Snapshot	snapshot;		/* registered; valid in the transaction that took it */
	TransactionId xmin;
	TransactionId xmax;
	int			xcnt;
	TransactionId *xip;			/* sorted */
	XLogRecPtr	lsn;			/* WAL insert position once it was taken */
} SyncSnapshot;

extern XLogRecPtr WalRecordEnd(XLogRecPtr lsn);
extern void SyncNoteXid(TransactionId xid);
extern SyncSnapshot *SyncSnapshotTake(MemoryContext cxt);
extern void SyncSnapshotDone(SyncSnapshot *s);
extern bool SyncSnapshotSees(const SyncSnapshot *s, TransactionId xid, XLogRecPtr commit_lsn);

#endif							/* FLOWSTATE_SNAPSHOT_H */
