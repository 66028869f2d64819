/*-------------------------------------------------------------------------
 *
 * security.c
 *	  The security model of continuous views: whatever a view evaluates
 *	  runs as its owner, and what it shows needs its owner's rights on its
 *	  source at the time it is read.
 *
 * Evaluation (SecurityEnter/SecurityLeave).  The workers run as the
 * bootstrap superuser; every expression of a view (WHERE, group keys,
 * aggregate arguments, FILTER, event time: when compiled, decoded,
 * backfilled, recomputed or converted from a message) runs as the view's
 * owner, under SECURITY_RESTRICTED_OPERATION as REFRESH MATERIALIZED VIEW
 * does, read-only, and in parallel mode.  Parallel mode is what makes a
 * view harmless to the others: it refuses to assign a transaction id, which
 * the reorder buffer forbids to output plugins (a view that did would stop
 * the decoding of the whole database), and with it every write, sequence
 * change and subtransaction.  Any such attempt is an error of the row being
 * evaluated: a dead letter, never the worker's.  It also runs in the view's
 * time zone, that of the session that created it (flowstate.view.time_zone),
 * so that date_trunc of a timestamptz and its kin give what the batch query
 * gives in that zone.
 *
 * A row's evaluation is also bounded in time (SecurityTimerStart/Stop,
 * flowstate.evaluation_timeout), as statement_timeout bounds a query: one
 * periodic timer per worker, whose handler cancels an evaluation still
 * running after four ticks of a quarter of the limit.  Rows are counted,
 * not timed, so a row costs no clock reading.
 *
 * Reading (SecurityMayRead).  A continuous view's state is served only
 * while its owner may still read what its defining query reads: SELECT on
 * the source (or on each column the query uses), and no row-level
 * security that applies to the owner.  The check runs where state leaves
 * flowstate: flowstate.unflushed() and the policy of every state table
 * (flowstate.check_view_rights), so a REVOKE takes effect on the next read
 * of the view, of its state table and of its definition (which its owner
 * owns, so that PostgreSQL checks it the same way).
 *
 * Side rows (flowstate.side_row_visible).  A dead letter or late event
 * shows source values; a role sees it only if it could read them from the
 * source itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

#include "guc.h"
#include "query/query.h"
#include "fs_catalog/security.h"

/* The worker's own time zone, from the server's settings (SecurityWorkerInit). */
static pg_tz *worker_zone = NULL;

extern PGDLLEXPORT Datum flowstate_check_view_rights(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_check_view_rights);
extern PGDLLEXPORT Datum flowstate_side_row_visible(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_side_row_visible);

/*
 * SecurityWorkerInit prepares a source worker: the queries a view's
 * functions run are planned without parallel workers, as they run in
 * parallel mode already; names resolve in pg_catalog, as PostgreSQL's own
 * maintenance commands do from version 17 on.
 */
void
SecurityWorkerInit(void)
{
	worker_zone = session_timezone;
	SetConfigOption("max_parallel_workers_per_gather", "0", PGC_SUSET, PGC_S_OVERRIDE);
	/* as a SET: a function's own SET search_path still applies */
	SetConfigOption("search_path", SECURITY_SEARCH_PATH, PGC_SUSET, PGC_S_SESSION);
}

/*
 * SecurityRestrictSearchPath makes names resolve in pg_catalog (then
 * pg_temp) until SecurityRestoreSearchPath, so that flowstate's own
 * statements (run as the bootstrap superuser, or as a role that did not
 * write them) cannot be diverted to an operator or function of a schema a
 * user controls.  An error restores it by itself.
 */
