/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The flowstate launcher: one static background worker per server that
 *	  keeps exactly one manager running in every database where the
 *	  extension is installed.
 *
 * The launcher connects to no database: it reads pg_database but no
 * database's pg_extension.  It learns where the extension lives in three
 * ways:
 *
 *	- a backend that commits CREATE EXTENSION flowstate takes a slot for its
 *	  database and sets the launcher's latch (ddl.c);
 *	- a connectable database the launcher has not classified yet gets a
 *	  probe: a manager is started there, and exits with WORKER_ABSENT if the
 *	  extension is not installed.  The launcher then remembers the database
 *	  as absent until a backend says otherwise.  This covers server start
 *	  and databases copied from a template that has the extension;
 *	- a manager that finds the extension dropped exits with WORKER_ABSENT.
 *
 * The reconcile loop walks the slots (registry.c) and moves each through its
 * state machine: WANTED slots are started unless a backend suspended them
 * for DDL, EXITED slots are freed (absent, database gone), wanted again
 * (stopped on request) or put in BACKOFF (failed), and BACKOFF slots are
 * wanted again at retry_at.  A failed worker's delay is
 * flowstate.restart_delay, doubled per consecutive failure up to 64 times;
 * the streak restarts once a worker has stayed up longer than that cap.
 *
 * The launcher restarts after one second if it fails.  A worker crash makes
 * the postmaster reinitialise shared memory and restart the launcher, which
 * starts from nothing and probes every database again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "workers/launcher.h"
#include "workers/registry.h"

/* A worker that has not attached after this long is counted as failed. */
#define STARTUP_TIMEOUT_MS	30000

/*
 * Workers that are starting (registered, or attached but not yet past their
 * first look at the catalog) at any one time: this spreads the probes of a
 * server with many databases over time instead of exhausting
 * max_worker_processes at once.
 */
#define MAX_CONCURRENT_STARTS 4

/* A lack of background worker slots is reported once it lasts this long. */
#define SHORTAGE_WARNING_MS 10000

/* Workers of one database woken at once when it is suspended. */
#define FLOWSTATE_MAX_DB_WORKERS 64

/* Retry delay after the postmaster had no background worker slot free. */
#define REGISTER_RETRY_MS 100

/* What the reconcile pass decided to start, done after the lock is gone. */
typedef struct StartRequest
{
	int			slotno;
	uint64		generation;
	WorkerKind	kind;
	Oid			dboid;
	Oid			relid;
	int			index;
} StartRequest;

static MemoryContext LauncherContext = NULL;

/* Handles of the workers this launcher registered, by slot number. */
static BackgroundWorkerHandle **handles = NULL;
static uint64 *handle_generation = NULL;

/* Databases known not to have the extension. */
static HTAB *absent_databases = NULL;

/* Slot shortage is logged once per change of the shortfall. */
static int	last_shortfall = 0;

PGDLLEXPORT void flowstate_launcher_main(Datum main_arg);

/*
 * LauncherRegister registers the launcher with the postmaster; called from
 * _PG_init while shared_preload_libraries is processed.
 */
