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
 *	  and deletes) and WAL itself (SET UNLOGGED), from the source itself or
 *	  from a partition below it; nor may a table become an inheritance child
 *	  (CREATE TABLE ... INHERITS, ALTER TABLE ... INHERIT) of a source that
 *	  views read with its children.  A table that views over other tables
 *	  join keeps user_catalog_table and REPLICA IDENTITY FULL.
 *	- ALTER FOREIGN TABLE may not give a stream with histories more than
 *	  one worker.
 *	- Partitions below a source: a table attached must be one whose changes
 *	  the decoder can follow; a partition created there gets REPLICA
 *	  IDENTITY FULL; ATTACH and DETACH PARTITION tell the decoder that the
 *	  partitioned tables' rows changed (partition.c).
 *	- A continuous view may not be replaced (CREATE OR REPLACE VIEW), and
 *	  its internal objects (definition, state table) neither replaced,
 *	  altered, renamed nor moved: each would detach the view from its state
 *	  silently.  The view itself may be renamed, moved and given away; its
 *	  definition and the right to read its state table follow its owner.
 *
 * Requests to the launcher are made from a commit callback, so that an
 * aborted CREATE EXTENSION starts nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/tablecmds.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication/message.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "fs_catalog/catalog.h"
#include "api/ddl.h"
#include "workers/launcher.h"
#include "fs_catalog/partition.h"
#include "query/query.h"
#include "fs_catalog/security.h"
#include "workers/manager.h"

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

/* Whether a definition reads its source with the source's children. */
static bool
reads_children(Oid def_relid, Oid source)
{
	Query	   *query = QueryOfDefinition(def_relid);
	ListCell   *lc;

	if (query == NULL)
		return false;
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION && rte->relid == source && rte->inh)
			return true;
	}
	return false;
}

/*
 * The views query finds for relid ($1; each row its name and its
 * definition's oid), only those that read relid with its inheritance
 * children if children, as a list for a message, or NULL.
 */
static char *
list_views(const char *query, Oid relid, bool children)
{
	Datum		arg = ObjectIdGetDatum(relid);
	Oid			type = OIDOID;
	StringInfoData views;
	int			nest;

	if (!CatalogExtensionPresent())
		return NULL;
	initStringInfo(&views);
	nest = SecurityRestrictSearchPath();
	SPI_connect();
	if (SPI_execute_with_args(query, 1, &type, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			def_relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 2, &isnull));

		if (children && !reads_children(def_relid, relid))
			continue;
		appendStringInfo(&views, "%s%s", views.len > 0 ? ", " : "",
						 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	}
	SPI_finish();
	SecurityRestoreSearchPath(nest);
	return views.len > 0 ? MemoryContextStrdup(CurTransactionContext, views.data) : NULL;
}

/*
 * The continuous views over a table (those that read it with its
 * inheritance children only, with children), as a list for a message, or
 * NULL.
 */
static char *
views_over(Oid relid, bool children)
{
	return list_views("SELECT view::text, definition::oid FROM flowstate.view"
					  " WHERE source = $1 ORDER BY view_id", relid, children);
}

/*
 * The continuous views over tables that join relid (their definitions
 * depend on it), as a list for a message, or NULL.  Views over a stream
 * read a table they join as it is, and need nothing of it.
 */
static char *
views_joining(Oid relid)
{
	return list_views("SELECT v.view::text, v.definition::oid FROM flowstate.view v"
					  "  JOIN pg_catalog.pg_class s ON s.oid = v.source AND s.relkind = 'r'"
					  " WHERE v.source <> $1 AND " CATALOG_VIEW_READS_SQL("v", "$1")
					  " ORDER BY v.view_id", relid, false);
}

/*
 * After REINDEX, CLUSTER or VACUUM FULL of relid (InvalidOid: of every
 * table): when views over other tables join a table whose indexes were
 * built again, a message in the transaction tells the decoder to rebuild
 * them.  The decoder reads a joined table through its index as of each
 * commit it decodes, and the index of then is gone (its file emptied),
 * while the new one has no entries for the rows deleted before it was
 * built; what it read from them, from the statement's start to its end,
 * is not to be trusted, and the rebuild, once everything before the
 * message is decoded, starts the views over from both tables.
 */