int
SecurityRestrictSearchPath(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", SECURITY_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
SecurityRestoreSearchPath(int nest)
{
	AtEOXact_GUC(true, nest);
}

/*
 * SecurityEnter makes what follows run as owner, restricted, read-only and
 * in parallel mode, in time zone zone (NULL: the worker's own, that of the
 * server's settings); SecurityLeave undoes it.  They nest.  After an error
 * caught without rolling back a subtransaction, SecurityAfterError undoes
 * it instead; a subtransaction's rollback restores all of it by itself but
 * the time zone, which SecurityRestoreZone restores.  The time zone is not
 * a GUC change: the evaluation of a view sees its own zone as TimeZone,
 * and nothing is left to undo at the end of a transaction.
 */
void
SecurityEnter(Oid owner, pg_tz *zone, SecuritySave *save)
{
	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	save->read_only = XactReadOnly;
	save->parallel = IsInParallelMode();
	save->zone = session_timezone;
	if (zone != NULL)
		session_timezone = zone;
	else if (worker_zone != NULL)
		session_timezone = worker_zone;
	SetUserIdAndSecContext(owner, save->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	XactReadOnly = true;
	/* parallel mode refuses a transaction's first snapshot: take it before */
	if (!FirstSnapshotSet && IsTransactionState() && !HistoricSnapshotActive())
		(void) GetTransactionSnapshot();
	EnterParallelMode();
}

void
SecurityLeave(const SecuritySave *save)
{
	ExitParallelMode();
	XactReadOnly = save->read_only;
	SetUserIdAndSecContext(save->userid, save->sec_context);
	session_timezone = save->zone;
}

void
SecurityAfterError(const SecuritySave *save)
{
	/* an executor the error interrupted may have entered it too */
	while (IsInParallelMode())
		ExitParallelMode();
	if (save->parallel)
		EnterParallelMode();
	XactReadOnly = save->read_only;
	SetUserIdAndSecContext(save->userid, save->sec_context);
	session_timezone = save->zone;
}

void
SecurityRestoreZone(const SecuritySave *save)
{
	session_timezone = save->zone;
}

/* The evaluation timer: what the main line tells the handler. */
static volatile sig_atomic_t evaluating = false;
static volatile sig_atomic_t evaluation_seq = 0;
static volatile sig_atomic_t evaluation_timed_out = false;

/* The handler's own memory, and the timer's. */
static sig_atomic_t seen_seq = 0;
static int	seen_ticks = 0;
static bool timer_registered = false;
static TimeoutId timer_id;
static int	timer_limit = 0;	/* the limit the timer ticks for, 0: off */

#define TICKS_PER_LIMIT 4

static void
evaluation_timer(void)
{
	if (!evaluating || evaluation_seq != seen_seq)
	{
		seen_seq = evaluation_seq;
		seen_ticks = 0;
		return;
	}
	if (++seen_ticks >= TICKS_PER_LIMIT)
	{
		evaluation_timed_out = true;
		QueryCancelPending = true;
		InterruptPending = true;
		SetLatch(MyLatch);
	}
}

/*
 * SecurityTimerStart starts timing the evaluation of a row;
 * SecurityTimerStop ends it, and tells whether it ran out of time (the
 * error it then raised is the timeout's).  The timer follows changes of
 * flowstate.evaluation_timeout.
 */
void
SecurityTimerStart(void)
{
	if (flowstate_evaluation_timeout != timer_limit)
	{
		int			tick = Max(flowstate_evaluation_timeout / TICKS_PER_LIMIT, 1);

		if (!timer_registered)
		{
			timer_id = RegisterTimeout(USER_TIMEOUT, evaluation_timer);
			timer_registered = true;
		}
		if (timer_limit > 0)
			disable_timeout(timer_id, false);
		timer_limit = flowstate_evaluation_timeout;
		if (timer_limit > 0)
			enable_timeout_every(timer_id, TimestampTzPlusMilliseconds(GetCurrentTimestamp(), tick),
								 tick);
	}
	evaluation_seq = (evaluation_seq + 1) & 0x3fffffff;
	evaluating = true;
}

bool
SecurityTimerStop(void)
{
	evaluating = false;
	if (!evaluation_timed_out)
		return false;
	/* the cancel is the timer's: it must not reach the worker's own work */
	evaluation_timed_out = false;
	QueryCancelPending = false;
	return true;
}

/* The query of a view's definition with its rights checked as userid. */
static bool
check_rights(Oid def_relid, Oid userid)
{
	Query	   *query = QueryOfDefinition(def_relid);
	ListCell   *lc;

	if (query == NULL)
		return false;
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION && rte->requiredPerms != 0)
		{
			rte->checkAsUser = userid;
			if (check_enable_rls(rte->relid, userid, true) == RLS_ENABLED)
				return false;
		}
	}
	return ExecCheckRTPerms(query->rtable, false);
}

/*
 * SecurityMayRead tells whether userid may read what a view's defining
 * query (its definition) reads: SELECT on the source or the columns it
 * uses, and no row-level security applying to userid.  With view_name, a
 * role that may not gets an error that says which view and why.
 */