void
LauncherRegister(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	strlcpy(bgw.bgw_library_name, "flowstate", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, "flowstate_launcher_main", BGW_MAXLEN);
	strlcpy(bgw.bgw_name, "flowstate launcher", BGW_MAXLEN);
	strlcpy(bgw.bgw_type, "flowstate launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&bgw);
}

/* Compute the restart delay after the given number of consecutive failures. */
static long
backoff_delay_ms(int streak)
{
	int			doublings = Min(Max(streak - 1, 0), 6);

	return (long) flowstate_restart_delay << doublings;
}

static void
launcher_detach(int code, Datum arg)
{
	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	if (Flowstate->launcher_pid == MyProcPid)
	{
		Flowstate->launcher_pid = 0;
		Flowstate->launcher_latch = NULL;
	}
	LWLockRelease(Flowstate->lock);
}

static void
launcher_attach(void)
{
	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	if (Flowstate->launcher_pid != 0 &&
		BackendPidGetProc(Flowstate->launcher_pid) != NULL)
	{
		pid_t		other = Flowstate->launcher_pid;

		LWLockRelease(Flowstate->lock);
		ereport(LOG,
				(errmsg("flowstate launcher already running with PID %d", (int) other)));
		proc_exit(0);
	}
	Flowstate->launcher_pid = MyProcPid;
	Flowstate->launcher_latch = &MyProc->procLatch;
	Flowstate->launcher_started_at = GetCurrentTimestamp();
	LWLockRelease(Flowstate->lock);

	before_shmem_exit(launcher_detach, (Datum) 0);
}

/*
 * Return the OIDs of every database a manager can connect to, allocated in
 * the caller's memory context.
 */
static List *
connectable_databases(void)
{
	MemoryContext callercxt = CurrentMemoryContext;
	List	   *result = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext oldcxt;

		if (!db->datallowconn || database_is_invalid_form(db))
			continue;
		oldcxt = MemoryContextSwitchTo(callercxt);
		result = lappend_oid(result, db->oid);
		MemoryContextSwitchTo(oldcxt);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	CommitTransactionCommand();
	MemoryContextSwitchTo(callercxt);
	return result;
}

/*
 * Compare pg_database with the slots: free the slots of databases that are
 * gone, and take a probe slot for each database not classified yet.
 */
static void
scan_databases(void)
{
	List	   *databases = connectable_databases();
	int			shortfall = 0;
	HASH_SEQ_STATUS seq;
	Oid		   *absent;
	ListCell   *lc;

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);

	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state == SLOT_FREE || list_member_oid(databases, slot->dboid))
			continue;
		if (slot->pid == 0 && slot->state != SLOT_STARTING)
			SlotRelease(slot);
		else
			slot->stop_requested = true;
	}

	foreach(lc, databases)
	{
		Oid			dboid = lfirst_oid(lc);

		if (SlotFind(WORKER_MANAGER, dboid) != NULL ||
			hash_search(absent_databases, &dboid, HASH_FIND, NULL) != NULL)
			continue;
		if (SlotAllocate(WORKER_MANAGER, dboid) == NULL)
			shortfall++;
	}

	LWLockRelease(Flowstate->lock);

	/* forget absent databases that were dropped */
	hash_seq_init(&seq, absent_databases);
	while ((absent = hash_seq_search(&seq)) != NULL)
	{
		if (!list_member_oid(databases, *absent))
			hash_search(absent_databases, absent, HASH_REMOVE, NULL);
	}

	if (shortfall != last_shortfall && shortfall > 0)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("flowstate has no free worker slot for %d databases", shortfall),
				 errhint("Increase flowstate.max_workers.")));
	last_shortfall = shortfall;
}

/*
 * Account for a failed worker: count it and schedule its restart.  Caller
 * holds the lock exclusively.
 */
static void
slot_failed(WorkerSlot *slot, TimestampTz now)
{
	long		ran_ms = 0;

	if (slot->started_at != 0)
		ran_ms = TimestampDifferenceMilliseconds(slot->started_at, now);
	if (ran_ms > backoff_delay_ms(FLOWSTATE_BACKOFF_MAX_FACTOR))
		slot->streak = 0;
	slot->streak++;
	slot->failures++;
	slot->retry_at = TimestampTzPlusMilliseconds(now, backoff_delay_ms(slot->streak));
	slot->state = SLOT_BACKOFF;
}

/*
 * Move every slot through its state machine.  Returns the number of
 * milliseconds until the next retry is due (or -1 if none), and fills the
 * list of workers to start.
 */
