/*-------------------------------------------------------------------------
 *
 * state_store.h
 *	  The groups of continuous views in shared memory (DSA), their flush
 *	  sequencing and what readers capture of them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_STATE_STORE_H
#define FLOWSTATE_STATE_STORE_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "storage/itemptr.h"
#include "storage/lwlock.h"
#include "utils/dsa.h"
#include "utils/snapshot.h"

#include "state/group.h"
#include "aggregates/layout.h"

/* Flushes whose visibility readers can still tell apart. */
#define STORE_FLUSH_RING 64

/* A view's groups are found by database and state table. */
typedef struct StoreKey
{
	Oid			dboid;
	Oid			relid;			/* the view's state table */
} StoreKey;

typedef enum ViewStatus
{
	VIEW_STARTING = 0,			/* registered, state not loaded yet */
	VIEW_BACKFILLING,			/* reading the rows its source already held */
	VIEW_RUNNING,				/* following its source */
	VIEW_FULL					/* over its memory limit: its flushed groups
								 * wait for older snapshots to end */
} ViewStatus;

typedef struct FlushRecord
{
	uint64		seq;
	TransactionId xid;			/* InvalidTransactionId until assigned */
} FlushRecord;

/*
 * One group; followed by its flat key (group.c) and its state block in
 * the packed form (AggPack).
 */
typedef struct StoreEntry
{
	dsa_pointer bucket_next;
	dsa_pointer prev;			/* towards the most recently changed */
	dsa_pointer next;			/* towards the least recently changed */
	uint64		seq;			/* flush that holds (or will hold) this state */
	int64		gid;			/* its row in the state table; 0 if none yet */
	uint32		hash;
	uint32		part_hash;		/* GroupKeyPartHash, if the view has part_index */
	dsa_pointer part_next;		/* the groups of its keys but the window */
	dsa_pointer part_prev;
	uint32		keylen:30;		/* bytes of its flat key (at most a varlena's) */
	uint32		live:1;			/* has rows (or the view has no GROUP BY) */
	uint32		overflowed:1;	/* a float aggregate is out of range (views
								 * with float sums: SharedView.overflowed) */
	ItemPointerData tid;		/* its row's current version */
	char		data[FLEXIBLE_ARRAY_MEMBER];
} StoreEntry;

#define ENTRY_KEY(e)		((e)->data)
#define ENTRY_BLOCK(e)		((e)->data + (e)->keylen)

/*
 * How far a view over a Kafka stream goes in one partition of it: the next
 * offset its groups include, the largest event time of the messages before
 * it (its share of the watermark), and when a batch last brought messages
 * of the partition (whether it is idle).
 */
/* The most workers a stream has (its "workers" option). */
#define STORE_MAX_STREAM_WORKERS 64

typedef struct StreamPartition
{
	int64		next;			/* -1: none yet */
	int64		max_ts;			/* PG_INT64_MIN: no event time yet */
	TimestampTz active_at;		/* 0: no message since the view was loaded */
} StreamPartition;

typedef struct SharedView
{
	StoreKey	key;
	int32		view_id;
	Oid			view_relid;		/* the view users read */
	Oid			def_relid;		/* its definition: the rights it needs */
	int32		status;			/* ViewStatus */
	pid_t		writer_pid;
	LWLock		lock;
	ViewLayout	layout;
	uint64		generation;		/* changes each time the view is registered */
	bool		stream;			/* fed by a Kafka stream, not by decoding */

	/* the groups: a chained hash table and a recency list */
	dsa_pointer buckets;		/* nbuckets chains by key, then, with
								 * part_index, nbuckets by the keys but the
								 * window */
	uint32		nbuckets;
	bool		part_index;		/* GroupKeyPartIndexable */
	int64		nentries;
	dsa_pointer head;			/* most recently changed */
	dsa_pointer tail;
	bool		complete;		/* every group of the state table is here */
	uint64		evictions;		/* changes each time groups leave */
	bool		pressed_out;	/* groups left for memory (evict_tail) since
								 * the worker began loading the state table
								 * (engine/state_load.c) */

	/* Kafka: per partition, how far the groups go (StreamPartition) */
	dsa_pointer offsets;
	int32		noffsets;

	/* flush sequencing (see state_store.c) */
	uint64		pending_seq;
	uint64		base_seq;
	uint64		truncate_seq;	/* flush that empties the state table */
	uint64		backfill_seq;	/* flush a backfill writes, or 0: readers
								 * that do not see it take no group from here */
	uint64		evicted_seq;	/* latest flush whose groups left */
	int			nflushes;
	FlushRecord flushes[STORE_FLUSH_RING];

	/* accounting and monitoring */
	int64		bytes;
	int64		memory_limit;
	int64		groups;			/* live groups, in memory or not */
	bool		can_overflow;	/* its groups can fall in error (AggCanOverflow) */
	int64		overflowed;		/* groups out of range (AggOverflowed), in
								 * memory or not */
	uint64		rows_applied;
	uint64		late_rows;
	uint64		failed_rows;
	uint64		recomputed;
	double		rows_per_second;
	XLogRecPtr	applied_lsn;
	XLogRecPtr	sides_lsn;		/* dead letters and late events of the
								 * changes up to here are committed */
	bool		sides_wanted;	/* a wait_for waits for them: flush now */
	bool		paused;			/* its flusher holds reading back for memory */
	bool		has_watermark;
	TimestampTz watermark;
	bool		has_durable_max_ts; /* streams: the event time the last
									 * committed flush recorded, which
									 * decides lateness (see ProjectionIsLate) */
	TimestampTz durable_max_ts;
	int32		stream_workers; /* streams: the workers, and per worker the */
	int64		judged[STORE_MAX_STREAM_WORKERS];	/* durable_max_ts its
													 * batch not merged yet
													 * judges lateness with
													 * (PG_INT64_MIN: none
													 * yet): the least is the
													 * watermark readers see */
	int64		backfill_rows;
	int64		backfill_total;
	uint64		flush_count;
	TimestampTz last_flush_at;
	bool		broken;			/* its state table holds a state that cannot
								 * be read: neither fed nor read until
								 * dropped; last_error says why */
	char		last_error[256];
} SharedView;

