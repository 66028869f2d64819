/*-------------------------------------------------------------------------
 *
 * partition.h
 *	  Partitioned tables as sources of continuous views: their leaves, scans
 *	  that read them in the partitioned table's row type, and the WAL notes
 *	  of partitions attached, detached and dropped.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_PARTITION_H
#define FLOWSTATE_PARTITION_H

#include "executor/tuptable.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/*
 * Prefix of the transactional logical decoding message that names the
 * partitioned tables whose rows changed without row changes in the WAL.
 * Its content is an array of Oids.
 */
#define PARTITION_MESSAGE_PREFIX "flowstate.partitions"

typedef struct SourceScan SourceScan;

extern void PartitionInit(void);
extern List *PartitionLeaves(Oid relid);
extern List *PartitionTree(Oid relid);
extern void PartitionCheckLeaves(Oid relid, Oid source);
extern void PartitionNoteChange(Oid parent);
extern void PartitionSetReplicaIdentityFull(Oid relid);

extern SourceScan *SourceScanBegin(Relation rel, Snapshot snapshot);
extern TupleTableSlot *SourceScanNext(SourceScan *scan);
extern void SourceScanEnd(SourceScan *scan);

#endif							/* FLOWSTATE_PARTITION_H */