static void
note_indexes_rebuilt(Oid relid)
{
	Datum		arg = ObjectIdGetDatum(relid);
	Oid			type = OIDOID;
	Oid		   *oids;
	uint64		n;
	int			nest;

	if (!XLogLogicalInfoActive() || !CatalogExtensionPresent())
		return;
	nest = SecurityRestrictSearchPath();
	SPI_connect();
	if (SPI_execute_with_args("SELECT c.oid FROM pg_catalog.pg_class c"
							  " WHERE c.relkind = 'r' AND (c.oid = $1 OR $1 = 0)"
							  "   AND EXISTS (SELECT 1 FROM flowstate.view v"
							  "                 JOIN pg_catalog.pg_class s ON s.oid = v.source AND s.relkind = 'r'"
							  "                WHERE v.source <> c.oid AND " CATALOG_VIEW_READS_SQL("v", "c.oid") ")",
							  1, &type, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	n = SPI_processed;
	oids = palloc(sizeof(Oid) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		oids[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1,
												 &isnull));
	}
	SPI_finish();
	SecurityRestoreSearchPath(nest);
	if (n > 0)
		(void) LogLogicalMessage(DIMENSION_MESSAGE_PREFIX, (char *) oids, sizeof(Oid) * n, true);
}

/* The tables whose indexes a REINDEX, CLUSTER or VACUUM FULL built again. */
static void
note_rebuilt_by(Node *parsetree)
{
	ListCell   *lc;

	if (IsA(parsetree, ReindexStmt))
	{
		ReindexStmt *stmt = (ReindexStmt *) parsetree;
		Oid			relid;

		if (stmt->kind == REINDEX_OBJECT_INDEX || stmt->kind == REINDEX_OBJECT_TABLE)
		{
			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
			if (OidIsValid(relid) && stmt->kind == REINDEX_OBJECT_INDEX)
				relid = IndexGetRelation(relid, true);
			if (OidIsValid(relid))
				note_indexes_rebuilt(relid);
		}
		else
			note_indexes_rebuilt(InvalidOid);
	}
	else if (IsA(parsetree, ClusterStmt))
	{
		ClusterStmt *stmt = (ClusterStmt *) parsetree;

		note_indexes_rebuilt(stmt->relation == NULL ? InvalidOid :
							 RangeVarGetRelid(stmt->relation, NoLock, true));
	}
	else if (IsA(parsetree, VacuumStmt) && ((VacuumStmt *) parsetree)->is_vacuumcmd)
	{
		VacuumStmt *stmt = (VacuumStmt *) parsetree;
		bool		full = false;

		foreach(lc, stmt->options)
		{
			DefElem    *opt = lfirst(lc);

			if (strcmp(opt->defname, "full") == 0)
				full = defGetBoolean(opt);
		}
		if (!full)
			return;
		if (stmt->rels == NIL)
			note_indexes_rebuilt(InvalidOid);
		foreach(lc, stmt->rels)
		{
			VacuumRelation *rel = lfirst(lc);
			Oid			relid = OidIsValid(rel->oid) ? rel->oid :
				RangeVarGetRelid(rel->relation, NoLock, true);

			if (OidIsValid(relid))
				note_indexes_rebuilt(relid);
		}
	}
}

/* Whether options (ALTER TABLE SET/RESET) take user_catalog_table away. */
static bool
resets_user_catalog(AlterTableCmd *cmd)
{
	ListCell   *lc;

	if (cmd->subtype != AT_SetRelOptions && cmd->subtype != AT_ResetRelOptions)
		return false;
	foreach(lc, (List *) cmd->def)
	{
		DefElem    *opt = lfirst(lc);

		if (opt->defnamespace == NULL && strcmp(opt->defname, "user_catalog_table") == 0 &&
			(cmd->subtype == AT_ResetRelOptions || !defGetBoolean(opt)))
			return true;
	}
	return false;
}

/*
 * Refuse a new inheritance child of a table that continuous views read
 * with its children: the decoder follows the table alone.
 */
static void
check_new_child(RangeVar *parent, const char *child)
{
	Oid			relid = RangeVarGetRelid(parent, NoLock, true);
	char	   *views;

	if (!OidIsValid(relid) || (views = views_over(relid, true)) == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("cannot make table \"%s\" inherit from table \"%s\"", child, get_rel_name(relid)),
			 errdetail("Continuous views read \"%s\" with its children but follow its own changes only: %s.",
					   get_rel_name(relid), views),
			 errhint("Define those views with FROM ONLY %s, or drop them with flowstate.drop_view() first.",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												get_rel_name(relid)))));
}

