/*-------------------------------------------------------------------------
 *
 * manager.c
 *	  The per-database manager: a dynamic background worker the launcher
 *	  keeps running in each database where flowstate is installed.
 *
 * Each iteration runs one short transaction: it confirms that the extension
 * is still installed (under a share lock on the extension, so a concurrent
 * DROP EXTENSION either finishes first or waits), reads the catalog of
 * views and histories, and publishes a summary in its slot and in
 * pg_stat_activity.  No transaction stays open while it sleeps.  It keeps
 * the database's source workers running exactly as the views need them:
 * the decoder while views over tables exist, and for each Kafka stream
 * with views as many workers as its foreign table's workers option says.
 *
 * A manager started as a probe in a database without the extension exits
 * at once with WORKER_ABSENT, as does one that finds the extension dropped.
 * A manager asked to leave (its database is being dropped, renamed or
 * copied) exits with WORKER_STOPPED.  Any error is fatal in a background
 * worker: the launcher counts it and restarts the manager with backoff.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/origin.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "guc.h"
#include "workers/manager.h"
#include "fs_catalog/security.h"
#include "workers/registry.h"

/* What one look at the catalog found. */
typedef struct CatalogSummary
{
	int64		views;			/* over tables */
	int64		streams;		/* Kafka streams with views or histories */
	int64		histories;
	Oid		   *stream_relids;
	int		   *stream_workers;
} CatalogSummary;

static int64
spi_int8(int column)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								  column, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * Look at the catalog in one short transaction.  Returns false if the
 * extension is not installed in this database.
 */
static bool
read_catalog(CatalogSummary *summary)
{
	Oid			extoid;
	bool		present = false;
	MemoryContext caller = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();

	extoid = get_extension_oid("flowstate", true);
	if (OidIsValid(extoid))
	{
		/* DROP EXTENSION takes this object lock exclusively */
		LockDatabaseObject(ExtensionRelationId, extoid, 0, AccessShareLock);
		present = get_extension_oid("flowstate", true) == extoid;
	}

	if (present)
	{
		int			ret;

		PushActiveSnapshot(GetTransactionSnapshot());
		SPI_connect();
		ret = SPI_execute("SELECT (SELECT count(*) FROM flowstate.view v"
						  "          JOIN pg_catalog.pg_class c ON c.oid = v.source"
						  "         WHERE c.relkind <> 'f'),"
						  " (SELECT count(*) FROM flowstate.history h"
						  "          JOIN pg_catalog.pg_class c ON c.oid = h.source"
						  "         WHERE c.relkind = 'r')",
						  true, 1);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "flowstate catalog query returned %d", ret);
		summary->views = spi_int8(1);
		summary->histories = spi_int8(2);

		/*
		 * Kafka streams with views or histories (kept or not: a catalog
		 * before 0.9.0 has no status), and the workers each asks for
		 */
		ret = SPI_execute("SELECT DISTINCT s.source::oid,"
						  "       coalesce((SELECT option_value::int"
						  "                   FROM pg_catalog.pg_options_to_table(ft.ftoptions)"
						  "                  WHERE option_name = 'workers'), 1)"
						  "  FROM (SELECT v.source FROM flowstate.view v"
						  "        UNION"
						  "        SELECT h.source FROM flowstate.history h"
						  "         WHERE pg_catalog.to_jsonb(h) ->> 'status' IS DISTINCT FROM 'failed') s"
						  "  JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = s.source",
						  true, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "flowstate stream query returned %d", ret);
		summary->streams = SPI_processed;
		/* in the caller's (loop) context, not SPI's */
		summary->stream_relids = MemoryContextAlloc(caller, sizeof(Oid) * Max(SPI_processed, 1));
		summary->stream_workers = MemoryContextAlloc(caller, sizeof(int) * Max(SPI_processed, 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			summary->stream_relids[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																	   SPI_tuptable->tupdesc,
																	   1, &isnull));
			summary->stream_workers[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
																	 SPI_tuptable->tupdesc,
																	 2, &isnull));
		}
		SPI_finish();
		PopActiveSnapshot();
	}

	CommitTransactionCommand();
	return present;
}

