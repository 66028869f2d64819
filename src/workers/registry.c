/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  Owns flowstate's fixed shared memory: the launcher's identity and the
 *	  worker registry, an array of flowstate.max_workers slots.
 *
 * A slot stands for one worker that should exist (a manager per database
 * with the extension, later the source workers).  The launcher reconciles
 * the slots with the postmaster's workers; see launcher.c for the state
 * machine and README.md for its drawing.
 *
 * Locking protocol
 *
 *	Flowstate->lock (the one LWLock of tranche "flowstate") guards every
 *	field of FlowstateShared and of every WorkerSlot.  Readers (the
 *	flowstate.workers() function, lookups) take it shared; every write takes
 *	it exclusive.  Who writes what:
 *
 *	- the launcher: launcher_pid/latch, allocation of slots for databases it
 *	  discovers, and the transitions WANTED -> STARTING, EXITED -> FREE |
 *	  WANTED | BACKOFF and BACKOFF -> WANTED, with failures/streak/retry_at;
 *	- a worker, for its own slot only (checked through the generation):
 *	  STARTING -> RUNNING with pid and latch when it attaches, RUNNING ->
 *	  EXITED with exit_kind when it leaves, activity, last_error, confirmed;
 *	- a backend: allocation of a WANTED slot (or recheck on an existing one)
 *	  when CREATE EXTENSION commits, and suspended_by around DDL that needs
 *	  its database free of connections (ddl.c, through launcher.c).
 *
 *	Nobody sleeps, does I/O or calls anything that can throw while holding
 *	the lock.  Latches are set after it is released.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "workers/registry.h"
#include "state/state_store.h"

FlowstateShared *Flowstate = NULL;
WorkerSlot *MySlot = NULL;

static uint64 MyGeneration = 0;

/* The message of the latest error the worker reported, if any. */
static char exit_message[FLOWSTATE_TEXT_LEN];
static emit_log_hook_type prev_emit_log_hook = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
flowstate_shmem_size(void)
{
	return add_size(offsetof(FlowstateShared, slots),
					mul_size(flowstate_max_workers, sizeof(WorkerSlot)));
}

static void
flowstate_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(flowstate_shmem_size());
	RequestAddinShmemSpace(StoreShmemSize());
	RequestNamedLWLockTranche("flowstate", 1);
}

static void
flowstate_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	Flowstate = ShmemInitStruct("flowstate", flowstate_shmem_size(), &found);
	if (!found)
	{
		memset(Flowstate, 0, flowstate_shmem_size());
		Flowstate->lock = &(GetNamedLWLockTranche("flowstate"))->lock;
		Flowstate->next_generation = 1;
		Flowstate->nslots = flowstate_max_workers;
	}
	StoreShmemInit();

	LWLockRelease(AddinShmemInitLock);
}

/*
 * ShmemInit installs the PG15 shared memory request and startup hooks.
 */
void
ShmemInit(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = flowstate_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = flowstate_shmem_startup;
}

/*
 * SlotFind returns the slot of the given kind for a database, or NULL.
 */
WorkerSlot *
SlotFind(WorkerKind kind, Oid dboid)
{
	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state != SLOT_FREE && slot->kind == kind &&
			slot->dboid == dboid)
			return slot;
	}
	return NULL;
}

/*
 * SlotFindStream finds the slot of a Kafka stream's worker.
 */
WorkerSlot *
SlotFindStream(Oid dboid, Oid relid, int index)
{
	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state != SLOT_FREE && slot->kind == WORKER_KAFKA &&
			slot->dboid == dboid && slot->relid == relid && slot->index == index)
			return slot;
	}
	return NULL;
}

/*
 * SlotAllocate takes a free slot for a worker that should run, or returns
 * NULL when every slot is in use.
 */
WorkerSlot *
SlotAllocate(WorkerKind kind, Oid dboid)
{
	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state != SLOT_FREE)
			continue;
		memset(slot, 0, sizeof(WorkerSlot));
		slot->state = SLOT_WANTED;
		slot->kind = kind;
		slot->dboid = dboid;
		slot->generation = Flowstate->next_generation++;
		return slot;
	}
	return NULL;
}