/*
 * The nearest of a table and the partitioned tables above it that
 * continuous views read, with the list of those views; InvalidOid if none.
 */
static Oid
source_above(Oid relid, char **views)
{
	ListCell   *lc;

	foreach(lc, PartitionTree(relid))
	{
		if ((*views = views_over(lfirst_oid(lc), false)) != NULL)
			return lfirst_oid(lc);
	}
	return InvalidOid;
}

/*
 * A table attached below the source of continuous views must be one whose
 * changes they can follow; its rows join the source without row changes
 * in the WAL, and a detached partition's leave it: the transaction tells
 * the decoder, which rebuilds the views (partition.c).
 */
static void
check_partition_change(RangeVar *parent_rv, AlterTableCmd *cmd)
{
	Oid			parent = RangeVarGetRelid(parent_rv, NoLock, true);
	char	   *views;
	Oid			source;

	if (!OidIsValid(parent))
		return;
	if (cmd->subtype == AT_AttachPartition &&
		OidIsValid(source = source_above(parent, &views)))
	{
		Oid			relid = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name, NoLock, true);

		if (OidIsValid(relid))
			PartitionCheckLeaves(relid, source);
	}
	PartitionNoteChange(parent);
}

/*
 * After ALTER FOREIGN TABLE: a stream with histories keeps one worker (the
 * one that reads every partition keeps them); refuse more, which rolls the
 * ALTER back.
 */
static void
check_stream_workers(AlterTableStmt *stmt)
{
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	int			workers = 1;
	bool		histories = false;

	if (!OidIsValid(relid) || !CatalogExtensionPresent())
		return;
	CommandCounterIncrement();
	SPI_connect();
	if (SPI_execute_with_args("SELECT coalesce((SELECT option_value::int"
							  "                   FROM pg_catalog.pg_options_to_table(ft.ftoptions)"
							  "                  WHERE option_name = 'workers'), 1),"
							  "       EXISTS (SELECT 1 FROM flowstate.history h WHERE h.source = ft.ftrelid"
							  "                  AND pg_catalog.to_jsonb(h) ->> 'status' IS DISTINCT FROM 'failed')"
							  "  FROM pg_catalog.pg_foreign_table ft WHERE ft.ftrelid = $1",
							  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(relid)},
							  NULL, false, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;

		workers = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		histories = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
	if (histories && workers > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("stream \"%s\" keeps histories: it cannot have %d workers", get_rel_name(relid), workers),
				 errdetail("A history is written by the worker that consumes every partition of the stream."),
				 errhint("Keep workers at 1, or drop the stream's histories first.")));
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

		if (cmd->subtype == AT_AddInherit)
		{
			check_new_child((RangeVar *) cmd->def, stmt->relation->relname);
			continue;
		}
		if (cmd->subtype == AT_AttachPartition || cmd->subtype == AT_DetachPartition ||
			cmd->subtype == AT_DetachPartitionFinalize)
		{
			check_partition_change(stmt->relation, cmd);
			continue;
		}

		/* a table that views over tables join: read in the past, by old rows */
		if (resets_user_catalog(cmd) ||
			(cmd->subtype == AT_ReplicaIdentity &&
			 ((ReplicaIdentityStmt *) cmd->def)->identity_type != REPLICA_IDENTITY_FULL))
		{
			if (!OidIsValid(relid))
				relid = RangeVarGetRelid(stmt->relation, NoLock, true);
			if (OidIsValid(relid) && (views = views_joining(relid)) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
						 cmd->subtype == AT_ReplicaIdentity ?
						 errmsg("cannot change the replica identity of table \"%s\"", get_rel_name(relid)) :
						 errmsg("cannot reset user_catalog_table of table \"%s\"", get_rel_name(relid)),
						 errdetail("Continuous views over other tables join it, and read it as of each change they decode, which needs a user catalog table with REPLICA IDENTITY FULL: %s.",
								   views),
						 errhint("Drop the continuous views first with flowstate.drop_view().")));
		}
		if (!unlogged &&
			!(cmd->subtype == AT_ReplicaIdentity &&
			  ((ReplicaIdentityStmt *) cmd->def)->identity_type != REPLICA_IDENTITY_FULL))
			continue;
		if (!OidIsValid(relid))
			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		/* a partition's own, or those over the partitioned tables above it */
		if (!OidIsValid(relid) || !OidIsValid(source_above(relid, &views)))
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

