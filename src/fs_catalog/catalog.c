/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Reads the continuous views of the current database from flowstate.view
 *	  and their defining queries from their definitions (plain views).
 *
 * Callers run in a transaction.  The extension's object is locked in share
 * mode first, as the manager does, so that DROP EXTENSION either finishes
 * before the read or waits for the transaction to end.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "fs_catalog/catalog.h"
#include "guc.h"
#include "query/query.h"

/*
 * CatalogExtensionPresent tells whether flowstate is installed in this
 * database, locking it against a concurrent DROP EXTENSION.
 */
bool
CatalogExtensionPresent(void)
{
	Oid			extoid = get_extension_oid("flowstate", true);

	if (!OidIsValid(extoid))
		return false;
	LockDatabaseObject(ExtensionRelationId, extoid, 0, AccessShareLock);
	return get_extension_oid("flowstate", true) == extoid;
}

static int64
spi_int8(HeapTuple tuple, int column, int64 ifnull)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, SPI_tuptable->tupdesc, column, &isnull);

	return isnull ? ifnull : DatumGetInt64(d);
}

static Oid
spi_oid(HeapTuple tuple, int column)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, SPI_tuptable->tupdesc, column, &isnull);

	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/*
 * CatalogLoadViews returns a ViewDef for each continuous view of the
 * database over tables (stream invalid) or over one Kafka stream, each in
 * a new child context of cxt.  For a view the caller knows already (known
 * returns true), only its ids and its owner are filled, in
 * CurrentMemoryContext.  A view
 * whose objects are missing (a concurrent drop) is skipped.  The caller
 * has an active snapshot.
 */