/* What a flush writes for one group, copied out of shared memory. */
typedef struct FlushItem
{
	dsa_pointer entry;
	int64		gid;
	ItemPointerData tid;
	bool		live;
	char	   *key;
	char	   *block;			/* local form */
} FlushItem;

/*
 * The shared memory one group's write needs, allocated before any group of
 * a batch changes (StorePrepare), so that a batch is written whole or not
 * at all.  vars has room for the layout's var fields, set by the caller.
 */
typedef struct StoreWrite
{
	dsa_pointer entry;			/* the group; a new entry if is_new */
	bool		is_new;
	bool		fresh;			/* set by the caller: the entry's chunks are
								 * about to be freed (a TRUNCATE), new ones
								 * are needed */
	Size		keylen;
	dsa_pointer *vars;			/* the chunk of each var field */
	bool		stored_overflowed;	/* set by the caller: a new entry of a
									 * group read from the state table was
									 * out of range there (AggOverflowed) */
} StoreWrite;

/* The groups a reader sees in shared memory, copied at one instant. */
typedef struct Capture
{
	Oid			view_relid;
	Oid			def_relid;
	ViewLayout	layout;
	bool		hide_table;		/* a TRUNCATE the reader's snapshot does not see flushed */
	bool		too_old;		/* groups the snapshot needs have left */
	bool		partial;		/* only the groups of one part hash */
	int64		overflowed;		/* groups out of range, in memory or not */
	int			n;
	int64	   *gid;			/* 0: never flushed */
	bool	   *live;
	char	  **key;
	char	  **block;			/* local form */
} Capture;

extern Size StoreShmemSize(void);
extern void StoreShmemInit(void);
extern dsa_area *StoreArea(void);

/* registry */
extern SharedView *StoreRegisterView(StoreKey key, int32 view_id, Oid view_relid, Oid def_relid,
									 const ViewLayout *layout, int64 memory_limit, bool stream);
extern void StoreUnregisterView(SharedView *sv);
extern void StoreForgetDatabase(Oid dboid);
extern SharedView *StoreFindView(StoreKey key);
extern void StoreReleaseView(SharedView *sv);
extern void StoreBreakView(SharedView *sv, const char *message);
extern int64 StoreTotalBytes(void);

/* the writer, with sv->lock held as noted */
extern dsa_pointer StoreLookup(SharedView *sv, const GroupKeys *gk, uint32 hash,
							   const Datum *values, const bool *isnull);	/* any */
extern void StoreReadBlock(SharedView *sv, dsa_pointer dp, char *block);	/* any */
extern StoreEntry *StoreEntryGet(SharedView *sv, dsa_pointer dp);	/* any */
extern dsa_pointer StoreAddGroup(SharedView *sv, uint32 hash, const char *key,
								 Size keylen, const char *block, int64 gid,
								 ItemPointer tid, bool changed);	/* exclusive */
extern bool StoreWriteBlock(SharedView *sv, dsa_pointer dp, const char *block); /* exclusive */
extern bool StorePrepare(SharedView *sv, StoreWrite *w, dsa_pointer dp, Size keylen,
						 const char *block);	/* exclusive */
extern void StoreCancel(SharedView *sv, StoreWrite *w, int nvars);	/* exclusive */
extern dsa_pointer StoreFinish(SharedView *sv, StoreWrite *w, uint32 hash, const char *key,
							   const char *block, int64 gid, ItemPointer tid,
							   bool changed);	/* exclusive */
extern void StoreClear(SharedView *sv); /* exclusive */

/* flushing, by the writer; these lock */
extern int	StoreFlushBegin(SharedView *sv, uint64 *seq, FlushItem **items,
							bool *truncate, int64 *next_gid,
							StreamPartition **parts, int *nparts);
extern void StoreSetOffsets(SharedView *sv, const int64 *next, const int64 *max_ts, int n,
							TimestampTz now);
extern void StoreNotePartitions(SharedView *sv, int n, TimestampTz now);
extern int	StoreGetOffsets(SharedView *sv, int64 **next);
extern void StoreFlushXid(SharedView *sv, uint64 seq, TransactionId xid);
extern void StoreFlushEnd(SharedView *sv, uint64 seq, FlushItem *items, int n,
						  bool committed);
extern int64 StoreEvict(SharedView *sv, int64 target_bytes, TransactionId horizon);
extern int64 StoreEvictFinal(SharedView *sv, int keyno, int64 cutoff, TransactionId horizon);

/* a backfill that writes its groups as it goes; these lock */
extern uint64 StoreBackfillBegin(SharedView *sv);
extern int	StoreSpillBegin(SharedView *sv, FlushItem **items, int64 *next_gid);
extern void StoreSpillEnd(SharedView *sv, FlushItem *items, int n, uint64 spill_seq);
extern int64 StoreEvictSpilled(SharedView *sv, int64 target_bytes, uint64 spill_seq);

/* readers */
extern bool StoreViewLayout(StoreKey key, ViewLayout *layout);
extern Capture *StoreCapture(StoreKey key, Snapshot snapshot, const uint32 *part_hash);
extern void StoreWaitBegin(void);
extern void StoreWaitEnd(void);
extern TransactionId StoreHorizon(Oid dboid);

#endif							/* FLOWSTATE_STATE_STORE_H */
