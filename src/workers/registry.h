/*-------------------------------------------------------------------------
 *
 * registry.h
 *	  The worker registry flowstate keeps in the main shared memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_REGISTRY_H
#define FLOWSTATE_REGISTRY_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#define FLOWSTATE_TEXT_LEN 256

/* What a slot runs. */
typedef enum WorkerKind
{
	WORKER_MANAGER = 1,			/* one per database with the extension */
	WORKER_DECODER = 2,			/* one per database with continuous views */
	WORKER_KAFKA = 3			/* per Kafka stream with views: workers of it */
} WorkerKind;

/*
 * Life cycle of a slot; README.md draws the transitions.
 *
 *	FREE -> WANTED -> STARTING -> RUNNING -> EXITED -> FREE | WANTED | BACKOFF
 *	BACKOFF -> WANTED (at retry_at)
 */
typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_WANTED,				/* should run; started unless suspended */
	SLOT_STARTING,				/* registered with the postmaster */
	SLOT_RUNNING,				/* attached: pid and latch are set */
	SLOT_EXITED,				/* gone; the launcher decides what next */
	SLOT_BACKOFF				/* failed; started again at retry_at */
} SlotState;

/* Why a worker exited, as it declared before leaving. */
typedef enum WorkerExit
{
	WORKER_FAILED = 0,			/* error, FATAL, or never attached */
	WORKER_ABSENT,				/* the extension is not installed there */
	WORKER_STOPPED				/* asked to stop */
} WorkerExit;

typedef struct WorkerSlot
{
	SlotState	state;
	WorkerKind	kind;
	Oid			dboid;
	Oid			relid;			/* Kafka: the stream's foreign table */
	int			index;			/* Kafka: which of its workers */
	uint64		generation;		/* changes each time the slot is taken */
	pid_t		pid;
	Latch	   *latch;
	bool		confirmed;		/* the worker found the extension installed */
	bool		stop_requested;
	bool		recheck;		/* CREATE EXTENSION committed after start */
	pid_t		suspended_by;	/* backend holding the database for DDL */
	WorkerExit	exit_kind;
	int			failures;		/* since the slot was taken */
	int			streak;			/* consecutive failures */
	TimestampTz started_at;
	TimestampTz last_error_at;
	TimestampTz retry_at;
	char		last_error[FLOWSTATE_TEXT_LEN];
	char		activity[FLOWSTATE_TEXT_LEN];

	/* source workers: what changed for them, and their progress */
	uint64		catalog_generation; /* bumped when views are created or dropped */
	XLogRecPtr	applied_lsn;	/* shown in the views up to here */
	XLogRecPtr	durable_lsn;	/* flushed to the state tables up to here */
	uint64		changes;
	uint64		transactions;
	double		changes_per_second;
	TimestampTz last_flush_at;
	bool		paused;			/* reading held back for memory: last_error
								 * says why (backpressure.c) */

	/* Kafka workers */
	bool		degraded;		/* brokers unreachable: last_error says why */
	int			partitions;		/* partitions it consumes */
	int64		lag_messages;	/* messages behind the partitions' ends */
	int32		open_txns;		/* decoder: transactions decoded while in
								 * progress, not committed yet */
	int64		open_txn_bytes; /* ... the memory their deltas take, */
	int64		open_txn_peak_bytes;	/* ... at most so far, */
	int64		open_txn_spilled_bytes; /* ... what went to temporary files */
	int64		streamed_txns;	/* ... how many were applied at commit */
	TimestampTz caught_up_at;	/* last time it saw no message behind */
	TimestampTz catch_up_asked_at;	/* a backend waits for that (wait_for) */
	XLogRecPtr	flush_asked_lsn;	/* decoder: a backend waits for the
									 * histories to be durable up to here
									 * (wait_for) */
	TimestampTz views_registered_at;	/* the owner (worker 0): when it
										 * registered the views */
} WorkerSlot;

/* The progress a source worker publishes. */
typedef struct SourceProgress
{
	XLogRecPtr	applied_lsn;
	XLogRecPtr	durable_lsn;
	uint64		changes;
	uint64		transactions;
	double		changes_per_second;
	TimestampTz last_flush_at;
	bool		paused;
	bool		degraded;
	int			partitions;
	int64		lag_messages;
	TimestampTz caught_up_at;
	TimestampTz views_registered_at;
	int32		open_txns;
	int64		open_txn_bytes;
	int64		open_txn_peak_bytes;
	int64		open_txn_spilled_bytes;
	int64		streamed_txns;
} SourceProgress;

typedef struct FlowstateShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	TimestampTz launcher_started_at;
	uint64		next_generation;
	int			nslots;
	WorkerSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} FlowstateShared;

extern FlowstateShared *Flowstate;
extern WorkerSlot *MySlot;

extern void ShmemInit(void);

/* Registry operations; the caller holds Flowstate->lock as noted. */
extern WorkerSlot *SlotFind(WorkerKind kind, Oid dboid);	/* shared */
extern WorkerSlot *SlotFindStream(Oid dboid, Oid relid, int index); /* shared */
extern WorkerSlot *SlotAllocate(WorkerKind kind, Oid dboid);	/* exclusive */
extern void SlotRelease(WorkerSlot *slot);	/* exclusive */

/* Worker side; these take the lock themselves. */
extern WorkerSlot *SlotAttach(int slotno, uint64 generation);
extern void SlotDeclareExit(WorkerExit how);
extern void SlotNoteError(const char *message);
extern void SlotSetError(const char *message);
extern void SlotSetActivity(const char *activity);
extern void SlotSetConfirmed(void);
extern bool SlotStopRequested(void);
extern void SlotSetProgress(SourceProgress *progress);
extern uint64 SlotCatalogGeneration(void);
extern bool SlotFlushAsked(XLogRecPtr applied, XLogRecPtr durable);

extern void WakeLauncher(void);

#endif							/* FLOWSTATE_REGISTRY_H */