/* What a relation is to flowstate. */
typedef enum RelationRole
{
	REL_OTHER,
	REL_VIEW,					/* a continuous view */
	REL_INTERNAL				/* the definition or state table of one */
} RelationRole;

static RelationRole
relation_role(Oid relid, char **view_name, Oid *view_relid)
{
	Datum		arg = ObjectIdGetDatum(relid);
	Oid			type = OIDOID;
	RelationRole role = REL_OTHER;

	int			nest;

	if (!OidIsValid(relid) || !CatalogExtensionPresent())
		return REL_OTHER;
	nest = SecurityRestrictSearchPath();
	SPI_connect();
	if (SPI_execute_with_args("SELECT view = $1, view::text, view::oid FROM flowstate.view"
							  " WHERE $1 IN (view, definition, state_table)",
							  1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	if (SPI_processed == 1)
	{
		bool		isnull;

		role = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										  &isnull)) ? REL_VIEW : REL_INTERNAL;
		*view_name = MemoryContextStrdup(CurTransactionContext,
										 SPI_getvalue(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2));
		*view_relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 3, &isnull));
	}
	SPI_finish();
	SecurityRestoreSearchPath(nest);
	return role;
}

static void
refuse_internal(Oid relid, const char *view_name, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("cannot %s \"%s\"", what, get_rel_name(relid)),
			 errdetail("It belongs to continuous view %s, which would lose its state.", view_name),
			 errhint("Drop the continuous view with flowstate.drop_view() and create it again.")));
}

/*
 * Whether a view reads a relation: a continuous view its state table, a
 * definition its source.  pg_dump breaks the dependency loop of a view and
 * its internal objects by restoring the view first as a placeholder that
 * reads nothing, replaced later: that replacement detaches nothing.
 */
static bool
view_reads_relation(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	bool		reads = false;
	ListCell   *lc;

	if (rel->rd_rel->relkind == RELKIND_VIEW)
	{
		foreach(lc, get_view_query(rel)->rtable)
		{
			RangeTblEntry *rte = lfirst(lc);

			/* beside the view itself (OLD and NEW), a placeholder reads nothing */
			if (rte->rtekind != RTE_RELATION || rte->relid != relid)
				reads = true;
		}
	}
	relation_close(rel, AccessShareLock);
	return reads;
}

/*
 * Whether ALTER TABLE/VIEW with these subcommands may run on an internal
 * object: what pg_restore does (constraints, row-level security, owner) and
 * storage settings; not what changes the columns or the logging.  The
 * definition goes only to its view's owner.
 */
static bool
alter_keeps_attached(AlterTableStmt *stmt, Oid relid, Oid view_relid)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);

		switch (cmd->subtype)
		{
			case AT_AddConstraint:
			case AT_AddIndex:
			case AT_AddIndexConstraint:
			case AT_EnableRowSecurity:
			case AT_ForceRowSecurity:
			case AT_SetRelOptions:
			case AT_ResetRelOptions:
			case AT_ClusterOn:
			case AT_DropCluster:
			case AT_SetStatistics:
			case AT_SetStorage:
			case AT_SetCompression:
			case AT_SetTableSpace:
				break;
			case AT_ChangeOwner:
				/* the definition goes to the view's owner only */
				if (get_rel_relkind(relid) == RELKIND_VIEW &&
					get_rolespec_oid(cmd->newowner, true) != SecurityRelationOwner(view_relid))
					return false;
				break;
			default:
				return false;
		}
	}
	return true;
}

