/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  A ProcessUtility hook that connects DDL to flowstate's workers.
 *
 *	- CREATE EXTENSION flowstate refuses to run without wal_level = logical,
 *	  and when it commits, the launcher is asked for a manager at once.
 *	- When DROP EXTENSION flowstate commits, the database's manager is woken
 *	  so that it notices and exits.
 *	- DROP DATABASE, ALTER DATABASE RENAME / SET TABLESPACE and CREATE
 *	  DATABASE ... TEMPLATE need the database free of other connections:
 *	  its flowstate workers are suspended while the statement runs.  DROP
 *	  DATABASE also drops the database's decoding slot and origin, which
 *	  would make it fail.
 *
 *	- ALTER TABLE may not take from the source of a continuous view what
 *	  decoding needs: REPLICA IDENTITY FULL (the whole old row of updates
 *	  and deletes) and WAL itself (SET UNLOGGED).
 *
 * Requests to the launcher are made from a commit callback, so that an
 * aborted CREATE EXTENSION starts nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "ddl.h"
#include "launcher.h"
#include "source_decoding.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* What this backend's transaction asks of the launcher at commit. */
static bool manager_requested = false;
static bool manager_wakeup = false;

static void
call_previous(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params,
			  QueryEnvironment *queryEnv, DestReceiver *dest,
			  QueryCompletion *qc)
{
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
							params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/* Refuse CREATE EXTENSION on a server that cannot decode its WAL. */
static void
check_prerequisites(void)
{
	if (wal_level < WAL_LEVEL_LOGICAL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("flowstate requires wal_level \"logical\""),
				 errdetail("The server is running with wal_level \"%s\".",
						   GetConfigOption("wal_level", false, false)),
				 errhint("Set wal_level = logical in postgresql.conf and restart the server.")));
}

static bool
names_flowstate(List *objects)
{
	ListCell   *lc;

	foreach(lc, objects)
	{
		if (strcmp(strVal(lfirst(lc)), "flowstate") == 0)
			return true;
	}
	return false;
}

/* Return the database a statement needs free of connections, if any. */
static Oid
database_to_suspend(Node *parsetree)
{
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			return get_database_oid(((DropdbStmt *) parsetree)->dbname, true);

		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;

				if (stmt->renameType == OBJECT_DATABASE)
					return get_database_oid(stmt->subname, true);
				return InvalidOid;
			}

		case T_CreatedbStmt:
			{
				CreatedbStmt *stmt = (CreatedbStmt *) parsetree;
				char	   *template = "template1";

				foreach(lc, stmt->options)
				{
					DefElem    *opt = lfirst(lc);

					if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
						template = defGetString(opt);
				}
				return get_database_oid(template, true);
			}

		case T_AlterDatabaseStmt:
			{
				AlterDatabaseStmt *stmt = (AlterDatabaseStmt *) parsetree;

				foreach(lc, stmt->options)
				{
					if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
						return get_database_oid(stmt->dbname, true);
				}
				return InvalidOid;
			}

		default:
			return InvalidOid;
	}
}

/* The continuous views over a table, as a list for a message, or NULL. */
static char *
views_over(Oid relid)
{
	Datum		arg = ObjectIdGetDatum(relid);
	Oid			type = OIDOID;
	char	   *views = NULL;

	if (!CatalogExtensionPresent())
		return NULL;
	SPI_connect();
	if (SPI_execute_with_args("SELECT string_agg(view::text, ', ' ORDER BY view_id)"
							  "  FROM flowstate.view WHERE source = $1",
							  1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	if (SPI_processed == 1)
	{
		char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (value != NULL)
			views = MemoryContextStrdup(CurTransactionContext, value);
	}
	SPI_finish();
	return views;
}

/* Refuse ALTER TABLE that would leave a continuous view unable to follow. */
static void
check_alter_source(AlterTableStmt *stmt)
{
	ListCell   *lc;
	Oid			relid = InvalidOid;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);
		bool		unlogged = cmd->subtype == AT_SetUnLogged;
		char	   *views;

		if (!unlogged &&
			!(cmd->subtype == AT_ReplicaIdentity &&
			  ((ReplicaIdentityStmt *) cmd->def)->identity_type != REPLICA_IDENTITY_FULL))
			continue;
		if (!OidIsValid(relid))
			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		if (!OidIsValid(relid) || (views = views_over(relid)) == NULL)
			return;
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 unlogged ?
				 errmsg("cannot make table \"%s\" unlogged", get_rel_name(relid)) :
				 errmsg("cannot change the replica identity of table \"%s\"", get_rel_name(relid)),
				 errdetail("Continuous views follow its changes through logical decoding, which needs REPLICA IDENTITY FULL and a logged table: %s.",
						   views),
				 errhint("Drop the continuous views first with flowstate.drop_view().")));
	}
}

static void
flowstate_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
						 bool readOnlyTree, ProcessUtilityContext context,
						 ParamListInfo params, QueryEnvironment *queryEnv,
						 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			suspended;

	if (IsA(parsetree, AlterTableStmt) &&
		((AlterTableStmt *) parsetree)->objtype == OBJECT_TABLE)
		check_alter_source((AlterTableStmt *) parsetree);

	if (IsA(parsetree, CreateExtensionStmt) &&
		strcmp(((CreateExtensionStmt *) parsetree)->extname, "flowstate") == 0)
	{
		check_prerequisites();
		call_previous(pstmt, queryString, readOnlyTree, context, params,
					  queryEnv, dest, qc);
		manager_requested = true;
		return;
	}

	if (IsA(parsetree, DropStmt) &&
		((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION &&
		names_flowstate(((DropStmt *) parsetree)->objects))
	{
		call_previous(pstmt, queryString, readOnlyTree, context, params,
					  queryEnv, dest, qc);
		manager_wakeup = true;
		return;
	}

	suspended = database_to_suspend(parsetree);
	if (!OidIsValid(suspended))
	{
		call_previous(pstmt, queryString, readOnlyTree, context, params,
					  queryEnv, dest, qc);
		return;
	}

	LauncherSuspendDatabase(suspended);
	PG_TRY();
	{
		/* a logical slot of the database would make DROP DATABASE fail */
		if (IsA(parsetree, DropdbStmt))
			DecoderDropSlot(suspended);
		call_previous(pstmt, queryString, readOnlyTree, context, params,
					  queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		LauncherResumeDatabase(suspended, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	LauncherResumeDatabase(suspended, IsA(parsetree, DropdbStmt));
}

static void
ddl_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (manager_requested)
				LauncherRequestManager(MyDatabaseId);
			if (manager_wakeup)
				LauncherWakeManager(MyDatabaseId);
			manager_requested = manager_wakeup = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			manager_requested = manager_wakeup = false;
			break;
		default:
			break;
	}
}

/*
 * DdlInit installs the utility hook and the commit callback.
 */
void
DdlInit(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = flowstate_ProcessUtility;
	RegisterXactCallback(ddl_xact_callback, NULL);
}