/*
 * Keep a decoding worker for this database exactly while it has continuous
 * views.  Returns true if none is registered (so none holds the slot).
 */
static bool
want_decoder(bool wanted)
{
	WorkerSlot *slot;
	Latch	   *latch = NULL;
	bool		changed = false;
	bool		none;

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	slot = SlotFind(WORKER_DECODER, MyDatabaseId);
	if (wanted && slot == NULL)
		changed = SlotAllocate(WORKER_DECODER, MyDatabaseId) != NULL;
	else if (!wanted && slot != NULL && !slot->stop_requested)
	{
		slot->stop_requested = true;
		latch = slot->latch;
		changed = true;
	}
	none = SlotFind(WORKER_DECODER, MyDatabaseId) == NULL;
	LWLockRelease(Flowstate->lock);

	if (latch)
		SetLatch(latch);
	if (changed)
		WakeLauncher();
	return none;
}

/*
 * Keep the workers of each Kafka stream with views: worker i of a stream
 * with n workers consumes the partitions p with p % n == i.  Workers of
 * streams without views, or beyond their stream's count, are stopped.
 */
static void
want_streams(const CatalogSummary *summary)
{
	Latch	   *latches[64];
	int			nlatches = 0;
	bool		changed = false;

	LWLockAcquire(Flowstate->lock, LW_EXCLUSIVE);
	for (int s = 0; s < summary->streams; s++)
	{
		for (int i = 0; i < summary->stream_workers[s]; i++)
		{
			WorkerSlot *slot;

			if (SlotFindStream(MyDatabaseId, summary->stream_relids[s], i) != NULL)
				continue;
			slot = SlotAllocate(WORKER_KAFKA, MyDatabaseId);
			if (slot == NULL)
				break;			/* the launcher warns of the shortage */
			slot->relid = summary->stream_relids[s];
			slot->index = i;
			changed = true;
		}
	}
	for (int i = 0; i < Flowstate->nslots; i++)
	{
		WorkerSlot *slot = &Flowstate->slots[i];
		bool		wanted = false;

		if (slot->state == SLOT_FREE || slot->kind != WORKER_KAFKA ||
			slot->dboid != MyDatabaseId || slot->stop_requested)
			continue;
		for (int s = 0; s < summary->streams; s++)
			if (slot->relid == summary->stream_relids[s])
				wanted = slot->index < summary->stream_workers[s];
		if (wanted)
			continue;
		slot->stop_requested = true;
		if (slot->latch && nlatches < lengthof(latches))
			latches[nlatches++] = slot->latch;
		changed = true;
	}
	LWLockRelease(Flowstate->lock);

	for (int i = 0; i < nlatches; i++)
		SetLatch(latches[i]);
	if (changed)
		WakeLauncher();
}

/*
 * Drop the decoding slot of a database left without continuous views, so
 * that it holds back no WAL.  The decoding worker does so when it leaves;
 * this covers a worker that failed or never ran.  Seen twice in a row, so
 * that a view being created meanwhile wins.
 */
static void
drop_unused_slot(bool unused)
{
	static int	seen = 0;
	char		name[NAMEDATALEN];

	ManagerDecoderSlotName(MyDatabaseId, name);
	if (!unused || SearchNamedReplicationSlot(name, true) == NULL)
	{
		seen = 0;
		return;
	}
	if (++seen < 2)
		return;
	seen = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	ManagerDropDecoderSlot(MyDatabaseId);
	CommitTransactionCommand();
}