/* The relation a statement alters, replaces, renames or moves, if any. */
static RangeVar *
relation_changed(Node *parsetree, const char **what)
{
	switch (nodeTag(parsetree))
	{
		case T_ViewStmt:
			if (!((ViewStmt *) parsetree)->replace)
				return NULL;
			*what = "replace view";
			return ((ViewStmt *) parsetree)->view;
		case T_AlterTableStmt:
			*what = "alter relation";
			return ((AlterTableStmt *) parsetree)->relation;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->relation == NULL)
				return NULL;
			*what = "rename relation";
			return ((RenameStmt *) parsetree)->relation;
		case T_AlterObjectSchemaStmt:
			if (((AlterObjectSchemaStmt *) parsetree)->relation == NULL)
				return NULL;
			*what = "move relation";
			return ((AlterObjectSchemaStmt *) parsetree)->relation;
		case T_RuleStmt:
			*what = "create a rule on relation";
			return ((RuleStmt *) parsetree)->relation;
		default:
			return NULL;
	}
}

/*
 * Refuse a statement that would detach a continuous view from its state.
 * Returns the continuous view an ALTER ... OWNER TO gives away, if any.
 */
static Oid
check_internal_objects(Node *parsetree)
{
	const char *what = NULL;
	RangeVar   *rv = relation_changed(parsetree, &what);
	Oid			relid;
	char	   *view_name = NULL;
	Oid			view_relid = InvalidOid;
	RelationRole role;

	/* the upgrade scripts of the extension itself */
	if (rv == NULL || creating_extension)
		return InvalidOid;
	relid = RangeVarGetRelid(rv, NoLock, true);
	role = relation_role(relid, &view_name, &view_relid);
	if (role == REL_OTHER)
		return InvalidOid;
	/* a view's replacement, or its _RETURN rule's, detaches a view that reads */
	if (IsA(parsetree, ViewStmt) || IsA(parsetree, RuleStmt))
	{
		if (get_rel_relkind(relid) != RELKIND_VIEW || view_reads_relation(relid))
			refuse_internal(relid, view_name, what);
		return InvalidOid;
	}
	if (role == REL_INTERNAL &&
		!(IsA(parsetree, AlterTableStmt) &&
		  alter_keeps_attached((AlterTableStmt *) parsetree, relid, view_relid)))
		refuse_internal(relid, view_name, what);
	if (role == REL_VIEW && IsA(parsetree, AlterTableStmt))
	{
		ListCell   *lc;

		foreach(lc, ((AlterTableStmt *) parsetree)->cmds)
			if (((AlterTableCmd *) lfirst(lc))->subtype == AT_ChangeOwner)
				return relid;
	}
	return InvalidOid;
}

/*
 * Give a continuous view's definition to the view's owner, and the right
 * to read its state table to it alone (with the superusers); run after the
 * view changed hands.
 */
