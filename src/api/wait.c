/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  flowstate.wait_for(): waits until the continuous views and histories
 *	  of the database have applied what was committed before the call (and
 *	  a stream's views every message its partitions held then).
 *
 * A statement that waits holds a snapshot, and a backend's snapshot holds
 * back the server's xmin horizon: while it waits, no page is pruned of the
 * versions deleted since, and the workers' flushes, which update each
 * changed group's row, cannot reuse the room their previous flush left on
 * the page.  Their updates then stop being HOT and insert into every index
 * of the state table (several times the cost of a HOT update).
 *
 * So when the statement is the call alone, as a client writes it, nothing
 * reads with its snapshot after the call, and the wait withdraws the
 * backend's xmin (MyProc->xmin) while it sleeps, as PostgreSQL does for a
 * backend whose last snapshot is gone.  "Alone" is checked on the running
 * portal, conservatively:
 *	- READ COMMITTED (a transaction snapshot is read again by the next
 *	  statement);
 *	- the portal runs the client's statement (its text is the one the
 *	  client sent), not one inside a function, whose caller may go on
 *	  reading with its snapshot;
 *	- its plan is a Result without input whose one output column is this
 *	  very call (the function expression of the plan, by address): no
 *	  table, subquery or other function reads with the snapshot;
 *	- no cursor of the transaction is open (its snapshot is read by the
 *	  next FETCH) and no other snapshot lies under the statement's.
 * Otherwise the statement keeps its xmin as any other.  The groups the
 * snapshot would keep in shared memory are released in either case
 * (StoreWaitBegin): a view read later in the same statement errors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "api/api.h"
#include "engine/snapshot.h"
#include "fs_catalog/security.h"
#include "state/state_store.h"
#include "workers/launcher.h"

extern PGDLLEXPORT Datum flowstate_wait_for(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_wait_for);

/*
 * Whether the statement that called wait_for is that call alone (see the
 * banner): then the wait need not hold back the xmin horizon.
 */
static bool
wait_alone(FunctionCallInfo fcinfo)
{
	Portal		portal = ActivePortal;
	PlannedStmt *stmt;
	Result	   *result;
	TargetEntry *tle;

	if (IsolationUsesXactSnapshot() || portal == NULL || portal->queryDesc == NULL ||
		portal->strategy != PORTAL_ONE_SELECT || list_length(portal->stmts) != 1)
		return false;

	/* the client's statement, not one a function runs */
	if (portal->sourceText == NULL || debug_query_string == NULL ||
		strcmp(portal->sourceText, debug_query_string) != 0)
		return false;

	/* SELECT of this call, and nothing else */
	stmt = linitial_node(PlannedStmt, portal->stmts);
	if (stmt->commandType != CMD_SELECT || stmt->hasModifyingCTE ||
		stmt->subplans != NIL || !IsA(stmt->planTree, Result))
		return false;
	result = (Result *) stmt->planTree;
	if (result->plan.lefttree != NULL || result->plan.initPlan != NIL ||
		result->resconstantqual != NULL || list_length(result->plan.targetlist) != 1)
		return false;
	tle = linitial_node(TargetEntry, result->plan.targetlist);
	if (fcinfo->flinfo == NULL || (Node *) tle->expr != fcinfo->flinfo->fn_expr)
		return false;

	/* no cursor to read later, no snapshot under the statement's */
	InvalidateCatalogSnapshot();
	return ThereAreNoReadyPortals() && GetOldestSnapshot() == portal->queryDesc->snapshot;
}

/*
 * flowstate_wait_for waits until every continuous view and history of the
 * database shows all transactions committed up to lsn (default: now), and every
 * view over a Kafka stream all the messages its partitions held when the
 * stream's workers last looked, after the call.
 */
static bool wait_views(int n, Oid *relids, Oid *streams, XLogRecPtr lsn,
					   TimestampTz start, int64 timeout_ms, bool release);