static void
leave(WorkerExit how)
{
	bool		decoder;

	LWLockAcquire(Flowstate->lock, LW_SHARED);
	decoder = SlotFind(WORKER_DECODER, MyDatabaseId) != NULL;
	LWLockRelease(Flowstate->lock);

	/* without the extension, no decoding slot may hold back WAL */
	if (how == WORKER_ABSENT && !decoder)
	{
		StartTransactionCommand();
		ManagerDropDecoderSlot(MyDatabaseId);
		CommitTransactionCommand();
	}
	SlotDeclareExit(how);
	proc_exit(0);
}

/*
 * Run the manager's loop until it leaves: one look at the catalog per
 * naptime, or sooner when its latch is set.
 */
static void
manager_loop(MemoryContext ManagerContext, MemoryContext LoopContext)
{
	bool		confirmed = false;

	for (;;)
	{
		CatalogSummary summary = {0};
		char		activity[FLOWSTATE_TEXT_LEN];

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (SlotStopRequested())
			leave(WORKER_STOPPED);

		MemoryContextSwitchTo(LoopContext);

		if (!read_catalog(&summary))
		{
			if (confirmed)
				ereport(LOG,
						(errmsg("flowstate manager exiting: the extension was dropped")));
			leave(WORKER_ABSENT);
		}
		MemoryContextSwitchTo(LoopContext);

		if (!confirmed)
		{
			SlotSetConfirmed();
			confirmed = true;
		}

		drop_unused_slot(want_decoder(summary.views + summary.histories > 0) &&
						 summary.views + summary.histories == 0);
		want_streams(&summary);

		snprintf(activity, sizeof(activity),
				 "managing " INT64_FORMAT " views, " INT64_FORMAT " streams, "
				 INT64_FORMAT " histories",
				 summary.views, summary.streams, summary.histories);
		SlotSetActivity(activity);
		pgstat_report_activity(STATE_IDLE, activity);

		Assert(CurrentMemoryContext == LoopContext);
		MemoryContextSwitchTo(ManagerContext);
		MemoryContextReset(LoopContext);

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 flowstate_naptime,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * flowstate_manager_main is the entry point of a manager background worker.  Its
 * argument is the slot number; bgw_extra holds the slot's generation.
 */
void
flowstate_manager_main(Datum main_arg)
{
	uint64		generation;
	WorkerSlot *slot;
	MemoryContext ManagerContext;
	MemoryContext LoopContext;

	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(generation));

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	slot = SlotAttach(DatumGetInt32(main_arg), generation);
	if (SlotStopRequested())
		leave(WORKER_STOPPED);

	BackgroundWorkerInitializeConnectionByOid(slot->dboid, InvalidOid, 0);
	SecurityWorkerInit();

	ManagerContext = AllocSetContextCreate(TopMemoryContext,
										   "flowstate manager",
										   ALLOCSET_DEFAULT_SIZES);
	LoopContext = AllocSetContextCreate(ManagerContext,
										"flowstate manager loop",
										ALLOCSET_DEFAULT_SIZES);

	PG_TRY();
	{
		manager_loop(ManagerContext, LoopContext);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* keep the message for flowstate.workers, then die of it */
		MemoryContextSwitchTo(ManagerContext);
		edata = CopyErrorData();
		SlotNoteError(edata->message);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * ManagerDecoderSlotName writes the name of the replication slot (and
 * replication origin) of a database's decoding worker.
 */
void
ManagerDecoderSlotName(Oid dboid, char *name)
{
	snprintf(name, NAMEDATALEN, "flowstate_%u", dboid);
}

/*
 * ManagerDropDecoderSlot drops the replication slot and origin of a
 * database's decoding worker, if they exist; the worker must have stopped.
 * Runs in a transaction.
 */
void
ManagerDropDecoderSlot(Oid dboid)
{
	char		name[NAMEDATALEN];

	ManagerDecoderSlotName(dboid, name);
	if (SearchNamedReplicationSlot(name, true) != NULL)
	{
		ReplicationSlotDrop(name, true);
		ereport(LOG,
				(errmsg("flowstate dropped replication slot \"%s\"", name)));
	}
	replorigin_drop_by_name(name, true, false);
}