static long
reconcile_slots(TimestampTz now, List **to_start, List **to_absent)
{
	long		next_retry_ms = -1;
	int			starting = 0;

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);

	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state == SLOT_STARTING ||
			(slot->state == SLOT_RUNNING && !slot->confirmed))
			starting++;
	}

	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state == SLOT_FREE)
			continue;

		/* a CREATE EXTENSION took this slot: the database is not absent */
		hash_search(absent_databases, &slot->dboid, HASH_REMOVE, NULL);

		/* a worker registered but never attached */
		if (slot->state == SLOT_STARTING)
		{
			bool		stopped = false;

			if (handles[i] != NULL && handle_generation[i] == slot->generation)
			{
				pid_t		pid;

				stopped = GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED;
			}
			else if (TimestampDifferenceExceeds(slot->started_at, now, STARTUP_TIMEOUT_MS))
				stopped = true;
			if (stopped)
			{
				slot->state = SLOT_EXITED;
				slot->exit_kind = WORKER_FAILED;
				strlcpy(slot->last_error, "worker exited before attaching to its slot",
						FLOWSTATE_TEXT_LEN);
				slot->last_error_at = now;
			}
		}

		if (slot->state == SLOT_EXITED)
		{
			switch (slot->exit_kind)
			{
				case WORKER_ABSENT:
					if (slot->recheck)
					{
						/* CREATE EXTENSION committed after the probe looked */
						slot->state = SLOT_WANTED;
						break;
					}
					*to_absent = lappend_oid(*to_absent, slot->dboid);
					SlotRelease(slot);
					continue;
				case WORKER_STOPPED:
					if (slot->stop_requested)
					{
						/* its database is gone or refuses connections */
						SlotRelease(slot);
						continue;
					}
					slot->state = SLOT_WANTED;	/* suspended: back later */
					break;
				case WORKER_FAILED:
					slot_failed(slot, now);
					break;
			}
		}

		/* a backend that suspended the database may have died meanwhile */
		if (slot->suspended_by != 0 && BackendPidGetProc(slot->suspended_by) == NULL)
			slot->suspended_by = 0;

		if (slot->state == SLOT_BACKOFF)
		{
			if (slot->retry_at <= now)
				slot->state = SLOT_WANTED;
			else
			{
				long		wait = TimestampDifferenceMilliseconds(now, slot->retry_at);

				if (next_retry_ms < 0 || wait < next_retry_ms)
					next_retry_ms = wait;
			}
		}

		if (slot->state == SLOT_WANTED && slot->suspended_by == 0 &&
			starting < MAX_CONCURRENT_STARTS)
		{
			StartRequest *req = palloc(sizeof(StartRequest));

			req->slotno = i;
			req->generation = slot->generation;
			req->kind = slot->kind;
			req->dboid = slot->dboid;
			req->relid = slot->relid;
			req->index = slot->index;
			*to_start = lappend(*to_start, req);

			slot->state = SLOT_STARTING;
			slot->started_at = now;
			starting++;
		}
	}

	LWLockRelease(Flowstate->lock);
	return next_retry_ms;
}

/*
 * Register one dynamic worker for a slot, notifying this launcher of its
 * state changes.  Returns false if the postmaster has no free worker slot.
 */
static bool
start_worker(StartRequest *req)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;
	MemoryContext oldcxt;
	bool		ok;

	static const struct
	{
		const char *function;
		const char *type;
	}			kinds[] = {
		[WORKER_MANAGER] = {"flowstate_manager_main", "flowstate manager"},
		[WORKER_DECODER] = {"flowstate_decoder_main", "flowstate decoder"},
		[WORKER_KAFKA] = {"flowstate_kafka_main", "flowstate kafka"},
	};

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(bgw.bgw_library_name, "flowstate", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, kinds[req->kind].function, BGW_MAXLEN);
	if (req->kind == WORKER_KAFKA)
		snprintf(bgw.bgw_name, BGW_MAXLEN, "%s %d of stream %u in database %u",
				 kinds[req->kind].type, req->index, req->relid, req->dboid);
	else
		snprintf(bgw.bgw_name, BGW_MAXLEN, "%s for database %u",
				 kinds[req->kind].type, req->dboid);
	strlcpy(bgw.bgw_type, kinds[req->kind].type, BGW_MAXLEN);
	bgw.bgw_main_arg = Int32GetDatum(req->slotno);
	memcpy(bgw.bgw_extra, &req->generation, sizeof(req->generation));
	bgw.bgw_notify_pid = MyProcPid;

	oldcxt = MemoryContextSwitchTo(LauncherContext);
	ok = RegisterDynamicBackgroundWorker(&bgw, &handle);
	MemoryContextSwitchTo(oldcxt);
	if (!ok)
		return false;

	if (handles[req->slotno] != NULL)
		pfree(handles[req->slotno]);
	handles[req->slotno] = handle;
	handle_generation[req->slotno] = req->generation;
	return true;
}

/*
 * Start what reconcile_slots asked for.  When the postmaster has no free
 * background worker slot (max_worker_processes, or slots of exited workers
 * not reaped yet), the slot goes back to WANTED and is retried shortly; a
 * shortage that lasts is reported.  Returns true if a retry is pending.
 */