Datum
flowstate_wait_for(PG_FUNCTION_ARGS)
{
	XLogRecPtr	insert;
	XLogRecPtr	lsn;
	volatile int64 timeout_ms = 30000;
	TimestampTz start = GetCurrentTimestamp();
	Oid		   *relids;
	Oid		   *streams;		/* the Kafka stream of a view, or invalid */
	int			n;
	int			nest;
	volatile bool reached = false;
	bool		release;

	ApiRefuseOnStandby("flowstate.wait_for()");
	insert = WalRecordEnd(GetXLogInsertRecPtr());
	lsn = PG_ARGISNULL(0) ? insert : WalRecordEnd(PG_GETARG_LSN(0));
	if (!PG_ARGISNULL(1))
	{
		Interval   *iv = PG_GETARG_INTERVAL_P(1);

		timeout_ms = (iv->month * DAYS_PER_MONTH * SECS_PER_DAY + iv->day * SECS_PER_DAY) * 1000 +
			iv->time / 1000;
		if (timeout_ms < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("timeout must not be negative"),
					 errhint("Pass an interval of zero or more.")));
	}

	/* the decoding worker reads flushed WAL only */
	XLogFlush(Min(lsn, insert));

	nest = SecurityRestrictSearchPath();
	SPI_connect();
	if (SPI_execute("SELECT state_table::oid, v.xmin, view::text,"
					"       CASE WHEN c.relkind = 'f' THEN v.source::oid ELSE 0 END"
					"  FROM flowstate.view v JOIN pg_catalog.pg_class c ON c.oid = v.source",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	n = SPI_processed;
	relids = MemoryContextAlloc(CurTransactionContext, sizeof(Oid) * Max(n, 1));
	streams = MemoryContextAlloc(CurTransactionContext, sizeof(Oid) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		relids[i] = DatumGetObjectId(SPI_getbinval(tuple, desc, 1, &isnull));
		streams[i] = DatumGetObjectId(SPI_getbinval(tuple, desc, 4, &isnull));
		/* its worker starts on it only once this transaction commits */
		if (TransactionIdIsCurrentTransactionId(DatumGetTransactionId(SPI_getbinval(tuple, desc,
																				 2, &isnull))))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("continuous view \"%s\" was created or changed in this transaction",
							SPI_getvalue(tuple, desc, 3)),
					 errhint("Commit the transaction first, then call flowstate.wait_for().")));
	}
	SPI_finish();
	SecurityRestoreSearchPath(nest);

	/*
	 * This statement's snapshot keeps no group in memory while it waits;
	 * the call alone holds back no pruning either.
	 */
	release = wait_alone(fcinfo);
	StoreWaitBegin();
	PG_TRY();
	{
		reached = wait_views(n, relids, streams, lsn, start, timeout_ms, release);
	}
	PG_FINALLY();
	{
		StoreWaitEnd();
	}
	PG_END_TRY();
	PG_RETURN_BOOL(reached);
}

/*
 * Wait until every view is running and has applied lsn (a stream's: every
 * message its workers saw since start), or the timeout passes.
 */
static bool
wait_views(int n, Oid *relids, Oid *streams, XLogRecPtr lsn, TimestampTz start,
		   int64 timeout_ms, bool release)
{
	bool		histories_read = false;

	for (;;)
	{
		bool		done = true;
		int			waiting = 0;	/* the view not caught up */
		Latch	   *decoder;

		for (int i = 0; i < n && done; i++)
		{
			StoreKey	key = {MyDatabaseId, relids[i]};
			SharedView *sv;
			bool		sides;

			waiting = i;
			sv = StoreFindView(key);

			if (sv == NULL)
			{
				done = false;
				break;
			}
			LWLockAcquire(&sv->lock, LW_SHARED);
			done = (sv->status == VIEW_RUNNING || sv->status == VIEW_FULL) &&
				(OidIsValid(streams[i]) || sv->applied_lsn >= lsn);
			/* a view whose state cannot be read is not waited for */
			if (sv->broken)
			{
				LWLockRelease(&sv->lock);
				StoreReleaseView(sv);
				done = true;
				continue;
			}
			/* and the dead letters and late events of those changes */
			sides = done && !OidIsValid(streams[i]) && sv->sides_lsn < lsn;
			LWLockRelease(&sv->lock);
			if (sides)
			{
				/* the decoder flushes them at once */
				LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
				sv->sides_wanted = true;
				LWLockRelease(&sv->lock);
				done = false;
			}
			StoreReleaseView(sv);
			/* a stream's: every message its workers saw since the call */
			if (done && OidIsValid(streams[i]))
				done = LauncherStreamCaughtUp(MyDatabaseId, streams[i], start);
		}
		/* and every history */
		if (done && ApiHistoriesPending(lsn, start))
			done = false;
		/* views over a history: then what its last flush wrote, too */
		if (done && !histories_read && ApiViewsReadHistories())
		{
			histories_read = true;
			lsn = WalRecordEnd(GetXLogInsertRecPtr());
			continue;
		}
		if (done)
			return true;
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), (int) Min(timeout_ms, INT_MAX)))
			return false;

		/*
		 * A source paused for memory waits for snapshots older than the
		 * views' flushes to end, this query's maybe: do not wait with it.
		 */
		if (LauncherSourcePaused(MyDatabaseId, n > 0 ? streams[waiting] : InvalidOid))
		{
			ereport(WARNING,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg(n > 0 && OidIsValid(streams[waiting]) ?
							"flowstate consumption of stream \"%s\" is paused for memory" :
							"flowstate decoding is paused for memory",
							n > 0 && OidIsValid(streams[waiting]) ? get_rel_name(streams[waiting]) : ""),
					 errdetail("Continuous views over their memory_limit keep flushed groups that older snapshots may still read; see flowstate.sources."),
					 errhint("End long-running transactions and call flowstate.wait_for() again, or increase flowstate.memory_limit.")));
			return false;
		}

		/*
		 * No xmin while asleep (a check above may have taken a snapshot,
		 * which set it again).
		 */
		if (release)
		{
			InvalidateCatalogSnapshot();
			MyProc->xmin = InvalidTransactionId;
		}

		decoder = LauncherDecoderLatch(MyDatabaseId);
		if (decoder)
			SetLatch(decoder);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 2, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
