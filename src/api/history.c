/*-------------------------------------------------------------------------
 *
 * history.c
 *	  The SQL side of SCD type-2 histories.  flowstate.create_history() and
 *	  flowstate.drop_history() (in SQL, run as the caller: the history table
 *	  is the caller's) enter and remove a history in the catalog through
 *	  the functions here, which check what the caller may do: own the
 *	  history table, read every column of the source it keeps, without
 *	  row-level security in the way.  The catalog is written as the
 *	  bootstrap superuser (PUBLIC only reads it), and the workers are told
 *	  at commit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"

#include "api/api.h"
#include "fs_catalog/catalog.h"
#include "engine/history.h"
#include "sources/kafka/stream.h"
#include "workers/launcher.h"

extern PGDLLEXPORT Datum flowstate_register_history(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_register_history);
extern PGDLLEXPORT Datum flowstate_unregister_history(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_unregister_history);

/*
 * ApiHistoriesPending tells whether a history of the database still misses
 * changes committed up to lsn: one is backfilling, or the decoder has not
 * made lsn durable yet (it is asked to, once it has applied it); or a
 * stream's worker has not written every message it saw since since (it
 * reports itself caught up only then).  Used by flowstate.wait_for().
 */
bool
ApiHistoriesPending(XLogRecPtr lsn, TimestampTz since)
{
	int64		histories = 0;
	int64		backfilling = 0;
	List	   *streams = NIL;
	bool		pending = false;
	ListCell   *lc;

	SPI_connect();
	if (HistoryCatalogReady() &&
		SPI_execute("SELECT count(*) FILTER (WHERE c.relkind = 'r'),"
					"       count(*) FILTER (WHERE c.relkind = 'r' AND h.status = 'backfilling'),"
					"       array_agg(DISTINCT h.source::oid) FILTER (WHERE c.relkind = 'f')"
					"  FROM flowstate.history h JOIN pg_catalog.pg_class c ON c.oid = h.source"
					" WHERE h.status <> 'failed'", false, 1) == SPI_OK_SELECT)
	{
		bool		isnull;
		Datum		d;

		histories = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		backfilling = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			int			n;

			deconstruct_array(DatumGetArrayTypeP(d), OIDOID, sizeof(Oid), true, TYPALIGN_INT,
							  &elems, NULL, &n);
			for (int i = 0; i < n; i++)
				streams = lappend_oid(streams, DatumGetObjectId(elems[i]));
		}
	}
	SPI_finish();
	/* a stream's: every message its worker saw since the call, written */
	foreach(lc, streams)
		pending |= !LauncherStreamCaughtUp(MyDatabaseId, lfirst_oid(lc), since);
	if (histories == 0)
		return pending;
	return pending || LauncherDecoderDurable(MyDatabaseId, lsn) < lsn || backfilling > 0;
}

/*
 * ApiViewsReadHistories tells whether a continuous view reads a history
 * table, as its source or joined to it (its definition depends on it):
 * flowstate.wait_for then waits for it to apply what the history's flush
 * wrote.
 */
bool
ApiViewsReadHistories(void)
{
	bool		any;

	SPI_connect();
	any = HistoryCatalogReady() &&
		SPI_execute("SELECT 1 FROM flowstate.view v, flowstate.history h"
					" WHERE h.history = v.source"
					"    OR " CATALOG_VIEW_READS_SQL("v", "h.history")
					" LIMIT 1", true, 0) == SPI_OK_SELECT &&
		SPI_processed > 0;
	SPI_finish();
	return any;
}

/*
 * ApiHistoriesDropped, in the sql_drop event trigger (connected to SPI, as
 * the bootstrap superuser): the catalog row of a history goes with its
 * table, or with its source (the history table stays, no longer kept).
 */
void
ApiHistoriesDropped(void)
{
	/* a catalog not updated to 0.9.0 yet has no histories */
	if (!HistoryCatalogReady())
		return;
	if (SPI_execute("DELETE FROM flowstate.history h"
					" USING pg_catalog.pg_event_trigger_dropped_objects() d"
					" WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
					"   AND d.objsubid = 0"
					"   AND d.objid IN (h.history, h.source)",
					false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete from flowstate.history");
	if (SPI_processed > 0)
		ApiNoteCatalogChanged();
}

/* Refuse a caller that does not own the history table. */
static void
check_owner(Oid history)
{
	if (!pg_class_ownercheck(history, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s to make it a history", get_rel_name(history)),
				 errhint("A history is kept in a table its caller owns: call flowstate.create_history() to make one.")));
}

/*
 * Refuse a caller that cannot read a column of the source the history
 * keeps, or to whom the source's row-level security applies.
 */
static void
check_source_readable(Oid source, ArrayType *columns)
{
	Datum	   *names;
	bool	   *nulls;
	int			n;

	deconstruct_array(columns, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &names, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		AttrNumber	att;

		if (nulls[i])
			continue;
		att = get_attnum(source, NameStr(*DatumGetName(names[i])));
		if (att == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of a history does not exist in table \"%s\"",
							NameStr(*DatumGetName(names[i])), get_rel_name(source)),
					 errhint("Name columns of the source table in key, tracked and type1.")));
		if (pg_class_aclcheck(source, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
			pg_attribute_aclcheck(source, att, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for column \"%s\" of table \"%s\"",
							NameStr(*DatumGetName(names[i])), get_rel_name(source)),
					 errhint("A history shows only what its owner may read: grant SELECT on the column, or leave it out.")));
	}
	if (check_enable_rls(source, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("row-level security of table \"%s\" applies to the owner of the history",
						get_rel_name(source)),
				 errhint("Create the history as a role that bypasses the table's row-level security (its owner, without FORCE ROW LEVEL SECURITY, or a role with BYPASSRLS).")));
}