List *
CatalogLoadViews(MemoryContext cxt, CatalogKnownView known, Oid stream)
{
	List	   *views = NIL;
	int			ret;
	MemoryContext callercxt = CurrentMemoryContext;
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(stream);

	if (!CatalogExtensionPresent())
		return NIL;

	SPI_connect();
	ret = SPI_execute_with_args("SELECT view_id::int8, view::oid, definition::oid, state_table::oid,"
								"       (extract(epoch FROM watermark_delay) * 1000000)::int8,"
								"       (extract(epoch FROM allowed_lateness) * 1000000)::int8,"
								"       memory_limit, status = 'backfilling', max_event_time,"
								"       (SELECT relowner FROM pg_catalog.pg_class WHERE oid = v.view),"
			/* the columns of 0.6.0, NULL before ALTER EXTENSION UPDATE */
								"       j OPERATOR(pg_catalog.->>) 'time_zone',"
								"       (pg_catalog.date_part('epoch', (j OPERATOR(pg_catalog.->>) 'retention')::pg_catalog.interval) * 1000000)::int8,"
								"       coalesce((j OPERATOR(pg_catalog.->>) 'notify')::bool, false),"
								"       (j OPERATOR(pg_catalog.->>) 'changelog')::pg_catalog.regclass::pg_catalog.oid,"
			/* those of 0.7.0 */
								"       j OPERATOR(pg_catalog.->>) 'hop_kind',"
								"       (pg_catalog.date_part('epoch', (j OPERATOR(pg_catalog.->>) 'hop_size')::pg_catalog.interval) * 1000000)::int8,"
								"       (pg_catalog.date_part('epoch', (j OPERATOR(pg_catalog.->>) 'hop_slide')::pg_catalog.interval) * 1000000)::int8,"
			/* those of 0.8.0 */
								"       (j OPERATOR(pg_catalog.->>) 'final_event_time')::pg_catalog.timestamptz,"
								"       (j OPERATOR(pg_catalog.->>) 'hop_view')::pg_catalog.regclass::pg_catalog.oid,"
								"       (j OPERATOR(pg_catalog.->>) 'final_function')::pg_catalog.regprocedure::pg_catalog.oid"
								"  FROM flowstate.view v, LATERAL pg_catalog.to_jsonb(v) j"
								" WHERE CASE WHEN $1 = 0"
								"            THEN (SELECT relkind FROM pg_catalog.pg_class"
								"                   WHERE oid = v.source) IS DISTINCT FROM 'f'"
								"            ELSE v.source = $1 END"
								" ORDER BY view_id",
								1, &argtype, &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view: %s", SPI_result_code_string(ret));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		MemoryContext oldcxt;
		MemoryContext cxt_new;
		Query	   *query;
		ViewDef    *def;
		bool		isnull;
		Oid			view_relid = spi_oid(tuple, 2);
		Oid			def_relid = spi_oid(tuple, 3);
		Oid			state_relid = spi_oid(tuple, 4);

		/* being dropped: the transaction that drops it removes the row too */
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(view_relid)) ||
			!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(def_relid)) ||
			!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(state_relid)))
			continue;

		if (known && known((int32) spi_int8(tuple, 1, 0), state_relid))
		{
			oldcxt = MemoryContextSwitchTo(callercxt);
			def = palloc0(sizeof(ViewDef));
			def->idle_timeout_us = -1;
			def->view_id = (int32) spi_int8(tuple, 1, 0);
			def->state_relid = state_relid;
			def->owner = spi_oid(tuple, 10);
			views = lappend(views, def);
			MemoryContextSwitchTo(oldcxt);
			continue;
		}

		cxt_new = AllocSetContextCreate(cxt, "flowstate view", ALLOCSET_SMALL_SIZES);
		oldcxt = MemoryContextSwitchTo(cxt_new);
		def = palloc0(sizeof(ViewDef));
		def->idle_timeout_us = -1;
		def->cxt = cxt_new;
		def->view_id = (int32) spi_int8(tuple, 1, 0);
		def->view_relid = view_relid;
		def->view_name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(view_relid)),
													get_rel_name(view_relid));
		def->def_relid = def_relid;
		def->state_relid = state_relid;
		def->owner = spi_oid(tuple, 10);
		def->watermark_delay_us = spi_int8(tuple, 5, 0);
		def->allowed_lateness_us = spi_int8(tuple, 6, -1);
		def->memory_limit = spi_int8(tuple, 7, 0);
		def->backfilling = DatumGetBool(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 8, &isnull));
		def->max_event_time = DatumGetTimestampTz(SPI_getbinval(tuple, SPI_tuptable->tupdesc,
																9, &isnull));
		def->has_max_event_time = !isnull && !def->backfilling;
		def->time_zone = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 11);
		def->retention_us = spi_int8(tuple, 12, -1);
		def->notify = DatumGetBool(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 13, &isnull));
		def->changelog_relid = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 14, &isnull);
		if (isnull)
			def->changelog_relid = InvalidOid;
		def->channel = psprintf("%s.%s", get_namespace_name(get_rel_namespace(view_relid)),
								get_rel_name(view_relid));
		query = QueryOfDefinition(def_relid);
		if (query == NULL)
		{
			MemoryContextSwitchTo(oldcxt);
			MemoryContextDelete(cxt_new);
			continue;
		}
		QueryDescribe(query, def);
		if (SPI_getvalue(tuple, SPI_tuptable->tupdesc, 15) != NULL)
		{
			def->window.panes_of = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 15)[0];
			def->window.panes_of_size_us = spi_int8(tuple, 16, 0);
			def->window.hop_slide_us = spi_int8(tuple, 17, 0);
		}
		def->final_event_time = DatumGetTimestampTz(SPI_getbinval(tuple, SPI_tuptable->tupdesc,
																  18, &isnull));
		def->has_final_event_time = !isnull;
		def->final_function = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 20, &isnull);
		if (isnull)
			def->final_function = InvalidOid;
		else
		{
			/* panes announce the windows of the view users read, on its channel */
			Oid			hop_view = DatumGetObjectId(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 19, &isnull));

			if (!isnull && get_rel_name(hop_view) != NULL)
				def->channel = psprintf("%s.%s", get_namespace_name(get_rel_namespace(hop_view)),
										get_rel_name(hop_view));
		}
		def->stream = get_rel_relkind(def->source_relid) == RELKIND_FOREIGN_TABLE;
		MemoryContextSwitchTo(callercxt);
		views = lappend(views, def);
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return views;
}

/*
 * CatalogMemoryLimit is the shared memory a view's groups may hold: its
 * memory_limit, else flowstate.memory_limit.
 */
int64
CatalogMemoryLimit(const ViewDef *def)
{
	return def->memory_limit > 0 ? def->memory_limit : (int64) flowstate_memory_limit * 1024;
}