static bool
start_workers(List *to_start, TimestampTz now)
{
	static TimestampTz short_since = 0;
	static TimestampTz last_warning = 0;
	ListCell   *lc;
	int			refused = 0;

	foreach(lc, to_start)
	{
		StartRequest *req = lfirst(lc);
		WorkerSlot *slot = &Flowstate->slots[req->slotno];

		if (start_worker(req))
			continue;

		refused++;
		LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
		if (slot->generation == req->generation && slot->state == SLOT_STARTING)
			slot->state = SLOT_WANTED;
		LWLockRelease(Flowstate->lock);
	}

	if (refused == 0)
	{
		short_since = 0;
		return false;
	}
	if (short_since == 0)
		short_since = now;
	if (TimestampDifferenceExceeds(short_since, now, SHORTAGE_WARNING_MS) &&
		TimestampDifferenceExceeds(last_warning, now, 60 * 1000))
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("flowstate could not start %d workers: no free background worker slot",
						refused),
				 errhint("Increase max_worker_processes.")));
		last_warning = now;
	}
	return true;
}

/*
 * flowstate_launcher_main is the entry point of the launcher background worker.
 */
void
flowstate_launcher_main(Datum main_arg)
{
	MemoryContext LoopContext;
	HASHCTL		hctl;
	TimestampTz next_scan = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LauncherContext = AllocSetContextCreate(TopMemoryContext,
											"flowstate launcher",
											ALLOCSET_DEFAULT_SIZES);
	LoopContext = AllocSetContextCreate(LauncherContext,
										"flowstate launcher loop",
										ALLOCSET_DEFAULT_SIZES);

	handles = MemoryContextAllocZero(LauncherContext,
									 sizeof(BackgroundWorkerHandle *) * Flowstate->nslots);
	handle_generation = MemoryContextAllocZero(LauncherContext,
											   sizeof(uint64) * Flowstate->nslots);
	hctl.keysize = sizeof(Oid);
	hctl.entrysize = sizeof(Oid);
	hctl.hcxt = LauncherContext;
	absent_databases = hash_create("flowstate absent databases", 64, &hctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	launcher_attach();
	ereport(LOG, (errmsg("flowstate launcher started")));

	for (;;)
	{
		TimestampTz now;
		List	   *to_start = NIL;
		List	   *to_absent = NIL;
		long		timeout;
		long		retry_ms;
		ListCell   *lc;

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextSwitchTo(LoopContext);
		pgstat_report_activity(STATE_RUNNING, "reconciling flowstate workers");

		now = GetCurrentTimestamp();
		if (now >= next_scan)
		{
			scan_databases();
			next_scan = TimestampTzPlusMilliseconds(now, flowstate_naptime);
		}

		Assert(CurrentMemoryContext == LoopContext);
		retry_ms = reconcile_slots(now, &to_start, &to_absent);
		foreach(lc, to_absent)
		{
			Oid			dboid = lfirst_oid(lc);

			hash_search(absent_databases, &dboid, HASH_ENTER, NULL);
		}
		if (start_workers(to_start, now) &&
			(retry_ms < 0 || retry_ms > REGISTER_RETRY_MS))
			retry_ms = REGISTER_RETRY_MS;

		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_scan);
		if (retry_ms >= 0 && retry_ms < timeout)
			timeout = retry_ms;

		pgstat_report_activity(STATE_IDLE, "waiting for work");
		MemoryContextSwitchTo(LauncherContext);
		MemoryContextReset(LoopContext);

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(timeout, 1),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * LauncherRequestManager asks for a manager in a database where CREATE
 * EXTENSION has just committed.  Runs in a commit callback: never throws.
 */
void
LauncherRequestManager(Oid dboid)
{
	WorkerSlot *slot;

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	slot = SlotFind(WORKER_MANAGER, dboid);
	if (slot == NULL)
		slot = SlotAllocate(WORKER_MANAGER, dboid);
	else if (slot->state == SLOT_BACKOFF)
		slot->retry_at = 0;
	else
	{
		/*
		 * A probe may be looking, or have just left finding no extension
		 * (EXITED, not yet seen by the launcher): it is to look again.
		 */
		slot->recheck = true;
	}
	LWLockRelease(Flowstate->lock);

	if (slot == NULL)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("flowstate has no free worker slot for a manager in this database"),
				 errhint("Increase flowstate.max_workers and restart the server.")));
	WakeLauncher();
}

/*
 * LauncherWakeManager sets the latch of a database's manager so that it
 * looks at its catalog now.  Runs in a commit callback: never throws.
 */
void
LauncherWakeManager(Oid dboid)
{
	WorkerSlot *slot;
	Latch	   *latch = NULL;

	LWLockAcquire(Flowstate->lock, LW_SHARED);
	slot = SlotFind(WORKER_MANAGER, dboid);
	if (slot != NULL)
		latch = slot->latch;
	LWLockRelease(Flowstate->lock);
	if (latch)
		SetLatch(latch);
}