/* Run SQL on the catalog as the bootstrap superuser. */
static void
catalog_write(const char *sql, int nargs, Oid *types, Datum *args, const char *nulls)
{
	Oid			save_userid;
	int			save_sec;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	SPI_connect();
	if (SPI_execute_with_args(sql, nargs, types, args, nulls, false, 0) < 0)
		elog(ERROR, "could not write flowstate.history");
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
}

/*
 * flowstate.register_history(history, source, key, tracked, type1,
 * on_delete, on_truncate, sequence_column, delete_column, changes): enter
 * a history, made by create_history, in the catalog.  A stream's history
 * (changes, its table of messages, not null) runs from the start: it has
 * no backfill.  The last three arguments are 0.10.0's; 0.9.0's function
 * has the first seven.
 */
Datum
flowstate_register_history(PG_FUNCTION_ARGS)
{
	Oid			history = PG_GETARG_OID(0);
	Oid			source = PG_GETARG_OID(1);
	Oid			types[10] = {OIDOID, OIDOID, NAMEARRAYOID, NAMEARRAYOID, NAMEARRAYOID, TEXTOID, TEXTOID,
	NAMEOID, NAMEOID, OIDOID};
	Datum		args[10] = {0};
	char		nulls[10];
	bool		stream = PG_NARGS() == 10 && !PG_ARGISNULL(9);

	for (int i = 0; i < 10; i++)
	{
		nulls[i] = i >= PG_NARGS() || PG_ARGISNULL(i) ? 'n' : ' ';
		if (i < 7 && nulls[i] == 'n')
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the arguments of flowstate.register_history() must not be null"),
					 errhint("Call flowstate.create_history().")));
		if (nulls[i] == ' ')
			args[i] = PG_GETARG_DATUM(i);
	}
	check_owner(history);
	if (stream)
	{
		check_owner(DatumGetObjectId(args[9]));
		/* the stream's definition, as its worker reads it: refused now, not there */
		(void) StreamLoad(source, CurrentMemoryContext);
	}
	for (int i = 2; i <= 4; i++)
		check_source_readable(source, PG_GETARG_ARRAYTYPE_P(i));
	for (int i = 7; i <= 8; i++)
		if (nulls[i] == ' ')
			check_source_readable(source, construct_array(&args[i], 1, NAMEOID, NAMEDATALEN,
														  false, TYPALIGN_CHAR));

	catalog_write(PG_NARGS() == 10 ?
				  "INSERT INTO flowstate.history (history_schema, history_name, history, source,"
				  "  key_columns, tracked_columns, type1_columns, delete_policy, truncate_policy,"
				  "  sequence_column, delete_column, changes, status, started_at)"
				  " SELECT n.nspname, c.relname, $1::regclass, $2::regclass, $3, $4, $5, $6, $7,"
				  "        $8, $9, $10::regclass,"
				  "        CASE WHEN $10 IS NULL THEN 'backfilling' ELSE 'running' END,"
				  "        CASE WHEN $10 IS NULL THEN NULL ELSE pg_catalog.now() END"
				  "   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
				  "  WHERE c.oid = $1" :
				  "INSERT INTO flowstate.history (history_schema, history_name, history, source,"
				  "  key_columns, tracked_columns, type1_columns, delete_policy, truncate_policy)"
				  " SELECT n.nspname, c.relname, $1::regclass, $2::regclass, $3, $4, $5, $6, $7"
				  "   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
				  "  WHERE c.oid = $1",
				  PG_NARGS() == 10 ? 10 : 7, types, args, nulls);
	ApiNoteCatalogChanged();
	PG_RETURN_VOID();
}

/* flowstate.unregister_history(history): remove a history from the catalog. */
Datum
flowstate_unregister_history(PG_FUNCTION_ARGS)
{
	Oid			history = PG_GETARG_OID(0);
	Oid			type = OIDOID;
	Datum		arg = ObjectIdGetDatum(history);

	check_owner(history);
	catalog_write("DELETE FROM flowstate.history WHERE history = $1::regclass", 1, &type, &arg, NULL);
	ApiNoteCatalogChanged();
	PG_RETURN_VOID();
}