bool
SecurityMayRead(Oid def_relid, Oid userid, const char *view_name)
{
	if (check_rights(def_relid, userid))
		return true;
	if (view_name != NULL)
	{
		const char *role = GetUserNameFromId(userid, true);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for continuous view %s", view_name),
				 errdetail("Its owner, role \"%s\", can no longer read its source: SELECT on the table or on a column the view uses is missing, or row-level security applies to the owner.",
						   role ? role : "?"),
				 errhint("Grant the owner SELECT on the source again, or drop the view with flowstate.drop_view().")));
	}
	return false;
}

/*
 * SecurityCheckRowSecurity refuses a view over a source whose row-level
 * security applies to the view's owner: the view would aggregate every
 * row, where the owner's batch query sees only some.
 */
void
SecurityCheckRowSecurity(Oid source_relid, Oid owner, const char *view_name)
{
	if (check_enable_rls(source_relid, owner, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("row-level security of table \"%s\" applies to the owner of continuous view %s",
						get_rel_name(source_relid), view_name),
				 errdetail("A continuous view aggregates every row of its source, where its owner's query would see only the rows the policies allow."),
				 errhint("Create the view as a role that bypasses the table's row-level security (its owner, without FORCE ROW LEVEL SECURITY, or a role with BYPASSRLS).")));
}

/* SecurityRelationOwner returns the owner of a relation, or invalid if it is gone. */
Oid
SecurityRelationOwner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * SecurityCheckViewRights returns true while the owner of continuous view
 * view_relid may read what its definition reads, and raises the error of
 * SecurityMayRead otherwise; false for relations that are no such pair.
 */
bool
SecurityCheckViewRights(Oid view_relid, Oid def_relid)
{
	Oid			owner = SecurityRelationOwner(view_relid);

	if (!OidIsValid(owner) || get_rel_relkind(def_relid) != RELKIND_VIEW)
		return false;
	return SecurityMayRead(def_relid, owner,
						   quote_qualified_identifier(get_namespace_name(get_rel_namespace(view_relid)),
													  get_rel_name(view_relid)));
}

/*
 * flowstate_check_view_rights(view, definition) is the policy of a state
 * table (SecurityCheckViewRights).
 */
Datum
flowstate_check_view_rights(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(SecurityCheckViewRights(PG_GETARG_OID(0), PG_GETARG_OID(1)));
}

/* What side_row_visible found for one view in one query. */
typedef struct VisibleCache
{
	Oid			view_relid;
	bool		visible;
	struct VisibleCache *next;
} VisibleCache;

/* Whether the current user may read the source columns of a view. */
static bool
view_visible(Oid view_relid)
{
	Oid			type = OIDOID;
	Datum		arg = ObjectIdGetDatum(view_relid);
	Oid			def_relid = InvalidOid;

	int			nest = SecurityRestrictSearchPath();

	SPI_connect();
	if (SPI_execute_with_args("SELECT definition FROM flowstate.view WHERE view = $1",
							  1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	if (SPI_processed > 0)
	{
		bool		isnull;

		def_relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	SecurityRestoreSearchPath(nest);
	return OidIsValid(def_relid) && SecurityMayRead(def_relid, GetUserId(), NULL);
}

/*
 * flowstate_side_row_visible(source, view) is the policy of the dead
 * letters and late events: a row of a view is visible to the roles that
 * may read the source columns the view uses; one of a source alone (a
 * message that could not be decoded), to the roles that may read the whole
 * source.  Row-level security of the source that applies to the role hides
 * both.
 */
Datum
flowstate_side_row_visible(PG_FUNCTION_ARGS)
{
	Oid			source = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	Oid			view = PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1);
	VisibleCache *cache;

	if (OidIsValid(view))
	{
		for (cache = fcinfo->flinfo->fn_extra; cache; cache = cache->next)
			if (cache->view_relid == view)
				PG_RETURN_BOOL(cache->visible);
		cache = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(VisibleCache));
		cache->view_relid = view;
		cache->visible = view_visible(view);
		cache->next = fcinfo->flinfo->fn_extra;
		fcinfo->flinfo->fn_extra = cache;
		PG_RETURN_BOOL(cache->visible);
	}
	if (!OidIsValid(source) || !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(source)))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(pg_class_aclcheck(source, GetUserId(), ACL_SELECT) == ACLCHECK_OK &&
				   check_enable_rls(source, InvalidOid, true) != RLS_ENABLED);
}