/*
 * LauncherViewsChanged tells the decoding worker and the manager of a
 * database that its continuous views changed.  Runs in a commit callback:
 * never throws.
 */
void
LauncherViewsChanged(Oid dboid)
{
	WorkerSlot *slot;
	Latch	   *decoder = NULL;
	Latch	   *manager = NULL;

	Latch	   *kafka[FLOWSTATE_MAX_DB_WORKERS];
	int			nkafka = 0;

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	slot = SlotFind(WORKER_DECODER, dboid);
	if (slot != NULL)
	{
		slot->catalog_generation++;
		decoder = slot->latch;
	}
	slot = SlotFind(WORKER_MANAGER, dboid);
	if (slot != NULL)
		manager = slot->latch;
	for (int i = 0; i < Flowstate->nslots; i++)
	{
		slot = &Flowstate->slots[i];
		if (slot->state == SLOT_FREE || slot->kind != WORKER_KAFKA || slot->dboid != dboid)
			continue;
		slot->catalog_generation++;
		if (slot->latch && nkafka < FLOWSTATE_MAX_DB_WORKERS)
			kafka[nkafka++] = slot->latch;
	}
	LWLockRelease(Flowstate->lock);

	if (decoder)
		SetLatch(decoder);
	if (manager)
		SetLatch(manager);
	for (int i = 0; i < nkafka; i++)
		SetLatch(kafka[i]);
}

/*
 * LauncherStreamCaughtUp tells whether every worker of a Kafka stream has
 * seen, since since and since the owner last registered the views, every
 * message of its partitions applied; and wakes them, so that they look.
 */
bool
LauncherStreamCaughtUp(Oid dboid, Oid relid, TimestampTz since)
{
	Latch	   *latches[FLOWSTATE_MAX_DB_WORKERS];
	int			nlatches = 0;
	int			workers = 0;
	bool		caught_up = true;

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	/* a worker that looked before the owner (re)loaded the views is stale */
	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state != SLOT_FREE && slot->kind == WORKER_KAFKA &&
			slot->dboid == dboid && slot->relid == relid && slot->index == 0)
			since = Max(since, slot->views_registered_at);
	}
	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state == SLOT_FREE || slot->kind != WORKER_KAFKA ||
			slot->dboid != dboid || slot->relid != relid)
			continue;
		workers++;
		if (slot->catch_up_asked_at < since)
			slot->catch_up_asked_at = since;
		if (slot->state != SLOT_RUNNING || slot->caught_up_at <= since)
			caught_up = false;
		if (slot->latch && nlatches < FLOWSTATE_MAX_DB_WORKERS)
			latches[nlatches++] = slot->latch;
	}
	LWLockRelease(Flowstate->lock);

	for (int i = 0; i < nlatches; i++)
		SetLatch(latches[i]);
	return caught_up && workers > 0;
}

/*
 * LauncherDecoderLatch returns the latch of a database's running decoding
 * worker, or NULL.
 */
Latch *
LauncherDecoderLatch(Oid dboid)
{
	WorkerSlot *slot;
	Latch	   *latch = NULL;

	LWLockAcquire(Flowstate->lock, LW_SHARED);
	slot = SlotFind(WORKER_DECODER, dboid);
	if (slot != NULL && slot->state == SLOT_RUNNING)
		latch = slot->latch;
	LWLockRelease(Flowstate->lock);
	return latch;
}

/*
 * LauncherDecoderDurable returns the position up to which a database's
 * running decoding worker made its views and histories durable (invalid
 * if none runs), and asks it to flush up to lsn as soon as it has applied
 * it.
 */
XLogRecPtr
LauncherDecoderDurable(Oid dboid, XLogRecPtr lsn)
{
	WorkerSlot *slot;
	XLogRecPtr	durable = InvalidXLogRecPtr;

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	slot = SlotFind(WORKER_DECODER, dboid);
	if (slot != NULL && slot->state == SLOT_RUNNING)
	{
		durable = slot->durable_lsn;
		slot->flush_asked_lsn = Max(slot->flush_asked_lsn, lsn);
	}
	LWLockRelease(Flowstate->lock);
	return durable;
}

/*
 * LauncherSourcePaused tells whether the worker that feeds a view of a
 * database holds reading back for memory: the decoding worker for a view
 * over a table (stream invalid), any worker of its stream for a view over
 * a Kafka stream.
 */