static void
follow_owner(const char *where, Datum arg)
{
	Oid			type = OIDOID;
	Oid			save_userid;
	int			save_sec;

	int			nest = SecurityRestrictSearchPath();

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	SPI_connect();
	if (SPI_execute_with_args(psprintf("SELECT v.definition, c.relowner,"
									   "       format('REVOKE ALL ON %%s FROM PUBLIC', v.state_table),"
									   "       (SELECT string_agg(format('REVOKE ALL ON %%s FROM %%I', v.state_table, r.rolname), '; ')"
									   "          FROM pg_catalog.aclexplode(s.relacl) a"
									   "          JOIN pg_catalog.pg_roles r ON r.oid = a.grantee"
									   "         WHERE a.grantee NOT IN (s.relowner, c.relowner)),"
									   "       format('GRANT SELECT ON %%s TO %%s', v.state_table, c.relowner::regrole)"
									   "  FROM flowstate.view v"
									   "  JOIN pg_catalog.pg_class c ON c.oid = v.view"
									   "  JOIN pg_catalog.pg_class s ON s.oid = v.state_table"
									   " WHERE %s", where),
							  1, &type, &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	{
		SPITupleTable *views = SPI_tuptable;
		uint64		n = SPI_processed;

		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tuple = views->vals[i];
			bool		isnull;
			Oid			def_relid = DatumGetObjectId(SPI_getbinval(tuple, views->tupdesc, 1, &isnull));
			Oid			owner = DatumGetObjectId(SPI_getbinval(tuple, views->tupdesc, 2, &isnull));
			char	   *revoke = SPI_getvalue(tuple, views->tupdesc, 4);

			ATExecChangeOwner(def_relid, owner, false, AccessExclusiveLock);
			if (revoke != NULL && SPI_execute(revoke, false, 0) != SPI_OK_UTILITY)
				elog(ERROR, "could not revoke the rights on a state table");
			if (SPI_execute(SPI_getvalue(tuple, views->tupdesc, 5), false, 0) != SPI_OK_UTILITY)
				elog(ERROR, "could not grant the right to read a state table");
		}
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	SecurityRestoreSearchPath(nest);
	CommandCounterIncrement();
}

/*
 * Whether a new partition (CREATE [FOREIGN] TABLE ... PARTITION OF) goes
 * below the source of continuous views: a foreign one is refused, a table
 * is to get REPLICA IDENTITY FULL.
 */
static bool
new_partition_of_source(CreateStmt *stmt)
{
	Oid			parent;
	Oid			source;
	char	   *views;

	if (stmt->partbound == NULL || list_length(stmt->inhRelations) != 1)
		return false;
	parent = RangeVarGetRelid(linitial(stmt->inhRelations), NoLock, true);
	if (!OidIsValid(parent) || !OidIsValid(source = source_above(parent, &views)))
		return false;
	if (IsA(stmt, CreateForeignTableStmt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("partition \"%s\" of the source of a continuous view must be an ordinary table",
						stmt->relation->relname),
				 errdetail("Continuous views over \"%s\" follow its rows through the WAL of its partitions: %s.",
						   get_rel_name(source), views),
				 errhint("Keep foreign tables out of partitioned tables that continuous views read.")));
	return true;
}

/* Give a partition just created below a source the replica identity its views need. */
static void
follow_new_partition(CreateStmt *stmt)
{
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

	CommandCounterIncrement();
	if (OidIsValid(relid) && get_rel_relispartition(relid))
		PartitionSetReplicaIdentityFull(relid);
}

static void
flowstate_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
						 bool readOnlyTree, ProcessUtilityContext context,
						 ParamListInfo params, QueryEnvironment *queryEnv,
						 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			suspended;
	Oid			given_away;
	bool		new_partition = false;

	if (IsA(parsetree, AlterTableStmt) &&
		((AlterTableStmt *) parsetree)->objtype == OBJECT_TABLE)
		check_alter_source((AlterTableStmt *) parsetree);
	if (IsA(parsetree, CreateStmt) && ((CreateStmt *) parsetree)->partbound == NULL)
	{
		ListCell   *lc;

		foreach(lc, ((CreateStmt *) parsetree)->inhRelations)
			check_new_child(lfirst(lc), ((CreateStmt *) parsetree)->relation->relname);
	}
	if ((IsA(parsetree, CreateStmt) || IsA(parsetree, CreateForeignTableStmt)) &&
		((CreateStmt *) parsetree)->partbound != NULL && CatalogExtensionPresent())
		new_partition = new_partition_of_source((CreateStmt *) parsetree);

	/* a continuous view's definition and state follow its owner */
	given_away = check_internal_objects(parsetree);
	if (OidIsValid(given_away) || IsA(parsetree, ReassignOwnedStmt))
	{
		call_previous(pstmt, queryString, readOnlyTree, context, params,
					  queryEnv, dest, qc);
		CommandCounterIncrement();
		if (!CatalogExtensionPresent())
			return;
		if (OidIsValid(given_away))
			follow_owner("v.view = $1", ObjectIdGetDatum(given_away));
		else
			follow_owner("$1 = 0", ObjectIdGetDatum(InvalidOid));	/* every view */
		return;
	}

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
		if (new_partition)
			follow_new_partition((CreateStmt *) parsetree);
		note_rebuilt_by(parsetree);
		if (IsA(parsetree, AlterTableStmt) &&
			((AlterTableStmt *) parsetree)->objtype == OBJECT_FOREIGN_TABLE)
			check_stream_workers((AlterTableStmt *) parsetree);
		return;
	}

	LauncherSuspendDatabase(suspended);
	PG_TRY();
	{
		/* a logical slot of the database would make DROP DATABASE fail */
		if (IsA(parsetree, DropdbStmt))
			ManagerDropDecoderSlot(suspended);
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