/*
 * SlotRelease returns a slot to the free list.
 */
void
SlotRelease(WorkerSlot *slot)
{
	Assert(slot->pid == 0);
	slot->state = SLOT_FREE;
	slot->generation = 0;
}

/*
 * Remember the message of the latest ERROR or FATAL the worker reported.
 * An uncaught error ends a background worker, so when it exits with a
 * non-zero code this is what it died of.  No lock is taken here;
 * slot_detach publishes the message.
 */
static void
worker_emit_log(ErrorData *edata)
{
	if (edata->elevel >= ERROR)
		SlotNoteError(edata->message);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

static void
slot_detach(int code, Datum arg)
{
	Latch	   *launcher_latch;

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	if (MySlot->generation == MyGeneration && MySlot->pid == MyProcPid)
	{
		MySlot->pid = 0;
		MySlot->latch = NULL;
		MySlot->state = SLOT_EXITED;
		if (code != 0)
		{
			MySlot->exit_kind = WORKER_FAILED;
			if (exit_message[0] != '\0')
				strlcpy(MySlot->last_error, exit_message, FLOWSTATE_TEXT_LEN);
			else
				snprintf(MySlot->last_error, FLOWSTATE_TEXT_LEN,
						 "worker exited with exit code %d", code);
			MySlot->last_error_at = GetCurrentTimestamp();
		}
	}
	launcher_latch = Flowstate->launcher_latch;
	LWLockRelease(Flowstate->lock);

	MySlot = NULL;
	if (launcher_latch)
		SetLatch(launcher_latch);
}

/*
 * SlotAttach binds the calling worker to its slot and arranges for the slot
 * to be marked EXITED however the worker leaves.  A worker whose slot was
 * given to someone else in the meantime exits quietly.
 */
WorkerSlot *
SlotAttach(int slotno, uint64 generation)
{
	WorkerSlot *slot;

	if (slotno < 0 || slotno >= Flowstate->nslots)
		elog(ERROR, "flowstate worker slot %d out of range", slotno);

	slot = &Flowstate->slots[slotno];
	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	if (slot->generation != generation || slot->state != SLOT_STARTING)
	{
		LWLockRelease(Flowstate->lock);
		ereport(LOG,
				(errmsg("flowstate worker slot %d was reassigned before the worker started",
						slotno)));
		proc_exit(0);
	}
	slot->state = SLOT_RUNNING;
	slot->pid = MyProcPid;
	slot->latch = &MyProc->procLatch;
	slot->exit_kind = WORKER_FAILED;
	slot->confirmed = false;
	slot->recheck = false;
	slot->started_at = GetCurrentTimestamp();
	slot->activity[0] = '\0';
	/* nothing of a previous worker's progress counts for this one */
	slot->caught_up_at = 0;
	slot->views_registered_at = 0;
	LWLockRelease(Flowstate->lock);

	MySlot = slot;
	MyGeneration = generation;
	before_shmem_exit(slot_detach, (Datum) 0);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = worker_emit_log;
	return slot;
}

/*
 * SlotNoteError keeps the message of an error the calling worker is about
 * to die of; the emit_log_hook only sees errors that reach the server log,
 * so a worker's outermost PG_CATCH calls this too.  Takes no lock.
 */
void
SlotNoteError(const char *message)
{
	if (message != NULL)
		strlcpy(exit_message, message, FLOWSTATE_TEXT_LEN);
}

/*
 * SlotDeclareExit records why the calling worker is about to exit.
 */
void
SlotDeclareExit(WorkerExit how)
{
	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	MySlot->exit_kind = how;
	LWLockRelease(Flowstate->lock);
}

/*
 * SlotFlushAsked tells whether a backend waits for the calling worker's
 * position to be durable (flowstate.wait_for() and histories) up to a
 * point it has applied but not flushed yet.
 */
bool
SlotFlushAsked(XLogRecPtr applied, XLogRecPtr durable)
{
	XLogRecPtr	asked;

	LWLockAcquire(Flowstate->lock, LW_SHARED);
	asked = MySlot->flush_asked_lsn;
	LWLockRelease(Flowstate->lock);
	return asked > durable && applied >= asked;
}

/*
 * SlotSetActivity publishes what the calling worker is doing.
 */
void
SlotSetActivity(const char *activity)
{
	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	strlcpy(MySlot->activity, activity, FLOWSTATE_TEXT_LEN);
	LWLockRelease(Flowstate->lock);
}

/*
 * SlotSetConfirmed records that the worker found its database usable, and
 * wakes the launcher, which limits how many workers start at once.
 */
void
SlotSetConfirmed(void)
{
	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	MySlot->confirmed = true;
	LWLockRelease(Flowstate->lock);
	WakeLauncher();
}

/*
 * SlotStopRequested tells whether someone asked the calling worker to stop.
 */
bool
SlotStopRequested(void)
{
	bool		stop;

	LWLockAcquire(Flowstate->lock, LW_SHARED);
	stop = MySlot->stop_requested || MySlot->suspended_by != 0;
	LWLockRelease(Flowstate->lock);
	return stop;
}

/*
 * SlotSetProgress publishes the progress of the calling source worker,
 * updating its rate of changes (over the last second or more).
 */
void
SlotSetProgress(SourceProgress *progress)
{
	static TimestampTz rate_since = 0;
	static uint64 rate_changes = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (rate_since == 0 || progress->changes < rate_changes)
	{
		rate_since = now;
		rate_changes = progress->changes;
	}
	else if (TimestampDifferenceExceeds(rate_since, now, 1000))
	{
		progress->changes_per_second = (progress->changes - rate_changes) /
			((now - rate_since) / (double) USECS_PER_SEC);
		rate_since = now;
		rate_changes = progress->changes;
	}

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	MySlot->applied_lsn = progress->applied_lsn;
	MySlot->durable_lsn = progress->durable_lsn;
	MySlot->changes = progress->changes;
	MySlot->transactions = progress->transactions;
	MySlot->changes_per_second = progress->changes_per_second;
	MySlot->last_flush_at = progress->last_flush_at;
	MySlot->paused = progress->paused;
	MySlot->degraded = progress->degraded;
	MySlot->partitions = progress->partitions;
	MySlot->lag_messages = progress->lag_messages;
	MySlot->open_txns = progress->open_txns;
	MySlot->open_txn_bytes = progress->open_txn_bytes;
	MySlot->open_txn_peak_bytes = progress->open_txn_peak_bytes;
	MySlot->open_txn_spilled_bytes = progress->open_txn_spilled_bytes;
	MySlot->streamed_txns = progress->streamed_txns;
	MySlot->caught_up_at = progress->caught_up_at;
	MySlot->views_registered_at = progress->views_registered_at;
	LWLockRelease(Flowstate->lock);
}

/*
 * SlotSetError publishes, while the worker runs, the error it meets (such
 * as brokers out of reach) and when.
 */
void
SlotSetError(const char *message)
{
	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	strlcpy(MySlot->last_error, message, FLOWSTATE_TEXT_LEN);
	MySlot->last_error_at = GetCurrentTimestamp();
	LWLockRelease(Flowstate->lock);
}

/*
 * SlotCatalogGeneration returns the calling worker's catalog generation: it
 * changes when a backend commits a change to the views of its database.
 */
uint64
SlotCatalogGeneration(void)
{
	uint64		generation;

	LWLockAcquire(Flowstate->lock, LW_SHARED);
	generation = MySlot->catalog_generation;
	LWLockRelease(Flowstate->lock);
	return generation;
}

/*
 * WakeLauncher sets the launcher's latch, if a launcher is running.
 */
void
WakeLauncher(void)
{
	Latch	   *latch;

	LWLockAcquire(Flowstate->lock, LW_SHARED);
	latch = Flowstate->launcher_latch;
	LWLockRelease(Flowstate->lock);
	if (latch)
		SetLatch(latch);
}