bool
LauncherSourcePaused(Oid dboid, Oid stream)
{
	bool		paused = false;

	LWLockAcquire(Flowstate->lock, LW_SHARED);
	for (int i = 0; i < Flowstate->nslots && !paused; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state != SLOT_RUNNING || slot->dboid != dboid)
			continue;
		if (OidIsValid(stream) ? (slot->kind == WORKER_KAFKA && slot->relid == stream) :
			slot->kind == WORKER_DECODER)
			paused = slot->paused;
	}
	LWLockRelease(Flowstate->lock);
	return paused;
}

/*
 * At the commit of a transaction that wrote, wake the database's decoding
 * worker: it would otherwise notice the new WAL only at its next poll.  The
 * slot is looked up under the lock at most every naptime and then read
 * without it: a stale latch only causes a spurious wakeup.
 */
static void
wake_decoder_at_commit(XactEvent event, void *arg)
{
	static WorkerSlot *slot = NULL;
	static Oid	slot_db = InvalidOid;
	static TimestampTz looked_at = 0;
	Latch	   *latch;

	if (event != XACT_EVENT_COMMIT || !OidIsValid(MyDatabaseId) ||
		!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;
	if (slot == NULL || slot_db != MyDatabaseId || slot->kind != WORKER_DECODER ||
		slot->dboid != MyDatabaseId || slot->state != SLOT_RUNNING)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (slot_db == MyDatabaseId &&
			!TimestampDifferenceExceeds(looked_at, now, flowstate_naptime))
			return;
		looked_at = now;
		slot_db = MyDatabaseId;
		LWLockAcquire(Flowstate->lock, LW_SHARED);
		slot = SlotFind(WORKER_DECODER, MyDatabaseId);
		LWLockRelease(Flowstate->lock);
		if (slot == NULL)
			return;
	}
	latch = slot->latch;
	if (latch != NULL && latch != MyLatch)
		SetLatch(latch);
}

/*
 * LauncherWakeAtCommit makes each transaction that writes wake its
 * database's decoding worker when it commits.
 */
void
LauncherWakeAtCommit(void)
{
	RegisterXactCallback(wake_decoder_at_commit, NULL);
}

/*
 * LauncherSuspendDatabase keeps flowstate workers out of a database while
 * the calling backend runs DDL that needs it free of connections (DROP,
 * RENAME, use as a template, SET TABLESPACE).  It asks the database's
 * workers to leave and waits up to ten seconds for them to go.
 */
void
LauncherSuspendDatabase(Oid dboid)
{
	WorkerSlot *slot;
	Latch	   *latches[FLOWSTATE_MAX_DB_WORKERS];
	int			nlatches = 0;

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	slot = SlotFind(WORKER_MANAGER, dboid);
	if (slot == NULL)
		slot = SlotAllocate(WORKER_MANAGER, dboid); /* keeps probes away */
	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *s = &Flowstate->slots[i];

		if (s->state == SLOT_FREE || s->dboid != dboid)
			continue;
		s->suspended_by = MyProcPid;
		if (s->latch && nlatches < FLOWSTATE_MAX_DB_WORKERS)
			latches[nlatches++] = s->latch;
	}
	LWLockRelease(Flowstate->lock);

	for (int i = 0; i < nlatches; i++)
		SetLatch(latches[i]);

	for (int waited = 0; waited < 10000; waited += 10)
	{
		bool		busy = false;

		LWLockAcquire(Flowstate->lock, LW_SHARED);
		for (int i = 0; i < Flowstate->nslots; i++)
		{
			WorkerSlot *s = &Flowstate->slots[i];

			if (s->state != SLOT_FREE && s->dboid == dboid &&
				s->suspended_by == MyProcPid &&
				(s->state == SLOT_STARTING || s->state == SLOT_RUNNING))
				busy = true;
		}
		LWLockRelease(Flowstate->lock);
		if (!busy)
			break;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * LauncherResumeDatabase lifts the suspension; after a successful DROP
 * DATABASE it also frees the database's slot.  Called on the error path
 * too: takes no catalog access and never throws.
 */
void
LauncherResumeDatabase(Oid dboid, bool dropped)
{
	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];

		if (slot->state == SLOT_FREE || slot->dboid != dboid ||
			slot->suspended_by != MyProcPid)
			continue;
		slot->suspended_by = 0;
		if (dropped && slot->pid == 0 && slot->state != SLOT_STARTING)
			SlotRelease(slot);
	}
	LWLockRelease(Flowstate->lock);
	WakeLauncher();
}
